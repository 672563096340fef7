"""Transparency and control (FJ-2021 "长期公示、群众可查、社会监督"; GD-2021 强化监督检查): public disclosure (公示) of
dibao and tekun recipients per village, random inspection samples (双随机、一公开) and recovery of aid obtained by
fraud (追回骗取的社会救助资金).

Why: the sources ask for published recipient lists, random checks and recovery of fraudulently obtained aid;
none existed.

* :func:`disclosure`: the village's receiving dibao and tekun households with the privacy the law requires: the
  head's name partly masked (surname kept), household size, program and monthly amount; never an ID number or
  any income detail. The notice states its period (``workflow.disclosure_days``; illustrative). Exporting it as
  a notice is audited. A village outside the caller's scope is an error (FORBIDDEN), not an empty notice.
* :func:`inspection_sample`: a reproducible random sample of a county's receiving cases for re-verification:
  the order is sha256(seed, case id), the seed defaults to ``<county>:<month>``, so anyone can redraw it and get
  the same cases; drawing it is audited with the seed and the ids. The other "random" (随机选派检查人员):
  with ``inspectors_per_case``, each case is given inspectors drawn from the county's roster, the active users
  the province's Casbin policy lets review cases for the whole county (a township's own caseworkers do not
  inspect its cases), in the order sha256(seed, case id, username): as reproducible as the cases.
* :func:`issue_recovery_order` / :func:`record_recovery` / :func:`cancel_recovery_order`: a recovery order against an
  enrolment's payments (never more than was paid, less what other orders claim), recovered in instalments until
  RECOVERED, or withdrawn (CANCELLED) while nothing is recovered; county level; aid chain and audit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor, RoleGrant
from aidgraph.core.graph import aidchain, audit
from aidgraph.core.policy.engine import PolicyEngine, default_engine
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found
from aidgraph.core.storage.models import (
    RECEIVING_ENROLLMENT_STATUSES,
    AidChainKind,
    AppUser,
    CasbinRule,
    Enrollment,
    Membership,
    Payment,
    Person,
    RecoveryOrder,
    Region,
)
from aidgraph.core.workflow.casework import province_params
from aidgraph.core.workflow.enrollment import OBJECT, _money

DISCLOSED_PROGRAMS = ("dibao", "tekun")
RECEIVING = [s.value for s in RECEIVING_ENROLLMENT_STATUSES]


def mask_name(name: str) -> str:
    """The surname kept, the given name masked: 王小明 -> 王**; two-character compound surnames are not guessed."""
    name = (name or "").strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else "*"


@dataclass(frozen=True)
class DisclosureLine:
    masked_name: str
    household_size: int
    program_key: str
    monthly_amount: Decimal | None
    since: dt.date | None


@dataclass(frozen=True)
class Disclosure:
    village_code: str
    village_name: str
    published_on: dt.date
    until: dt.date
    lines: list[DisclosureLine]


async def disclosure(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *, village_code: str,
                     on: dt.date | None = None) -> Disclosure:
    on = on or dt.date.today()
    engine = engine or default_engine()
    village = await session.get(Region, village_code) if village_code else None
    if village is None or village.level != "VILLAGE":
        raise DomainError.single(ErrorCode.VALIDATION, f"{village_code!r} is not a village code: 公示 is per village",
                                 "villageCode")
    if not actor.may("read", village.code, OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, f"village {village.code} is outside your scope", "villageCode")
    params = province_params(engine, village.code, "villageCode")
    days = int(params.value("workflow.disclosure_days", on, region=village.code, default=7))
    head = (select(Membership.household_id, Person.name).join(Person, Person.id == Membership.person_id)
            .where(Membership.relation_to_head == "SELF", Membership.valid_to.is_(None)).subquery())
    size = (select(Membership.household_id, func.count().label("n")).where(Membership.valid_to.is_(None))
            .group_by(Membership.household_id).subquery())
    rows = await session.execute(
        select(head.c.name, size.c.n, Enrollment.program_key, Enrollment.monthly_amount, Enrollment.start_date)
        .join(head, head.c.household_id == Enrollment.household_id)
        .join(size, size.c.household_id == Enrollment.household_id)
        .where(Enrollment.region_code == village.code, Enrollment.program_key.in_(DISCLOSED_PROGRAMS),
               Enrollment.status.in_(RECEIVING))
        .order_by(Enrollment.program_key, Enrollment.id))
    lines = [DisclosureLine(mask_name(name), n, key, amount, since) for name, n, key, amount, since in rows]
    return Disclosure(village.code, village.name, on, on + dt.timedelta(days=days), lines)


def notice_text(d: Disclosure) -> str:
    """The notice as posted in the village (公示栏): no ID numbers, no income detail."""
    out = [f"{d.village_name}（{d.village_code}）社会救助对象公示",
           f"公示期 {d.published_on.isoformat()} 至 {d.until.isoformat()}，如有异议请向乡镇（街道）人民政府反映。",
           "姓名\t家庭人口\t救助项目\t月救助金（元）\t起始日期"]
    names = {"dibao": "最低生活保障", "tekun": "特困人员救助供养"}
    for line in d.lines:
        out.append(f"{line.masked_name}\t{line.household_size}\t{names.get(line.program_key, line.program_key)}\t"
                   f"{line.monthly_amount if line.monthly_amount is not None else ''}\t"
                   f"{line.since.isoformat() if line.since else ''}")
    out.append(f"共 {len(d.lines)} 户")
    return "\n".join(out) + "\n"


async def export_notice(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                        village_code: str, on: dt.date | None = None) -> str:
    d = await disclosure(session, actor, engine, village_code=village_code, on=on)
    audit.record(session, actor, "export", "disclosure", d.village_code, d.village_code,
                 {"lines": len(d.lines), "from": d.published_on.isoformat(), "until": d.until.isoformat()})
    return notice_text(d)


# --- 双随机: a reproducible random sample of cases ---------------------------------------------------------------


def _draw_key(seed: str, enrollment_id: int) -> str:
    return hashlib.sha256(f"{seed}:{enrollment_id}".encode()).hexdigest()


def _inspector_key(seed: str, enrollment_id: int, username: str) -> str:
    return hashlib.sha256(f"{seed}:{enrollment_id}:{username}".encode()).hexdigest()


@dataclass(frozen=True)
class Inspection:
    """One sampled case and the inspectors drawn for it (usernames; empty when none were asked for)."""

    enrollment: Enrollment
    inspectors: tuple[str, ...] = ()


async def county_inspectors(session: AsyncSession, actor: Actor, county_code: str) -> list[str]:
    """双随机's roster: the active users whose grants let them review cases for the whole county, judged by the
    caller's authorizer (the same Casbin policy as every right)."""
    grants: dict[str, list[RoleGrant]] = {}
    for username, role, region in await session.execute(
            select(CasbinRule.v0, CasbinRule.v1, CasbinRule.v2).where(CasbinRule.ptype == "g")):
        if username and role and region and (county_code.startswith(region) or region.startswith(county_code)):
            grants.setdefault(username, []).append(RoleGrant(role, region))
    users = (await session.execute(select(AppUser.username, AppUser.display_name).where(
        AppUser.active, AppUser.username.in_(list(grants))))).all() if grants else []
    return sorted(name for name, display in users
                  if actor.peer(name, display, tuple(grants[name])).may("review", county_code, OBJECT))


