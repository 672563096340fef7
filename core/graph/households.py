"""Household registration and changes: the write side of the shared graph (家庭 and 家庭成员).

Services validate the whole input first and report every problem at once (each a :class:`FieldError` with
the field path and a code), then write inside the caller's transaction: membership history, the aid chain,
the audit log and the search outbox together, or nothing. Targets outside the actor's scope are reported
exactly like records that do not exist.

No existence oracle (issue 12): whether an ID number is already known is looked at only once the request is
otherwise valid, so a probe must be a complete registration (which writes and is audited when the person is
new). A person known outside the caller's scope, or known without a current household, is never pulled in
silently: the answer is ``TRANSFER_REQUIRED``, the same text wherever and whoever they are, naming the
procedure (a transfer request to the region that holds them). Household numbers come from a counter row per
region taken under lock, so concurrent registrations in one village do not collide; repeats are answered
through :mod:`aidgraph.core.graph.idempotency`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.graph import aidchain
from aidgraph.core.graph import audit
from aidgraph.core.graph import idempotency
from aidgraph.core.graph import idnumber
from aidgraph.core.graph import outbox
from aidgraph.core.access.actor import Actor
from aidgraph.core.storage import rls
from aidgraph.core.storage.bulk import lock_for_writing
from aidgraph.core.storage.errors import DomainError, ErrorCode, FieldError, not_found
from aidgraph.core.storage.encrypted import id_number_indexer
from aidgraph.core.storage.models import (
    AidChainKind,
    EconomicItem,
    EconomicItemKind,
    EmploymentStatus,
    Household,
    HouseholdCounter,
    LabourCapacity,
    Membership,
    OutboxEntity,
    Person,
    Region,
    RegionLevel,
    RelationToHead,
)

MAX_NAME = 50
MAX_ADDRESS = 200
MAX_SOURCE = 40
MAX_AMOUNT = Decimal("1000000000")
PHONE = re.compile(r"^\+?[0-9][0-9-]{5,18}$")
HOUSEHOLD_LEVELS = (RegionLevel.TOWNSHIP.value, RegionLevel.VILLAGE.value)


@dataclass
class MemberData:
    """A member as entered on a registration form (MemberInput)."""

    name: str
    id_number: str
    relation_to_head: str
    disability_level: int | None = None
    chronic_disease: bool | None = None
    employment_status: str | None = None
    labour_capacity: str | None = None
    phone: str | None = None


@dataclass
class EconomicItemData:
    household_id: int
    person_id: int | None
    kind: str
    source: str
    amount: float | Decimal
    period_start: dt.date
    period_end: dt.date


def _validate_member(m: MemberData, path: str, today: dt.date) -> tuple[list[FieldError], idnumber.ResidentId | None]:
    errors: list[FieldError] = []
    name = (m.name or "").strip()
    if not name:
        errors.append(FieldError(f"{path}.name", "name is required", ErrorCode.VALIDATION))
    elif len(name) > MAX_NAME:
        errors.append(FieldError(f"{path}.name", f"name is longer than {MAX_NAME} characters", ErrorCode.VALIDATION))
    rid = None
    try:
        rid = idnumber.parse(m.id_number or "", today=today)
    except idnumber.InvalidIdNumber as e:
        errors.append(FieldError(f"{path}.idNumber", e.reason, ErrorCode.INVALID_ID_NUMBER))
    if m.relation_to_head not in RelationToHead.__members__:
        errors.append(FieldError(f"{path}.relationToHead", f"unknown relation {m.relation_to_head!r}",
                                 ErrorCode.VALIDATION))
    if m.disability_level is not None and not 1 <= m.disability_level <= 4:
        errors.append(FieldError(f"{path}.disabilityLevel", "disability level must be 1 to 4", ErrorCode.VALIDATION))
    if m.employment_status is not None and m.employment_status not in EmploymentStatus.__members__:
        errors.append(FieldError(f"{path}.employmentStatus", f"unknown employment status {m.employment_status!r}",
                                 ErrorCode.VALIDATION))
    if m.labour_capacity is not None and m.labour_capacity not in LabourCapacity.__members__:
        errors.append(FieldError(f"{path}.labourCapacity", f"unknown labour capacity {m.labour_capacity!r}",
                                 ErrorCode.VALIDATION))
    if m.phone is not None and not PHONE.match(m.phone):
        errors.append(FieldError(f"{path}.phone", "phone must be 6 to 19 digits", ErrorCode.VALIDATION))
    return errors, rid


async def _existing_persons(session: AsyncSession, numbers: list[str]) -> dict[str, tuple[Person, int | None]]:
    """Persons already known by ID number (duplicate detection, through the blind index), with the id of their
    current household (if any)."""
    if not numbers:
        return {}
    index = id_number_indexer()
    # An ID number is unique everywhere, so this lookup is global by nature (PostgreSQL's row-level security
    # would hide a person registered elsewhere and the insert would then collide): it alone runs with the
    # system scope, and _placement_errors says nothing about a person the caller may not see.
    async with rls.widened(session, "duplicate ID number check"):
        rows = (
            await session.execute(
                select(Person, Membership.household_id)
                .outerjoin(Membership, (Membership.person_id == Person.id) & Membership.valid_to.is_(None))
                .where(Person.id_number_index.in_(sorted({index(n) for n in numbers})))
            )
        ).all()
    return {p.id_number: (p, hid) for p, hid in rows}


def _new_person(m: MemberData, rid: idnumber.ResidentId, region_code: str) -> Person:
    return Person(
        id_number=rid.number,
        name=m.name.strip(),
        sex=rid.sex,
        birth_date=rid.birth_date,
        hukou_region_code=rid.address_code,
        region_code=region_code,
        disability_level=m.disability_level,
        chronic_disease=bool(m.chronic_disease),
        employment_status=m.employment_status,
        labour_capacity=m.labour_capacity,
        phone=m.phone,
        version=1,
    )


async def _begin_write(session: AsyncSession) -> None:
    """SQLite: take the write lock before the existence checks read (one writer at a time, so what they
    read stays true until commit). PostgreSQL needs nothing: unique indexes and the counter row decide."""
    if session.get_bind().dialect.name != "postgresql":
        await session.run_sync(lambda s: lock_for_writing(s, [Household.__tablename__]))


async def _next_household_number(session: AsyncSession, region_code: str) -> str:
    """``H`` + the 12-digit region code (townships padded with 000) + a 6-digit sequence within it.

    The sequence comes from the region's ``household_counter`` row, incremented by one upsert (the row
    stays locked until the transaction ends, so concurrent registrations wait for each other there and never
    collide). The first use under a region seeds it past the numbers already stored; later uses never go
    below them either (numbers written by the seed or an import without the counter stay unique).
    """
    prefix = "H" + region_code.ljust(12, "0")
    last = (
        await session.execute(
            select(func.max(Household.household_number)).where(
                Household.household_number >= prefix, Household.household_number < prefix + "A"
            )
        )
    ).scalar_one_or_none()
    tail = last[len(prefix):] if last else ""
    stored = int(tail) if tail.isdigit() else 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    bigger = func.greatest if dialect == "postgresql" else func.max
    stmt = insert(HouseholdCounter).values(region_code=region_code, last_seq=stored + 1)
    upsert = stmt.on_conflict_do_update(
        index_elements=[HouseholdCounter.region_code],
        set_={"last_seq": bigger(HouseholdCounter.last_seq + 1, stmt.excluded.last_seq)},
    ).returning(HouseholdCounter.last_seq)
    seq = (await session.execute(upsert)).scalar_one()
    return f"{prefix}{seq:06d}"


TRANSFER_MESSAGE = ("this person cannot be registered here as entered: if they live in another household or "
                    "region, ask that region for a transfer (迁移申请) of the person to this household")


def _placement_errors(actor: Actor, existing: dict[str, tuple[Person, int | None]], numbers: list[tuple[str, str]],
                      ) -> list[FieldError]:
    """Errors for ID numbers already known: DUPLICATE_PERSON when the caller can see the person (they learn
    nothing new), the neutral TRANSFER_REQUIRED otherwise and for a known person without a current household
    outside the caller's scope. A known person without a household whose last region is in scope rejoins."""
    errors: list[FieldError] = []
    for path, number in numbers:
        if number not in existing:
            continue
        person, household_id = existing[number]
        visible = person.region_code is not None and actor.may("read", person.region_code, "person")
        if household_id is not None and visible:
            errors.append(FieldError(path, "this person is already a member of a household", ErrorCode.DUPLICATE_PERSON))
        elif household_id is not None or not (visible and actor.may("update", person.region_code, "person")):
            errors.append(FieldError(path, TRANSFER_MESSAGE, ErrorCode.TRANSFER_REQUIRED))
    return errors


