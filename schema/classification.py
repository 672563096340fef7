"""The ``@dataClass`` schema directive: every field of a record type shows its personal-data class in the SDL,
so frontend teams see what they handle (PIPL Art. 51 classified management).

The classes come from the one table in :mod:`aidgraph.core.graph.classification`; :func:`annotate` puts the
directive on the fields of a built schema (the strawberry field definitions the SDL printer reads), leaving
unclassified fields bare: ``tests/personal_data/test_classification.py`` fails on those.
"""

from __future__ import annotations

from typing import Optional

import strawberry
from graphql import GraphQLObjectType
from strawberry.schema_directive import Location

from aidgraph.core.graph.classification import field_class


@strawberry.schema_directive(locations=[Location.FIELD_DEFINITION], name="dataClass",
                             description="Personal-data class of the field (PIPL): PUBLIC, INTERNAL, PERSONAL or "
                                         "SENSITIVE, with the sensitive kinds (ID_NUMBER, PHONE, HEALTH, "
                                         "DISABILITY, INCOME, ASSETS, MINORS).")
class DataClassDirective:
    level: str
    kinds: Optional[list[str]] = strawberry.UNSET


def annotate(schema: strawberry.Schema) -> int:
    """Put ``@dataClass`` on every classified field of the schema's object types; return how many fields."""
    count = 0
    for name, gql_type in schema._schema.type_map.items():
        if not isinstance(gql_type, GraphQLObjectType) or name.startswith("__") or name in ("Query", "Mutation"):
            continue
        for field_name, gql_field in gql_type.fields.items():
            definition = (gql_field.extensions or {}).get("strawberry-definition")
            cls = field_class(name, field_name)
            if definition is None or cls is None:
                continue
            kept = [d for d in definition.directives if not isinstance(d, DataClassDirective)]
            kinds = [k.value for k in cls.kinds] or strawberry.UNSET
            definition.directives = [*kept, DataClassDirective(level=cls.level.value, kinds=kinds)]
            count += 1
    return count
