"""What a caller may see in full: ID numbers, phones, health, disability and income (敏感信息).

The rules, all decided from the actor's per-request scopes (never per row against Casbin):
- ID numbers and phones (身份证号码, 电话) are masked in the contract's format unless the actor holds
  ``read_sensitive`` on ``person`` in the record's region;
- health (健康状况: chronic, major disease, hospitalised), disability (残疾类别和等级) and income and assets
  (收入与财产) are withheld (null) unless the actor holds ``read`` on the object type ``health``,
  ``disability`` or ``income`` in the record's region. They are separate objects so that, for example, a
  medical-insurance analyst may see health but not full ID numbers.

Every value handed out in full is noted on the request context; at the end of the operation
:func:`flush_disclosures` writes one audit row per record (who, what fields, which record, when, from where)
in the request's session, and the response is withheld if that write fails (see ``schema/audit.py``).
``context`` is anything with an ``actor`` attribute (the GraphQL request context).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import insert

from aidgraph.core.graph.idnumber import mask, mask_phone
from aidgraph.core.storage.models import AuditLog

T = TypeVar("T")

_DISCLOSURES = "_aidgraph_disclosures"
READ_SENSITIVE_ACTION = "read_sensitive"


def disclosures(context: Any) -> dict[tuple[str, Any], dict]:
    """Records disclosed in full during this request: ``(object_type, id) -> {region_code, fields}``."""
    found = getattr(context, _DISCLOSURES, None)
    if found is None:
        found = {}
        setattr(context, _DISCLOSURES, found)
    return found


def note_disclosure(context: Any, object_type: str, object_id: Any, region_code: str | None, field: str) -> None:
    entry = disclosures(context).setdefault((object_type, object_id), {"region_code": region_code, "fields": set()})
    entry["fields"].add(field)


def may_read_sensitive(context: Any, region_code: str | None, object_type: str = "person") -> bool:
    return context.actor.may(READ_SENSITIVE_ACTION, region_code, object_type)


def may_read_field_group(context: Any, region_code: str | None, group: str) -> bool:
    """``group`` is ``health``, ``disability`` or ``income``."""
    return context.actor.may("read", region_code, group)


def id_number(context: Any, person) -> str:
    if may_read_sensitive(context, person.region_code):
        note_disclosure(context, "person", person.id, person.region_code, "idNumber")
        return person.id_number
    return mask(person.id_number)


def phone(context: Any, person) -> str | None:
    if person.phone is None:
        return None
    if may_read_sensitive(context, person.region_code):
        note_disclosure(context, "person", person.id, person.region_code, "phone")
        return person.phone
    return mask_phone(person.phone)


def _gated(context: Any, person, value: T, group: str, field: str) -> T | None:
    if not may_read_field_group(context, person.region_code, group):
        return None
    if value is not None:
        note_disclosure(context, "person", person.id, person.region_code, field)
    return value


def health(context: Any, person, value: T, field: str = "health") -> T | None:
    """Health values (chronic, major disease, hospitalised): null for callers who may not read them."""
    return _gated(context, person, value, "health", field)


def disability(context: Any, person, value: T, field: str = "disability") -> T | None:
    """Disability category and level: null for callers who may not read them."""
    return _gated(context, person, value, "disability", field)


def income_visible(context: Any, household) -> bool:
    """May the caller see the household's incomes and assets (economics, economic items)?"""
    if may_read_field_group(context, household.region_code, "income"):
        note_disclosure(context, "household", household.id, household.region_code, "economics")
        return True
    return False


def audit_rows(context: Any, operation: str | None = None) -> list[dict]:
    actor = context.actor
    rows = []
    for (object_type, object_id), entry in sorted(disclosures(context).items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        detail = {"fields": sorted(entry["fields"])}
        if operation:
            detail["operation"] = operation
        rows.append({"actor": actor.username, "action": READ_SENSITIVE_ACTION, "object_type": object_type,
                     "object_id": str(object_id), "region_code": entry["region_code"],
                     "remote_addr": actor.remote_addr, "detail": detail})
    return rows


async def flush_disclosures(context: Any, session, operation: str | None = None) -> int:
    """Write the request's disclosure audit rows (one statement) in ``session``; the caller commits."""
    rows = audit_rows(context, operation)
    if rows:
        await session.execute(insert(AuditLog), rows)
    disclosures(context).clear()
    return len(rows)


# --- reading the audit log (``aidgraph audit`` and the ``auditLog`` query) ------------------------------


def audit_filter(scope, user: str | None = None, since=None, action: str | None = None) -> list:
    """Where-clauses of an audit log read: the reader's ``audit_read`` scope on the record's region, and the
    optional user, start date and action."""
    import datetime as dt

    clauses = [scope.predicate(AuditLog.region_code)]
    if user:
        clauses.append(AuditLog.actor == user)
    if since is not None:
        start = since if isinstance(since, dt.datetime) else dt.datetime.combine(since, dt.time())
        clauses.append(AuditLog.at >= start)
    if action:
        clauses.append(AuditLog.action == action)
    return clauses


async def audit_page(session, scope, *, user=None, since=None, action=None, first: int = 20,
                     before_id: int | None = None):
    """A page of the audit log, newest first (keyset on id): (rows, has_next, total)."""
    from sqlalchemy import func, select

    clauses = audit_filter(scope, user, since, action)
    stmt = select(AuditLog).where(*clauses)
    if before_id is not None:
        stmt = stmt.where(AuditLog.id < before_id)
    rows = list((await session.execute(stmt.order_by(AuditLog.id.desc()).limit(first + 1))).scalars())
    total = (await session.execute(select(func.count()).select_from(AuditLog).where(*clauses))).scalar_one()
    return rows[:first], len(rows) > first, total


def income_covers(context: Any, scope) -> bool:
    """May the caller see incomes everywhere in ``scope`` (a list of households across regions, such as the
    eligibility gaps of 政策找人, whose reasons and amounts are computed from incomes)?"""
    income = context.actor.scope("read", "income")
    if scope.unrestricted:
        return income.unrestricted
    return all(income.contains(p) for p in scope.prefixes)


def eligibility_visible(context: Any, household) -> bool:
    """Eligibility reasons and amounts name the household's per-capita income: the income gate applies."""
    return income_visible(context, household)