async def inspection_sample(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                            county_code: str, size: int | None = None, seed: str | None = None,
                            on: dt.date | None = None, inspectors_per_case: int = 0) -> tuple[str, list[Inspection]]:
    """(seed, the sampled receiving cases of the county in the caller's scope, ordered by draw, each with
    ``inspectors_per_case`` inspectors drawn from :func:`county_inspectors`)."""
    on = on or dt.date.today()
    engine = engine or default_engine()
    if not county_code or len(county_code) != 6 or await session.get(Region, county_code) is None:
        raise DomainError.single(ErrorCode.VALIDATION, f"{county_code!r} is not a county code", "countyCode")
    scope = actor.scope("review", OBJECT).narrow(county_code)
    if scope.empty:
        raise DomainError.single(ErrorCode.FORBIDDEN, f"county {county_code} is outside your scope", "countyCode")
    params = province_params(engine, county_code, "countyCode")
    size = size if size is not None else int(params.value("workflow.inspection_sample_size", on, default=10))
    if size < 1 or size > 1000:
        raise DomainError.single(ErrorCode.VALIDATION, "the sample size must be between 1 and 1000", "size")
    if inspectors_per_case < 0:
        raise DomainError.single(ErrorCode.VALIDATION, "inspectorsPerCase cannot be negative", "inspectorsPerCase")
    roster = await county_inspectors(session, actor, county_code) if inspectors_per_case else []
    if len(roster) < inspectors_per_case:
        raise DomainError.single(ErrorCode.VALIDATION, f"county {county_code} has {len(roster)} user(s) who may "
                                 f"review its cases; {inspectors_per_case} per case asked", "inspectorsPerCase")
    seed = seed or f"{county_code}:{on:%Y-%m}"
    ids = list((await session.execute(select(Enrollment.id).where(
        scope.predicate(Enrollment.region_code), Enrollment.status.in_(RECEIVING)))).scalars())
    chosen = sorted(ids, key=lambda i: _draw_key(seed, i))[:size]
    cases = {e.id: e for e in (await session.execute(select(Enrollment).where(Enrollment.id.in_(chosen)))).scalars()}
    drawn = [Inspection(cases[i], tuple(sorted(roster, key=lambda name: _inspector_key(seed, i, name))
                                        [:inspectors_per_case])) for i in chosen]
    detail: dict = {"seed": seed, "size": size, "population": len(ids), "cases": chosen}
    if inspectors_per_case:
        detail["inspectors"] = {str(d.enrollment.id): list(d.inspectors) for d in drawn}
        detail["roster"] = len(roster)
    audit.record(session, actor, "inspection_sample", OBJECT, None, county_code, detail)
    return seed, drawn


