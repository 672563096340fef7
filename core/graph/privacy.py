"""What a caller may see in full: ID numbers, phones, health, disability and income (敏感信息).

The rules, all decided from the actor's per-request scopes (never per row against Casbin):
- ID numbers and phones (身份证号码, 电话) are masked in the contract's format unless the actor holds
  ``read_sensitive`` on ``person`` in the record's region;
- health (健康状况: chronic, major disease, hospitalised), disability (残疾类别和等级) and income and assets
  (收入与财产) are withheld (null) unless the actor holds ``read`` on the object type ``health``,
  ``disability`` or ``income`` in the record's region. They are separate objects so that, for example, a
  medical-insurance analyst may see health but not full ID numbers.

Every value handed out in full is noted on the request context; at the end of the operation
:func:`write_disclosures` commits one audit row per record (who, what fields, which record, when, from where)
through the database's group-commit writer, and the response is withheld if that write fails (see
``schema/audit.py``).
``context`` is anything with an ``actor`` attribute (the GraphQL request context).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, TypeVar

from aidgraph.core.graph.audit import append_sealed

from aidgraph.core.graph.idnumber import mask, mask_phone
from aidgraph.core.storage.models import AuditLog
import datetime as dt
from sqlalchemy import func, select

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


def id_number(context: Any, person: Any) -> str:
    if may_read_sensitive(context, person.region_code):
        note_disclosure(context, "person", person.id, person.region_code, "idNumber")
        return person.id_number
    return mask(person.id_number)


def phone(context: Any, row, object_type: str = "person") -> str | None:
    """A row's phone (a person's, a volunteer's): in full for a caller who may read sensitive data in the row's
    region (the read is disclosure-audited against ``object_type``), masked (138****1234) for anyone else."""
    if row.phone is None:
        return None
    if may_read_sensitive(context, row.region_code):
        note_disclosure(context, object_type, row.id, row.region_code, "phone")
        return row.phone
    return mask_phone(row.phone)


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


def audit_rows(context: Any, operation: str | None = None) -> list[dict[str, Any]]:
    actor = context.actor
    rows = []
    for (object_type, object_id), entry in sorted(disclosures(context).items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        detail: dict[str, Any] = {"fields": sorted(entry["fields"])}
        if operation:
            detail["operation"] = operation
        rows.append({"actor": actor.username, "action": READ_SENSITIVE_ACTION, "object_type": object_type,
                     "object_id": str(object_id), "region_code": entry["region_code"],
                     "remote_addr": actor.remote_addr, "detail": detail})
    return rows


class DisclosureWriter:
    """Group commit of disclosure audit rows: one writer per database and event loop.

    Every request that disclosed values waits until its rows are committed (nothing is handed out without its
    audit record), but the rows of all requests waiting at once go in one transaction: while a batch commits,
    the next requests queue, and the next batch takes them all. On SQLite (one writer at a time) and for the
    audit chain's head row (one sealer at a time) this turns N concurrent write transactions into one or two,
    which is what kept readers waiting under load (issue 12). If a batch fails, every request in it fails.
    """

    def __init__(self, factory: Any):
        self._factory = factory
        self._queue: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, rows: list[dict[str, Any]]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
            _DRAINING.add(self._task)
            self._task.add_done_callback(_DRAINING.discard)
        await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                async with self._factory() as session:
                    # inserted already sealed into the audit chain (one INSERT, no update of each row after it)
                    all_rows = [row for rows, _ in batch for row in rows]
                    await session.run_sync(lambda s: append_sealed(s, all_rows))
                    await session.commit()
            except Exception as exc:  # noqa: BLE001 - every waiting request learns it, none is answered
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


_WRITERS: dict[tuple[int, int], tuple[Any, DisclosureWriter]] = {}
_DRAINING: set[asyncio.Task[None]] = set()
"""Strong references to the writers' running tasks (the event loop keeps only weak ones): a writer forgotten by
:data:`_WRITERS` still finishes the batch its requests wait for."""


def disclosure_writer(factory: Any) -> DisclosureWriter:
    """The writer of ``factory``'s database in the running event loop (created on first use)."""
    key = (id(factory), id(asyncio.get_running_loop()))
    found = _WRITERS.get(key)
    if found is None or found[0] is not factory:
        if len(_WRITERS) > 64:  # loops and engines of finished servers (tests start many)
            _WRITERS.clear()
        found = (factory, DisclosureWriter(factory))
        _WRITERS[key] = found
    return found[1]


async def write_disclosures(context: Any, operation: str | None = None) -> int:
    """Commit the request's disclosure audit rows through its database's group-commit writer."""
    rows = audit_rows(context, operation)
    disclosures(context).clear()
    if rows:
        await disclosure_writer(context.session_factory).write(rows)
    return len(rows)


# --- reading the audit log (``aidgraph audit`` and the ``auditLog`` query) ------------------------------


def audit_filter(scope, user: str | None = None, since=None, action: str | None = None) -> list:
    """Where-clauses of an audit log read: the reader's ``audit_read`` scope on the record's region, and the
    optional user, start date and action."""

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


