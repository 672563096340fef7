"""Compiled contract operations: HouseholdList and HouseholdDetail answered without per-field execution.

Why it exists: the contract's household list and detail pages are most of what frontends ask, and the
general path (strawberry over graphql-core) spends its time on per-field machinery, about 700 resolver
calls, awaitables and info objects for one 50-household page, several times the database's own work
(issue 15, item 1). When a POSTed operation is one of the documents below (compared after parsing and
printing, so layout and comments do not matter) and its variables are exactly what the general path would
take unchanged, the answer is built here in plain Python from
- the same scoped reads (:mod:`aidgraph.core.graph.reads`, the functions the request's DataLoaders call):
  each statement carries the request's one compiled scope predicate, nothing is filtered in Python;
- the same privacy functions (:mod:`aidgraph.core.graph.privacy`) for every masked or withheld value, which
  note the disclosures exactly as the resolvers do;
- the same disclosure audit (:func:`aidgraph.schema.audit.finish_disclosures`), metrics and hardening limits.

Anything else goes to the general path and is answered there: another document, a variable the general path
would coerce or refuse (a page size above the maximum, a malformed cursor, a region code that is not one),
a stored value a GraphQL type would reject, any exception while building. The general path then reports the
error itself, so errors have one source. ``X-Aidgraph-Execution: general`` on a request, or
``AIDGRAPH_COMPILED_OPERATIONS=0`` for a deployment, sends everything to the general path (tests and the
benchmark compare the two). tests/test_compiled_operations.py checks, for several roles on both engines, that
both paths answer byte for byte the same and write the same audit rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, GraphQLSchema, parse, print_ast, validate
from strawberry.types import ExecutionResult

from aidgraph.core.graph import privacy, reads
from aidgraph.core.graph.idnumber import age_on
from aidgraph.core.storage import models
from aidgraph.core.storage.config import Settings
from aidgraph.schema.audit import finish_disclosures
from aidgraph.schema.context import Context
from aidgraph.schema.hardening import document_problems
from aidgraph.schema.metrics import COMPILED_ANSWERS, ERRORS, LATENCY, REQUESTS, operation_label
from aidgraph.schema.relay import db_id, decode_cursor, encode_cursor, page_size, to_global_id
from aidgraph.schema.scalars import serialize as serialize_datetime
from aidgraph.schema.types import chain_summary

log = logging.getLogger(__name__)

GENERAL_PATH_HEADER = "x-aidgraph-execution"
"""A request carrying this header with the value ``general`` is executed by the general path."""

HOUSEHOLD_LIST = """
query HouseholdList($regionCode: String!, $filter: HouseholdFilter, $first: Int, $after: String) {
  households(regionCode: $regionCode, filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id householdNumber memberCount categories warningLevel
        region { code name }
        head { id name idNumber }
      }
    }
  }
}
"""

HOUSEHOLD_DETAIL = """
query HouseholdDetail($id: ID!) {
  household(id: $id) {
    id householdNumber address categories warningLevel
    region { code name level }
    members {
      relationToHead since
      person { id name idNumber sex birthDate age disabilityLevel chronicDisease employmentStatus labourCapacity }
    }
    economics { perCapitaMonthlyIncome totalFinancialAssets assessedAt }
    enrollments { id status monthlyAmount startDate endDate program { key name domain } }
    aidChain(first: 50) { edges { node { at kind summary program { key } } } }
    alerts { id level status score indicators raisedAt }
  }
}
"""


class Fallback(Exception):
    """The operation is left to the general path (a variable it would coerce or refuse, ...)."""


INT_MIN, INT_MAX = -(2 ** 31), 2 ** 31 - 1


def _string(variables: dict[str, Any], name: str, required: bool = False) -> str | None:
    """A String/ID variable the general path takes as it is (a number for an ID would be coerced: not here)."""
    value = variables.get(name)
    if value is None:
        if required:
            raise Fallback(name)
        return None
    if type(value) is not str:
        raise Fallback(name)
    return value


def _int(variables: dict[str, Any], name: str) -> int | None:
    value = variables.get(name)
    if value is None:
        return None
    if type(value) is not int or not INT_MIN <= value <= INT_MAX:
        raise Fallback(name)
    return value


def _enum_name(enum: type[Any], value: Any) -> str:
    """How strawberry answers a stored enum value: the member's name (a value outside the enum: general path)."""
    return str(enum(value).name)