async def register_household(session: AsyncSession, actor: Actor, *, region_code: str, address: str | None,
                             members: list[MemberData], idempotency_key: str | None = None,
                             today: dt.date | None = None) -> int:
    """Register a household with its members; returns the household id (RegisterHousehold)."""
    payload = {"regionCode": region_code, "address": address, "members": members}
    claim = await idempotency.claim(session, actor, "registerHousehold", idempotency_key, payload)
    if claim.replay is not None:
        return int(claim.replay["householdId"])
    await _begin_write(session)
    today = today or dt.date.today()
    errors: list[FieldError] = []
    region = (await session.execute(select(Region).where(Region.code == (region_code or "")))).scalar_one_or_none()
    if region is None or not actor.may("create", region.code):
        errors.append(FieldError("regionCode", f"region {region_code!r} not found", ErrorCode.NOT_FOUND))
    elif region.level not in HOUSEHOLD_LEVELS:
        errors.append(FieldError("regionCode", f"a household lives in a township or village, not a {region.level.lower()}",
                                 ErrorCode.VALIDATION))
    if address is not None and len(address) > MAX_ADDRESS:
        errors.append(FieldError("address", f"address is longer than {MAX_ADDRESS} characters", ErrorCode.VALIDATION))
    if not members:
        errors.append(FieldError("members", "a household needs at least one member", ErrorCode.VALIDATION))
    heads = [i for i, m in enumerate(members) if m.relation_to_head == RelationToHead.SELF.value]
    if members and len(heads) != 1:
        errors.append(FieldError("members", f"exactly one member must have relationToHead SELF, found {len(heads)}",
                                 ErrorCode.VALIDATION))
    parsed: list[idnumber.ResidentId | None] = []
    for i, m in enumerate(members):
        member_errors, rid = _validate_member(m, f"members.{i}", today)
        errors += member_errors
        parsed.append(rid)
    seen: dict[str, int] = {}
    for i, rid in enumerate(parsed):
        if rid is None:
            continue
        if rid.number in seen:
            errors.append(FieldError(f"members.{i}.idNumber", f"same person as members.{seen[rid.number]}",
                                     ErrorCode.DUPLICATE_PERSON))
        seen.setdefault(rid.number, i)
    if errors:  # nothing is said about known persons until the request is otherwise valid
        raise DomainError(errors)
    existing = await _existing_persons(session, [r.number for r in parsed if r is not None])
    errors = _placement_errors(actor, existing, [(f"members.{i}.idNumber", r.number) for i, r in enumerate(parsed)
                                                 if r is not None])
    if errors or region is None:  # region is None only with an error recorded above
        raise DomainError(errors)

    household = Household(household_number=await _next_household_number(session, region.code),
                          region_code=region.code, address=address, version=1)
    session.add(household)
    await session.flush()
    for m, rid in zip(members, parsed):
        assert rid is not None
        person = await _attach_person(session, existing, m, rid, region.code)
        session.add(Membership(household_id=household.id, person_id=person.id, relation_to_head=m.relation_to_head,
                               valid_from=today))
        outbox.emit(session, OutboxEntity.PERSON, person.id, person.version)
    outbox.emit(session, OutboxEntity.HOUSEHOLD, household.id, household.version)
    aidchain.append(session, household.id, AidChainKind.MEMBERSHIP,
                    f"household registered with {len(members)} member(s)", ref_type="household", ref_id=household.id,
                    actor=actor.username)
    audit.record(session, actor, "create", "household", household.id, region.code,
                 {"members": len(members), "householdNumber": household.household_number})
    await claim.remember({"householdId": household.id})
    await session.flush()
    return household.id