# --- what each right guards (issue 12): one classification for fields, summaries, logs and free text ---------

GUARDS: dict[str, tuple[str, str]] = {
    "identity": (READ_SENSITIVE_ACTION, "person"),  # ID numbers, phones, birth dates (they fill a masked ID)
    "health": ("read", "health"),
    "disability": ("read", "disability"),
    "income": ("read", "income"),
}
"""The classes of sensitive information and the right (action, Casbin object) that guards each."""

INDICATOR_CLASSES: dict[str, frozenset[str]] = {
    "hospitalisation": frozenset({"health"}),
    "chronic_disease": frozenset({"health"}),
    "major_disease": frozenset({"health"}),
    "expenditure_surge": frozenset({"income", "health"}),  # rigid expenditure: medical bills among them
    "income_drop": frozenset({"income"}),
    "disability_registration": frozenset({"disability"}),
}
"""Monitoring indicators (监测指标) whose mere name discloses a class. A plugin's own indicator is classified
with :func:`classify_indicator`; an indicator not listed is also classified by the terms of its key."""

PROGRAM_DOMAIN_CLASSES: dict[str, frozenset[str]] = {"medical": frozenset({"health"}),
                                                      "disability": frozenset({"disability"})}
"""Aid domains whose events disclose a class by themselves (a medical-aid payment says someone is ill)."""

_TERMS: dict[str, re.Pattern] = {
    "health": re.compile(r"住院|疾病|病|医疗|医保|就医|诊断|hospital|disease|illness|medical|diagnos|chronic", re.I),
    "disability": re.compile(r"残疾|残联|伤残|disab", re.I),
    "income": re.compile(r"收入|工资|财产|存款|支出|资产|income|salary|wage|asset|expenditure|"
                         r"\d[\d,]*(?:\.\d+)?\s*(?:元|yuan|CNY)|(?:¥|￥)\s*\d", re.I),
}

AUDIT_DETAIL_CLASSES: dict[str, frozenset[str]] = {
    "amount": frozenset({"income"}), "aid": frozenset({"income"}), "secondary": frozenset({"income"}),
    "income": frozenset({"income"}), "monthlyAmount": frozenset({"income"}), "perCapitaIncome": frozenset({"income"}),
    "idNumber": frozenset({"identity"}), "phone": frozenset({"identity"}), "birthDate": frozenset({"identity"}),
}
"""Audit-log detail keys whose value is of a class; other values are classified by their text."""

AUDIT_OBJECT_CLASSES: dict[str, frozenset[str]] = {"economic_item": frozenset({"income"}),
                                                    "medical_claim": frozenset({"health", "income"})}

WITHHELD = "[withheld]"


def classify_indicator(key: str, *classes: str) -> None:
    """Declare the classes an indicator's name discloses (plugins call this for their own indicators)."""
    unknown = set(classes) - set(GUARDS)
    if unknown:
        raise ValueError(f"unknown sensitive classes {sorted(unknown)}: use {sorted(GUARDS)}")
    INDICATOR_CLASSES[key] = frozenset(classes)


def classes_of_text(text: str | None) -> set[str]:
    """The classes a piece of text discloses, by the terms it contains (ID and phone numbers excluded:
    :func:`mask_free_text` masks those in place)."""
    if not text:
        return set()
    return {cls for cls, pattern in _TERMS.items() if pattern.search(text)}


def classes_of_indicator(key: str) -> frozenset[str]:
    return INDICATOR_CLASSES.get(key) or frozenset(classes_of_text(key.replace("_", " ")))


def allowed_classes(context: Any, region_code: str | None) -> set[str]:
    """The classes the caller may read for a record of ``region_code`` (scopes are decided once per request)."""
    actor = context.actor
    return {cls for cls, (action, obj) in GUARDS.items() if actor.may(action, region_code, obj)}


def may_read_class(context: Any, region_code: str | None, cls: str) -> bool:
    action, obj = GUARDS[cls]
    return context.actor.may(action, region_code, obj)


def birth_date(context: Any, person):
    """The full birth date only with the identity right: with the masked ID's visible digits it restores the
    whole number (its middle is the birth date, and the check character leaves one candidate). Others see
    ``age`` (whole years), which leaves hundreds of candidates."""
    if may_read_sensitive(context, person.region_code):
        note_disclosure(context, "person", person.id, person.region_code, "birthDate")
        return person.birth_date
    return None


def visible_indicators(context: Any, region_code: str | None, keys: list[str]) -> list[str]:
    """Indicator keys whose classes the caller may read (a hospitalisation alert is not named to a caller
    without the health right: the alert, its level and score stay visible)."""
    allowed = allowed_classes(context, region_code)
    return [k for k in keys if classes_of_indicator(k) <= allowed]