def _optional_enum(enum: type[Any], value: Any) -> str | None:
    return _enum_name(enum, value) if value else None


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _datetime(value: dt.datetime | None) -> str | None:
    return serialize_datetime(value) if value is not None else None


FILTER_FIELDS = {"category": models.LowIncomeCategory, "warningLevel": models.WarningLevel, "programKey": None,
                 "nameContains": None}


def _filter_clauses(context: Context, raw: Any) -> list[Any]:
    """The HouseholdFilter variable as the general path's clauses (reads.household_filter_clauses)."""
    if raw is None:
        return []
    if not isinstance(raw, dict) or not set(raw) <= set(FILTER_FIELDS):
        raise Fallback("filter")
    values: dict[str, str | None] = {}
    for key, enum in FILTER_FIELDS.items():
        value = raw.get(key)
        if value is not None and (type(value) is not str or (enum is not None and value not in enum.__members__)):
            raise Fallback("filter")
        values[key] = enum[value].value if enum is not None and value is not None else value
    return reads.household_filter_clauses(values["category"], values["warningLevel"], values["programKey"],
                                          values["nameContains"], context.programs.category_programs())


LEVEL_OF_SEVERITY = {severity: level for level, severity in models.WARNING_SEVERITY.items()}


@dataclass(frozen=True)
class Head:
    """What :func:`aidgraph.core.graph.privacy.id_number` reads of a person, from the list page's row."""
    id: int
    region_code: str
    id_number: str


async def household_list(context: Context, variables: dict[str, Any]) -> dict[str, Any]:
    """HouseholdList: the resolver of ``Query.households`` and the fields of the contract's selection."""
    region_code = _string(variables, "regionCode", required=True)
    assert region_code is not None
    first, after = _int(variables, "first"), _string(variables, "after")
    try:
        n = page_size(first)
        position = decode_cursor(after, 1)
    except GraphQLError as e:
        raise Fallback("first/after") from e
    if position and not (position[0].isascii() and position[0].isdigit() and len(position[0]) <= 19):
        raise Fallback("after")
    after_id = int(position[0]) if position else None
    clauses = _filter_clauses(context, variables.get("filter"))
    async with context.db() as session:
        rows, has_next, total = await reads.household_list_page(
            session, context.scope(), context.scope("person"), context.scope("alert"), region_code, clauses, n,
            after_id)
        categories = await reads.categories_by_household(session, context.enrollment_visibility,
                                                         [r.id for r in rows], context.programs.category_programs()
                                                         ) if rows else {}
    edges = []
    for r in rows:
        if r.region_name is None:
            raise Fallback("region")  # a non-null field the general path would report
        cursor = encode_cursor(r.id)
        edges.append({"cursor": cursor, "node": {
            "id": to_global_id("Household", r.id),
            "householdNumber": r.household_number,
            "memberCount": r.member_count,
            "categories": [_enum_name(models.LowIncomeCategory, c) for c in categories.get(r.id, [])],
            "warningLevel": _optional_enum(models.WarningLevel, LEVEL_OF_SEVERITY[r.severity])
            if r.severity else None,
            "region": {"code": r.region_code, "name": r.region_name},
            "head": None if r.head_id is None else {
                "id": to_global_id("Person", r.head_id), "name": r.head_name,
                "idNumber": privacy.id_number(context, Head(r.head_id, r.head_region_code, r.head_id_number))},
        }})
    return {"households": {"totalCount": total,
                           "pageInfo": {"hasNextPage": has_next,
                                        "endCursor": edges[-1]["cursor"] if edges else None},
                           "edges": edges}}


def _person(context: Context, p: models.Person, today: dt.date) -> dict[str, Any]:
    return {
        "id": to_global_id("Person", p.id),
        "name": p.name,
        "idNumber": privacy.id_number(context, p),
        "sex": _enum_name(models.Sex, p.sex),
        "birthDate": _date(privacy.birth_date(context, p)),
        "age": age_on(p.birth_date, today),
        "disabilityLevel": privacy.disability(context, p, p.disability_level, "disability_level"),
        "chronicDisease": privacy.health(context, p, p.chronic_disease, "chronic_disease"),
        "employmentStatus": _optional_enum(models.EmploymentStatus, p.employment_status),
        "labourCapacity": _optional_enum(models.LabourCapacity, p.labour_capacity),
    }


