"""Assemble the GraphQL schema from the core's operation modules and the plugins' contributions.

Each contributor exposes ``Query`` and/or ``Mutation`` classes (strawberry types). Their fields are merged
into the root types; two contributors defining the same root field is a start-up error naming both, never
a silent override.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import pluggy
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types
from strawberry.types.base import get_object_definition

from aidgraph.schema.types import Alert, Enrollment, Household, Person
from aidgraph.core.policy.host import graphql_contributions, graphql_types
from aidgraph.core.storage.config import load_settings
from aidgraph.schema.audit import AuditDisclosures
from aidgraph.schema.hardening import hardening_extensions
from aidgraph.schema.classification import annotate
from aidgraph.schema.scalars import SCALAR_OVERRIDES
from aidgraph.core.storage.config import Settings

CORE_SCHEMA_MODULES: tuple[str, ...] = (
    "aidgraph.schema.households",
    "aidgraph.schema.audit",
    "aidgraph.schema.monitoring",
    "aidgraph.schema.search",
    "aidgraph.schema.programs",
    "aidgraph.schema.simulation",
    "aidgraph.schema.casework",
    "aidgraph.schema.volunteers",
    "aidgraph.schema.queue",
    "aidgraph.schema.relations",
    "aidgraph.schema.reviews",
)
"""Core operation modules, each with ``Query`` and/or ``Mutation``."""


class SchemaConflict(Exception):
    """Two contributors define the same root field."""


Contribution = tuple[str, type | None, type | None]
"""(contributor name, Query class or None, Mutation class or None)."""


def core_contributions() -> list[Contribution]:
    result = []
    for name in CORE_SCHEMA_MODULES:
        module = importlib.import_module(name)
        result.append((name, getattr(module, "Query", None), getattr(module, "Mutation", None)))
    return result


def _field_names(cls: type) -> list[str]:
    definition = get_object_definition(cls, strict=True)
    return [f.python_name for f in definition.fields]


def _merge(root: str, parts: list[tuple[str, type]]) -> type | None:
    owners: dict[str, str] = {}
    for contributor, cls in parts:
        for field_name in _field_names(cls):
            if field_name in owners:
                raise SchemaConflict(f"{root}.{field_name} is defined by both {owners[field_name]} and {contributor}")
            owners[field_name] = contributor
    if not parts:
        return None
    return merge_types(root, tuple(cls for _, cls in parts))


def plugin_contributions(pm: pluggy.PluginManager) -> tuple[list[Contribution], list[type]]:
    """The plugins' Query/Mutation pieces (``aidgraph_graphql_fields``) and extra types (``aidgraph_graphql_types``)."""

    pieces = [(f"plugin {name}", c.query, c.mutation) for name, c in graphql_contributions(pm)]
    return pieces, graphql_types(pm)


Extension = type[SchemaExtension] | Callable[[], SchemaExtension]
"""A schema extension as strawberry takes it: the class, or a factory of instances."""


def build_schema(contributions: Iterable[Contribution] = (), extensions: Sequence[Extension] = (),
                 settings: Settings | None = None, pm: pluggy.PluginManager | None = None) -> strawberry.Schema:
    """The schema: core modules first, then ``contributions`` (from plugins), with a duplicate-field check.

    Every schema gets the hardening limits of ``settings`` (default: from the environment) and the audit of
    disclosed values (schema/hardening.py, schema/audit.py)."""

    # Frontends send the same few operations over and over: parse and validate each text once (validation
    # rules here depend on the text only; the cost limit, which reads variables, runs on every request).
    # (strawberry keeps both caches at module level per maxsize, so a fresh extension per request shares them)
    # (the parse and validation caches are hardening's BoundedDocuments: bounded in bytes, limits checked first)
    all_extensions: list[Extension] = [*hardening_extensions(settings or load_settings()), AuditDisclosures,
                                       *extensions]
    extra_types: list[type] = []
    if pm is not None:  # the plugin manager's contributions, checked for duplicates like the core's
        pieces, extra_types = plugin_contributions(pm)
        contributions = [*contributions, *pieces]
    everything = core_contributions() + list(contributions)
    query = _merge("Query", [(n, q) for n, q, _ in everything if q is not None])
    mutation = _merge("Mutation", [(n, m) for n, _, m in everything if m is not None])
    if query is None:
        raise SchemaConflict("no module contributes a Query")
    schema = strawberry.Schema(query=query, mutation=mutation,
                               types=[Household, Person, Enrollment, Alert, *extra_types], extensions=all_extensions,
                               # timestamps answered in UTC with their zone (strawberry types the map loosely)
                               scalar_overrides=cast(Mapping[object, Any], SCALAR_OVERRIDES))
    annotate(schema)  # @dataClass on every classified field (core/graph/classification.py): the SDL shows it
    return schema


def schema_sdl(schema: strawberry.Schema) -> str:
    return schema.as_str().rstrip() + "\n"
