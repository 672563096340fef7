"""Assemble the GraphQL schema from the core's operation modules and the plugins' contributions.

Each contributor exposes ``Query`` and/or ``Mutation`` classes (strawberry types). Their fields are merged
into the root types; two contributors defining the same root field is a start-up error naming both, never
a silent override.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types

from aidgraph.schema.types import Alert, Enrollment, Household, Person
from aidgraph.core.policy.host import graphql_contributions, graphql_types
from aidgraph.core.storage.config import load_settings
from aidgraph.schema.audit import AuditDisclosures
from aidgraph.schema.hardening import hardening_extensions

CORE_SCHEMA_MODULES: tuple[str, ...] = (
    "aidgraph.schema.households",
    "aidgraph.schema.audit",
    "aidgraph.schema.monitoring",
    "aidgraph.schema.search",
    "aidgraph.schema.programs",
    "aidgraph.schema.simulation",
    "aidgraph.schema.casework",
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
    definition = cls.__strawberry_definition__
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


def plugin_contributions(pm) -> tuple[list[Contribution], list[type]]:
    """The plugins' Query/Mutation pieces (``aidgraph_graphql_fields``) and extra types (``aidgraph_graphql_types``)."""

    pieces = [(f"plugin {name}", c.query, c.mutation) for name, c in graphql_contributions(pm)]
    return pieces, graphql_types(pm)


def build_schema(contributions: Iterable[Contribution] = (), extensions: Sequence[type[SchemaExtension] | SchemaExtension] = (),
                 settings=None, pm=None) -> strawberry.Schema:
    """The schema: core modules first, then ``contributions`` (from plugins), with a duplicate-field check.

    Every schema gets the hardening limits of ``settings`` (default: from the environment) and the audit of
    disclosed values (schema/hardening.py, schema/audit.py)."""

    # Frontends send the same few operations over and over: parse and validate each text once (validation
    # rules here depend on the text only; the cost limit, which reads variables, runs on every request).
    # (strawberry keeps both caches at module level per maxsize, so a fresh extension per request shares them)
    # (the parse and validation caches are hardening's BoundedDocuments: bounded in bytes, limits checked first)
    extensions = [*hardening_extensions(settings or load_settings()), AuditDisclosures, *extensions]
    extra_types: list[type] = []
    if pm is not None:  # the plugin manager's contributions, checked for duplicates like the core's
        pieces, extra_types = plugin_contributions(pm)
        contributions = [*contributions, *pieces]
    everything = core_contributions() + list(contributions)
    query = _merge("Query", [(n, q) for n, q, _ in everything if q is not None])
    mutation = _merge("Mutation", [(n, m) for n, _, m in everything if m is not None])
    from aidgraph.schema.scalars import SCALAR_OVERRIDES  # timestamps answered in UTC with their zone

    schema = strawberry.Schema(query=query, mutation=mutation,
                               types=[Household, Person, Enrollment, Alert, *extra_types], extensions=list(extensions),
                               scalar_overrides=SCALAR_OVERRIDES)
    from aidgraph.schema.classification import annotate

    annotate(schema)  # @dataClass on every classified field (core/graph/classification.py): the SDL shows it
    return schema


def schema_sdl(schema: strawberry.Schema) -> str:
    return schema.as_str().rstrip() + "\n"
