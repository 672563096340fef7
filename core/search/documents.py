"""Search documents built from the database set-at-a-time: one SQL statement per kind per batch of ids.

A document is always built from the current database row, never from an outbox event's payload, and carries
the row's version as its external version: whichever indexer writes last, an older state can never replace
a newer one (OpenSearch refuses a lower or equal external version with a 409 conflict, which is harmless).

A household's document also shows its warning level (the highest level among its open alerts), which changes
when an alert changes and not the household row. Its version is therefore ``household.version + the sum of
its alerts' versions``: every change to the household or to one of its alerts raises it, and it never goes
down (alerts are not deleted apart from their household), so external versioning stays correct for this
derived field too.

Plugins add fields with ``aidgraph_search_document(entity, record)``; the hook is only called when some
plugin implements it, so a deployment without search plugins pays nothing per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, literal, select
from sqlalchemy.engine import Connection

from aidgraph.core.storage.models import Alert, Enrollment, Household, Person, OPEN_ALERT_STATUSES, WARNING_SEVERITY
from aidgraph.core.search.mapping import SearchLayout, doc_id, region_levels

_LEVEL_BY_SEVERITY = {v: k for k, v in WARNING_SEVERITY.items()}
_ENCRYPTED = ("id_number", "phone")

MODELS: dict[str, type[Person] | type[Household] | type[Enrollment] | type[Alert]] = {
    "PERSON": Person, "HOUSEHOLD": Household, "ENROLLMENT": Enrollment, "ALERT": Alert}


@dataclass(frozen=True)
class Doc:
    """One search document ready for a bulk action."""

    kind: str
    entity_id: int
    version: int
    source: dict[str, Any]

    @property
    def id(self) -> str:
        return doc_id(self.kind, self.entity_id)


def _alert_summary(household_ids: Iterable[int] | None = None):
    """Per household: the sum of its alerts' versions and the severity of its worst open alert."""
    severity = case(*((Alert.level == level, literal(n)) for level, n in WARNING_SEVERITY.items()), else_=literal(0))
    stmt = select(
        Alert.household_id.label("household_id"),
        func.sum(Alert.version).label("alert_versions"),
        func.max(case((Alert.status.in_(OPEN_ALERT_STATUSES), severity), else_=literal(0))).label("open_severity"),
    ).group_by(Alert.household_id)
    if household_ids is not None:
        stmt = stmt.where(Alert.household_id.in_(list(household_ids)))
    return stmt.subquery("alert_summary")


def household_version_expr(summary):
    return Household.version + func.coalesce(summary.c.alert_versions, 0)


def statement(kind: str, ids: list[int] | None = None) -> Select:
    """The one query that reads every column a ``kind`` document needs (all rows, or those with ``ids``)."""
    if kind == "PERSON":
        # not the encrypted columns: the index stores no ID number or phone, and opening them would cost a
        # decryption per person in every reindex
        stmt = select(*(c for c in Person.__table__.c if c.name not in _ENCRYPTED),
                      Person.version.label("doc_version"))
        model: type[Person] | type[Household] | type[Enrollment] | type[Alert] = Person
    elif kind == "HOUSEHOLD":
        summary = _alert_summary(ids)
        stmt = (select(Household.__table__, household_version_expr(summary).label("doc_version"),
                       summary.c.open_severity)
                .outerjoin(summary, summary.c.household_id == Household.id))
        model = Household
    elif kind == "ENROLLMENT":
        stmt = (select(Enrollment.__table__, Enrollment.version.label("doc_version"), Household.household_number)
                .join(Household, Household.id == Enrollment.household_id))
        model = Enrollment
    elif kind == "ALERT":
        stmt = (select(Alert.__table__, Alert.version.label("doc_version"), Household.household_number)
                .join(Household, Household.id == Alert.household_id))
        model = Alert
    else:
        raise ValueError(f"unknown search kind {kind!r}")
    if ids is not None:
        stmt = stmt.where(model.id.in_(ids))
    return stmt.order_by(model.id)


def version_statement(kind: str) -> Select:
    """(id, document version) of every row of ``kind``, by id (for ``index --verify``)."""
    if kind == "HOUSEHOLD":
        summary = _alert_summary()
        return (select(Household.id, household_version_expr(summary))
                .outerjoin(summary, summary.c.household_id == Household.id).order_by(Household.id))
    model = MODELS[kind]
    return select(model.id, model.version).order_by(model.id)


def _base(kind: str, row) -> dict[str, Any]:
    region = row.region_code
    doc = {"kind": kind, "entity_id": row.id, "uid": doc_id(kind, row.id), "region_code": region}
    doc.update(region_levels(region))
    return doc


def _person(row) -> dict[str, Any]:
    doc = _base("PERSON", row)
    doc.update(name=row.name, id_number_index=row.id_number_index, sex=row.sex,
               birth_year=row.birth_date.year if row.birth_date else None)
    return doc


def _household(row) -> dict[str, Any]:
    doc = _base("HOUSEHOLD", row)
    doc.update(household_number=row.household_number, address=row.address,
               warning_level=_LEVEL_BY_SEVERITY.get(row.open_severity or 0))
    return doc


def _enrollment(row) -> dict[str, Any]:
    doc = _base("ENROLLMENT", row)
    doc.update(household_id=row.household_id, household_number=row.household_number, status=row.status,
               program_key=row.program_key)
    return doc


def _alert(row) -> dict[str, Any]:
    doc = _base("ALERT", row)
    doc.update(household_id=row.household_id, household_number=row.household_number, warning_level=row.level,
               status=row.status, indicators=list(row.indicators or []), month=row.month)
    return doc


_BUILDERS = {"PERSON": _person, "HOUSEHOLD": _household, "ENROLLMENT": _enrollment, "ALERT": _alert}


def _plugin_hook(layout: SearchLayout | None):
    pm = getattr(layout, "pm", None)
    hook = getattr(getattr(pm, "hook", None), "aidgraph_search_document", None)
    if hook is None or not hook.get_hookimpls():
        return None
    return hook


def docs_from_rows(kind: str, rows: Iterable, layout: SearchLayout | None = None) -> Iterator[Doc]:
    build = _BUILDERS[kind]
    hook = _plugin_hook(layout)
    allowed = set(layout.plugin_fields.get(kind, ())) if layout is not None else set()
    for row in rows:
        source = build(row)
        if hook is not None:
            record = dict(row._mapping)
            for extra in hook(entity=kind.lower(), record=record):
                for key, value in (extra or {}).items():
                    if key not in allowed:
                        raise ValueError(f"search plugin field {key!r} is not declared for {kind.lower()} "
                                         f"documents by aidgraph_search_fields")
                    source[key] = value
        yield Doc(kind, row.id, int(row.doc_version), {k: v for k, v in source.items() if v is not None})


def load_docs(conn: Connection, kind: str, ids: list[int], layout: SearchLayout | None = None) -> dict[int, Doc]:
    """Documents for ``ids`` of ``kind`` (one statement); ids without a row are absent (deleted)."""
    if not ids:
        return {}
    return {d.entity_id: d for d in docs_from_rows(kind, conn.execute(statement(kind, ids)), layout)}


def stream_docs(conn: Connection, kind: str, batch: int = 5000, layout: SearchLayout | None = None
                ) -> Iterator[list[Doc]]:
    """Every document of ``kind`` in batches: one streamed statement (server-side cursor on PostgreSQL)."""
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(statement(kind))
    for part in result.partitions(batch):
        yield list(docs_from_rows(kind, part, layout))