def _economics(context: Context, household: models.Household, e: Any) -> dict[str, Any]:
    """As ``Household.economics`` decides: withheld (all null) without the income right (schema/types.py)."""
    if e is None or not privacy.income_visible(context, household):
        return {"perCapitaMonthlyIncome": None, "totalFinancialAssets": None, "assessedAt": None}
    # every figure the resolver converts, so a value it could not convert fails here too (general path)
    float(e.monthly_income), float(e.monthly_deduction), float(e.per_capita_financial_assets)
    float(e.annual_expenditure)
    return {"perCapitaMonthlyIncome": float(e.per_capita_monthly_income),
            "totalFinancialAssets": float(e.total_financial_assets),
            "assessedAt": _datetime(e.assessed_at)}


async def household_detail(context: Context, variables: dict[str, Any]) -> dict[str, Any]:
    """HouseholdDetail: ``Query.household`` and the fields of the contract's selection (schema/types.py)."""
    key = db_id(_string(variables, "id", required=True), "Household")
    if key is None:
        return {"household": None}
    today = dt.date.today()
    async with context.db() as session:
        h = (await reads.households_by_id(session, context.scope("household"), [key])).get(key)
        if h is None:
            return {"household": None}
        ids = [h.id]
        categories = (await reads.categories_by_household(session, context.enrollment_visibility, ids,
                                                          context.programs.category_programs())).get(h.id, [])
        level = (await reads.warning_levels_by_household(session, context.scope("alert"), ids)).get(h.id)
        region = (await reads.regions_by_code(session, [h.region_code])).get(h.region_code)
        members = (await reads.members_by_household(session, context.scope("person"), ids)).get(h.id, [])
        economics = (await context.economics_of(session, ids, in_scope=True)).get(h.id)
        enrollments = (await reads.enrollments_by_household(session, context.enrollment_visibility, ids)
                       ).get(h.id, [])
        chain, _, _ = await reads.aid_chain_page(session, context.scope(), h.id, page_size(50), None, count=False)
        alerts = (await reads.alerts_by_household(session, context.scope("alert"), ids)).get(h.id, [])
    if region is None:
        raise Fallback("region")
    province = h.region_code[:2]
    programs = context.programs
    enrollment_items = []
    for e in enrollments:
        program = programs.get(e.program_key, e.province_code)
        enrollment_items.append({
            "id": to_global_id("Enrollment", e.id), "status": _enum_name(models.EnrollmentStatus, e.status),
            "monthlyAmount": float(e.monthly_amount) if e.monthly_amount is not None else None,
            "startDate": _date(e.start_date), "endDate": _date(e.end_date),
            "program": {"key": program.key, "name": program.name, "domain": program.domain}})
    return {"household": {
        "id": to_global_id("Household", h.id),
        "householdNumber": h.household_number,
        "address": h.address,
        "categories": [_enum_name(models.LowIncomeCategory, c) for c in categories],
        "warningLevel": _optional_enum(models.WarningLevel, level),
        "region": {"code": region.code, "name": region.name, "level": _enum_name(models.RegionLevel, region.level)},
        "members": [{"relationToHead": _enum_name(models.RelationToHead, m.relation_to_head),
                     "since": _date(m.since), "person": _person(context, m.person, today)} for m in members],
        "economics": _economics(context, h, economics),
        "enrollments": enrollment_items,
        "aidChain": {"edges": [{"node": {
            "at": _datetime(c.at), "kind": _enum_name(models.AidChainKind, c.kind),
            "summary": chain_summary(context, c.summary, c.program_key, province, h.region_code),
            "program": {"key": programs.get(c.program_key, province).key} if c.program_key else None}}
            for c in chain]},
        "alerts": [{"id": to_global_id("Alert", a.id), "level": _enum_name(models.WarningLevel, a.level),
                    "status": _enum_name(models.AlertStatus, a.status), "score": float(a.score),
                    "indicators": privacy.visible_indicators(context, a.region_code, list(a.indicators or [])),
                    "raisedAt": _datetime(a.raised_at)} for a in alerts],
    }}