def guarded_text(context: Any, region_code: str | None, text: str | None,
                 classes: frozenset[str] | set[str] = frozenset()) -> str | None:
    """A summary or note as this caller may see it: withheld entirely when it discloses (by its terms or by
    ``classes``, e.g. the program's domain) a class the caller lacks; otherwise with ID and phone numbers
    masked unless the caller holds the identity right."""
    if text is None:
        return None
    allowed = allowed_classes(context, region_code)
    if (set(classes) | classes_of_text(text)) - allowed - {"identity"}:
        return WITHHELD
    return text if "identity" in allowed else mask_free_text(text)


def audit_detail(context: Any, region_code: str | None, object_type: str | None, detail: dict | None) -> dict | None:
    """An audit row's detail as this caller may see it: values of classes they lack replaced by
    :data:`WITHHELD` (an auditor without the income right sees that an amount was recorded, not the amount)."""
    if detail is None:
        return None
    allowed = allowed_classes(context, region_code)
    object_classes = AUDIT_OBJECT_CLASSES.get(object_type or "", frozenset())

    def clean(key: str | None, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(key, v) for v in value]
        if value is None or isinstance(value, bool):
            return value
        classes = set(AUDIT_DETAIL_CLASSES.get(key or "", frozenset()))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if classes - allowed or ("income" in object_classes and "income" not in allowed
                                     and key not in ("householdId", "personId", "total")):
                return WITHHELD
            return value
        text = str(value)
        if key in ("idNumber", "phone") and "identity" not in allowed:
            return mask_free_text(text) if mask_free_text(text) != text else mask(text)
        if (classes | classes_of_text(text)) - allowed - {"identity"}:
            return WITHHELD
        if ("income" in object_classes and "income" not in allowed and key in ("amount", "aid", "secondary")):
            return WITHHELD
        return text if "identity" in allowed else mask_free_text(text)

    return {k: clean(k, v) for k, v in detail.items()}


# --- free text: ID and phone numbers typed into notes -------------------------------------------------------

_D = "[0-9\uff10-\uff19]"
_S = "[ \t\u3000\\-\u2010\u2011\u2012\u2013\u2014\uff0d.\u00b7]{0,2}"
_X = "[0-9\uff10-\uff19Xx\uff38\uff58]"
_FREE_ID18 = re.compile(rf"(?<![0-9\uff10-\uff19A-Za-z]){_D}(?:{_S}{_D}){{16}}{_S}{_X}(?![0-9\uff10-\uff19Xx\uff38\uff58])")
_FREE_ID15 = re.compile(rf"(?<![0-9\uff10-\uff19A-Za-z]){_D}(?:{_S}{_D}){{14}}(?![0-9\uff10-\uff19])")
_FREE_MOBILE = re.compile(rf"(?:[+\uff0b]?(?:86|\uff18\uff16){_S})?(?<![0-9\uff10-\uff19A-Za-z])[1\uff11](?:{_S}{_D}){{10}}"
                          rf"(?![0-9\uff10-\uff19])")
_FREE_LANDLINE = re.compile(rf"(?<![0-9\uff10-\uff19A-Za-z])[(\uff08]?[0\uff10]{_D}{{1,3}}[)\uff09]?{_S}{_D}(?:{_S}{_D}){{6,7}}"
                            rf"(?![0-9\uff10-\uff19])")
_FULL_WIDTH = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)}, "\uff38": "X", "\uff58": "X", "x": "X"})


def _digits(text: str) -> str:
    return re.sub(r"[^0-9X]", "", text.translate(_FULL_WIDTH))


def mask_free_text(text: str | None) -> str | None:
    """Mask every resident ID number (18 or 15 digits) and phone number (mobile, with or without +86; landline
    with its area code) in free text, whatever the format: spaces, dashes, dots, full-width digits. The
    number is replaced by its masked canonical form (``440106********123X``, ``138****5678``). One function
    for every note typed by a caseworker (alert dispositions, decisions, referrals, ...)."""
    if not text:
        return text
    text = _FREE_ID18.sub(lambda m: mask(_digits(m.group(0))), text)
    text = _FREE_ID15.sub(lambda m: mask(_digits(m.group(0))), text)
    text = _FREE_MOBILE.sub(lambda m: mask_phone(_digits(m.group(0))[-11:]), text)
    return _FREE_LANDLINE.sub(lambda m: mask_phone(_digits(m.group(0))), text)


def free_text(context: Any, region_code: str | None, text: str | None) -> str | None:
    """A note as this caller may see it (:func:`guarded_text`): call it for every free-text field you show."""
    return guarded_text(context, region_code, text)


def actor_region(actor) -> str | None:
    """The region an actor's own audit rows (searches, audit reads) are filed under, so the auditors of that
    region can read them: the longest code that all the actor's grants lie under (or the province of the
    first grant when they span provinces; null only for actors without grants, such as system jobs)."""
    codes = sorted({g.region_code for g in getattr(actor, "grants", ())})
    if not codes:
        return None
    common = codes[0]
    for code in codes[1:]:
        while not code.startswith(common):
            common = common[:-1]
    for width in (12, 9, 6, 4, 2):  # snap to a division level
        if len(common) >= width:
            return common[:width]
    return codes[0][:2]