# --- recovery orders ----------------------------------------------------------------------------------------------


async def _claimable(session: AsyncSession, enrollment_id: int) -> Decimal:
    paid = (await session.execute(select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.enrollment_id == enrollment_id))).scalar_one()
    claimed = (await session.execute(select(func.coalesce(func.sum(RecoveryOrder.amount), 0)).where(
        RecoveryOrder.enrollment_id == enrollment_id, RecoveryOrder.status != "CANCELLED"))).scalar_one()
    return Decimal(str(paid)) - Decimal(str(claimed))


async def issue_recovery_order(session: AsyncSession, actor: Actor, *, enrollment_id: int | None, amount: float,
                               reason: str) -> RecoveryOrder:
    enrollment = (await session.execute(select(Enrollment).where(Enrollment.id == enrollment_id).with_for_update())
                  ).scalar_one_or_none() if enrollment_id is not None else None
    if enrollment is None or not actor.may("read", enrollment.region_code, "household"):
        raise not_found("enrollment", "enrollmentId")
    if not actor.scope("approve", OBJECT).contains(enrollment.region_code[:6]):
        raise DomainError.single(ErrorCode.FORBIDDEN, "a recovery order is issued at county level", "enrollmentId")
    value = _money(amount)
    if value is None or value <= 0:
        raise DomainError.single(ErrorCode.VALIDATION, "the amount must be more than 0", "amount")
    if not reason or not reason.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "state the finding (骗取救助) the order rests on", "reason")
    claimable = await _claimable(session, enrollment.id)
    if value > claimable:
        raise DomainError.single(ErrorCode.VALIDATION, f"{value} yuan is more than the payments not yet claimed "
                                                       f"({claimable} yuan)", "amount")
    order = RecoveryOrder(enrollment_id=enrollment.id, household_id=enrollment.household_id,
                          region_code=enrollment.region_code, amount=value, recovered=Decimal("0"),
                          reason=reason.strip(), status="ISSUED", issued_by=actor.username, version=1)
    session.add(order)
    await session.flush()
    aidchain.append(session, enrollment.household_id, AidChainKind.DECISION,
                    f"追回 recovery order {value} yuan ({enrollment.program_key}): {order.reason}",
                    program_key=enrollment.program_key, ref_type="recovery_order", ref_id=order.id,
                    actor=actor.username)
    audit.record(session, actor, "issue_recovery", OBJECT, enrollment.id, enrollment.region_code,
                 {"order": order.id, "amount": str(value)})
    return order