Builder = Callable[[Context, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class CompiledOperation:
    name: str
    text: str
    build: Builder


COMPILED: tuple[CompiledOperation, ...] = (
    CompiledOperation("HouseholdList", HOUSEHOLD_LIST, household_list),
    CompiledOperation("HouseholdDetail", HOUSEHOLD_DETAIL, household_detail),
)


def normalised(text: str) -> str:
    """An operation's text as graphql-core prints it: the same for two texts that differ only in layout."""
    return print_ast(parse(text, no_location=True))


MAX_REMEMBERED_TEXTS = 256


class CompiledOperations:
    """The compiled operations a schema can answer, and the recognition of the documents that ask for them."""

    def __init__(self, schema: GraphQLSchema, settings: Settings):
        self.schema = schema
        self.settings = settings
        self.by_text: dict[str, CompiledOperation] = {}
        for op in COMPILED:
            document = parse(op.text)
            # a schema without these fields (a test's partial schema) simply has no compiled operations
            if not validate(schema, document) and not document_problems(document, op.name, {}, settings, schema):
                self.by_text[normalised(op.text)] = op
        self.longest = max((len(op.text) for op in COMPILED), default=0)
        self._seen: dict[str, CompiledOperation | None] = {}
        self._documents = {op.name: parse(op.text) for op in COMPILED}
        self._limits: dict[tuple[str, int | None], bool] = {}
        self._lock = threading.Lock()

    def match(self, text: str | None, operation_name: str | None) -> CompiledOperation | None:
        """The compiled operation ``text`` asks for, or None (the general path answers)."""
        if not text or not self.by_text or len(text) > 4 * self.longest:
            return None
        if text in self._seen:
            found = self._seen[text]
        else:
            try:
                found = self.by_text.get(print_ast(parse(text, no_location=True,
                                                         max_tokens=self.settings.max_query_tokens)))
            except GraphQLError:
                found = None  # the general path reports the syntax error
            with self._lock:
                if len(self._seen) >= MAX_REMEMBERED_TEXTS:
                    self._seen.clear()
                self._seen[text] = found
        if found is None or operation_name not in (None, found.name):
            return None
        return found

    def within_limits(self, op: CompiledOperation, variables: dict[str, Any]) -> bool:
        """The hardening limits (schema/hardening.py) hold for this operation and page size, as the general
        path checks them; the answer depends only on ``first``, so it is remembered per value."""
        first = variables.get("first")
        key = (op.name, first if type(first) is int else None)
        ok = self._limits.get(key)
        if ok is None:
            ok = not document_problems(self._documents[op.name], op.name, variables, self.settings, self.schema)
            with self._lock:
                if len(self._limits) >= MAX_REMEMBERED_TEXTS:
                    self._limits.clear()
                self._limits[key] = ok
        return ok

    async def execute(self, context: Context, text: str | None, operation_name: str | None,
                      variables: dict[str, Any] | None) -> ExecutionResult | None:
        """The result of a compiled operation, or None when the general path must answer the request."""
        op = self.match(text, operation_name)
        if op is None:
            return None
        variables = variables if variables is not None else {}
        if not isinstance(variables, dict) or not self.within_limits(op, variables):
            return None
        started = time.perf_counter()
        try:
            data = await op.build(context, variables)
        except Exception as e:  # noqa: BLE001 - whatever it is, the general path answers and reports it
            if not isinstance(e, Fallback):
                log.debug("compiled %s left to the general path: %r", op.name, e)
            privacy.disclosures(context).clear()
            await context.close()  # a fresh session for the general path (a failed statement ends a transaction)
            return None
        error = await finish_disclosures(context, op.name)
        label = operation_label(op.name)
        REQUESTS.labels(label).inc()
        COMPILED_ANSWERS.labels(label).inc()
        LATENCY.labels(label).observe(time.perf_counter() - started)
        if error is not None:
            ERRORS.labels(str((error.extensions or {}).get("code"))).inc()
            return ExecutionResult(data=None, errors=[error])
        return ExecutionResult(data=data, errors=None)