async def _attach_person(session: AsyncSession, existing: dict, m: MemberData, rid: idnumber.ResidentId,
                         region_code: str) -> Person:
    """A known person without a current household joins; an unknown one is created."""
    if rid.number in existing:
        person = existing[rid.number][0]
        person.region_code = region_code
        person.version += 1
        return person
    person = _new_person(m, rid, region_code)
    session.add(person)
    await session.flush()
    return person


async def load_household_in_scope(session: AsyncSession, actor: Actor, household_id: int | None, action: str,
                                  field: str = "householdId") -> Household:
    """The household if it exists and ``action`` is allowed on its region.

    Missing and out-of-scope households give the same NOT_FOUND; a household the actor may read but not
    change gives FORBIDDEN.
    """
    if household_id is None:
        raise not_found("household", field)
    household = (
        await session.execute(
            select(Household).where(Household.id == household_id,
                                    actor.scope(action).predicate(Household.region_code))
        )
    ).scalar_one_or_none()
    if household is None:
        readable = action != "read" and (
            await session.execute(select(Household.id).where(Household.id == household_id,
                                                             actor.scope("read").predicate(Household.region_code)))
        ).first()
        if readable:  # the caller can see it, so saying so leaks nothing: they lack the right to change it
            raise DomainError.single(ErrorCode.FORBIDDEN, f"you may not {action} this household", field)
        raise not_found("household", field)
    return household