async def record_recovery(session: AsyncSession, actor: Actor, *, order_id: int | None, amount: float) -> RecoveryOrder:
    order = (await session.execute(select(RecoveryOrder).where(RecoveryOrder.id == order_id).with_for_update())
             ).scalar_one_or_none() if order_id is not None else None
    if order is None or not actor.may("read", order.region_code, "household"):
        raise not_found("recovery order", "orderId")
    if not actor.scope("approve", OBJECT).contains(order.region_code[:6]):
        raise DomainError.single(ErrorCode.FORBIDDEN, "recoveries are recorded at county level", "orderId")
    if order.status in ("RECOVERED", "CANCELLED"):
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"the order is {order.status}", "orderId")
    value = _money(amount)
    if value is None or value <= 0 or order.recovered + value > order.amount:
        raise DomainError.single(ErrorCode.VALIDATION, f"the amount must be more than 0 and at most the "
                                                       f"{order.amount - order.recovered} yuan outstanding", "amount")
    order.recovered += value
    order.status = "RECOVERED" if order.recovered == order.amount else "PARTIAL"
    order.version += 1
    aidchain.append(session, order.household_id, AidChainKind.PAYMENT,
                    f"追回 recovered {value} yuan ({order.recovered} of {order.amount})", ref_type="recovery_order",
                    ref_id=order.id, actor=actor.username)
    audit.record(session, actor, "record_recovery", OBJECT, order.enrollment_id, order.region_code,
                 {"order": order.id, "amount": str(value), "status": order.status})
    await session.flush()
    return order



async def cancel_recovery_order(session: AsyncSession, actor: Actor, *, order_id: int | None,
                                reason: str) -> RecoveryOrder:
    """Withdraw an order nothing was recovered under yet (issued in error, or its finding set aside on review):
    ISSUED -> CANCELLED, with the reason; county level; aid chain and audit. Its amount is claimable again."""
    order = (await session.execute(select(RecoveryOrder).where(RecoveryOrder.id == order_id).with_for_update())
             ).scalar_one_or_none() if order_id is not None else None
    if order is None or not actor.may("read", order.region_code, "household"):
        raise not_found("recovery order", "orderId")
    if not actor.scope("approve", OBJECT).contains(order.region_code[:6]):
        raise DomainError.single(ErrorCode.FORBIDDEN, "recovery orders are cancelled at county level", "orderId")
    if order.status != "ISSUED":
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"only an ISSUED order with nothing recovered is "
                                                               f"cancelled; this one is {order.status}", "orderId")
    if not reason or not reason.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "state why the order is withdrawn", "reason")
    order.status = "CANCELLED"
    order.version += 1
    aidchain.append(session, order.household_id, AidChainKind.DECISION,
                    f"追回 recovery order of {order.amount} yuan cancelled: {reason.strip()}", ref_type="recovery_order",
                    ref_id=order.id, actor=actor.username)
    audit.record(session, actor, "cancel_recovery", OBJECT, order.enrollment_id, order.region_code,
                 {"order": order.id, "reason": reason.strip()})
    await session.flush()
    return order
