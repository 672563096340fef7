"""Every column and every field of a record type has a personal-data class, in one place, shown in the SDL."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLObjectType, build_schema

from aidgraph.core.graph import classification, privacy
from aidgraph.core.graph.classification import Kind, Level, column_class, field_class
from aidgraph.core.storage.config import load_settings

SDL = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


@pytest.fixture(scope="module")
def live_schema():
    from aidgraph.core.app.server import default_components

    return default_components(load_settings({})).schema  # registers every plugin (their tables too)


def test_every_column_has_a_class(live_schema):
    from aidgraph.core.storage.models import Base

    missing = [f"{t.name}.{c.name}" for t in Base.metadata.tables.values() for c in t.columns
               if column_class(t.name, c.name) is None]
    assert not missing, f"classify these columns in core/graph/classification.py: {missing}"
    assert column_class("person", "favourite_colour") is None  # the check above can fail


def _object_types(schema):
    return {name: t for name, t in schema.type_map.items() if isinstance(t, GraphQLObjectType)
            and not name.startswith("__") and name not in ("Query", "Mutation")}


def test_every_field_of_a_record_type_has_a_class_and_the_sdl_shows_it(live_schema):
    types = _object_types(live_schema._schema)
    missing = [f"{n}.{f}" for n, t in types.items() for f in t.fields if field_class(n, f) is None]
    assert not missing, f"classify these GraphQL fields in core/graph/classification.py: {missing}"
    assert field_class("Person", "favouriteColour") is None
    sdl = live_schema.as_str()
    assert "directive @dataClass(level: String!, kinds: [String!]) on FIELD_DEFINITION" in sdl
    assert 'idNumber: String! @dataClass(level: "SENSITIVE", kinds: ["ID_NUMBER"])' in sdl
    assert sdl.count(" @dataClass(level: \"") == sum(len(t.fields) for t in types.values())


def test_the_committed_sdl_carries_the_classes():
    committed = build_schema(SDL.read_text(encoding="utf-8"))
    person = committed.type_map["Person"]
    node = person.fields["phone"].ast_node
    assert [(d.name.value, {a.name.value: a.value for a in d.arguments}) for d in node.directives][0][0] == "dataClass"


def test_sensitive_kinds_are_the_rights_privacy_enforces():
    assert set(classification.KIND_GUARD) == set(Kind)
    for kind, guard in classification.KIND_GUARD.items():
        assert guard is None or guard in privacy.GUARDS
    # What privacy masks or withholds on Person is classified sensitive with the matching kind.
    for field, kind in [("idNumber", Kind.ID_NUMBER), ("phone", Kind.PHONE), ("birthDate", Kind.ID_NUMBER),
                        ("chronicDisease", Kind.HEALTH), ("disabilityLevel", Kind.DISABILITY)]:
        c = field_class("Person", field)
        assert c.level is Level.SENSITIVE and kind in c.kinds
    assert field_class("Household", "economics").kinds == (Kind.INCOME, Kind.ASSETS)
    with pytest.raises(ValueError):
        classification.DataClass(Level.SENSITIVE)