async def add_household_member(session: AsyncSession, actor: Actor, *, household_id: int | None,
                               member: MemberData, today: dt.date | None = None,
                               idempotency_key: str | None = None) -> int:
    """Add a member to an existing household (AddHouseholdMember); returns the household id."""
    today = today or dt.date.today()
    claim = await idempotency.claim(session, actor, "addHouseholdMember", idempotency_key,
                                    {"householdId": household_id, "member": member})
    if claim.replay is not None:
        return int(claim.replay["householdId"])
    await _begin_write(session)
    household = await load_household_in_scope(session, actor, household_id, "update")
    errors, rid = _validate_member(member, "member", today)
    if member.relation_to_head == RelationToHead.SELF.value:
        errors.append(FieldError("member.relationToHead", "the household already has a head; a second SELF is not allowed",
                                 ErrorCode.VALIDATION))
    if errors:  # nothing is said about known persons until the request is otherwise valid
        raise DomainError(errors)
    assert rid is not None
    existing = await _existing_persons(session, [rid.number])
    errors = _placement_errors(actor, existing, [("member.idNumber", rid.number)])
    if errors:
        raise DomainError(errors)
    person = await _attach_person(session, existing, member, rid, household.region_code)
    session.add(Membership(household_id=household.id, person_id=person.id, relation_to_head=member.relation_to_head,
                           valid_from=today))
    household.version += 1
    outbox.emit(session, OutboxEntity.PERSON, person.id, person.version)
    outbox.emit(session, OutboxEntity.HOUSEHOLD, household.id, household.version)
    aidchain.append(session, household.id, AidChainKind.MEMBERSHIP,
                    f"member added ({member.relation_to_head.lower()})", ref_type="person", ref_id=person.id,
                    actor=actor.username)
    audit.record(session, actor, "update", "household", household.id, household.region_code,
                 {"addedPerson": person.id})
    await claim.remember({"householdId": household.id})
    await session.flush()
    return household.id


async def record_economic_item(session: AsyncSession, actor: Actor, item: EconomicItemData) -> int:
    """Record an income, expenditure or asset item of a household (RecordEconomicItem); returns household id."""
    household = await load_household_in_scope(session, actor, item.household_id, "update")
    errors: list[FieldError] = []
    if item.kind not in EconomicItemKind.__members__:
        errors.append(FieldError("kind", f"unknown economic item kind {item.kind!r}", ErrorCode.VALIDATION))
    source = (item.source or "").strip()
    if not source:
        errors.append(FieldError("source", "source is required", ErrorCode.VALIDATION))
    elif len(source) > MAX_SOURCE:
        errors.append(FieldError("source", f"source is longer than {MAX_SOURCE} characters", ErrorCode.VALIDATION))
    try:
        amount = Decimal(str(item.amount))
        if not amount.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        amount = None
        errors.append(FieldError("amount", "amount must be a number", ErrorCode.VALIDATION))
    if amount is not None and amount < 0:
        errors.append(FieldError("amount", "amount must not be negative", ErrorCode.VALIDATION))
    elif amount is not None and amount >= MAX_AMOUNT:
        errors.append(FieldError("amount", f"amount must be below {MAX_AMOUNT}", ErrorCode.VALIDATION))
    if item.period_end < item.period_start:
        errors.append(FieldError("periodEnd", "periodEnd is before periodStart", ErrorCode.VALIDATION))
    if item.person_id is not None:
        member = (
            await session.execute(
                select(Membership.id).where(Membership.household_id == household.id,
                                            Membership.person_id == item.person_id)
            )
        ).first()
        if member is None:
            errors.append(FieldError("personId", "person not found in this household", ErrorCode.NOT_FOUND))
    if errors or amount is None:  # amount is None only with an error recorded above
        raise DomainError(errors)
    row = EconomicItem(household_id=household.id, person_id=item.person_id, kind=item.kind, source=source,
                       amount=amount.quantize(Decimal("0.01")), period_start=item.period_start,
                       period_end=item.period_end, recorded_by=actor.username)
    session.add(row)
    household.version += 1
    outbox.emit(session, OutboxEntity.HOUSEHOLD, household.id, household.version)
    audit.record(session, actor, "update", "economic_item", None, household.region_code,
                 {"householdId": household.id, "kind": item.kind, "amount": str(amount)})
    await session.flush()
    return household.id
