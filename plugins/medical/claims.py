"""Settling a medical-aid claim (医疗救助结算) under the claimant's province rules, and the category that applies.

:func:`settle_amounts` is the arithmetic, the same for every province: the province's parameters decide the
ratio by category, whether a deductible applies (Gansu's patients impoverished by illness), the annual caps
and the secondary aid. A parameter the province does not configure is a rule it does not have.

Order of computation (GS-2024 wording, Guangdong and Fujian as the special case without deductible, cap or
secondary aid): the base is the compliant cost left after basic and critical-illness insurance; the annual
deductible still unused is taken off; the ratio applies to the rest; the annual cap still unused limits the
aid; out-of-pocket above the secondary threshold (over the calendar year, after insurance and aid) gets the
secondary ratio of the excess, with no cap.

:func:`settle_claim` is the service behind the contract's ``settleMedicalAid``: it finds the person's
category on the admission date from their household's enrolments, reads the year's earlier claims, writes the
claim, an aid-chain entry and an audit row in the caller's transaction, and supports idempotency keys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from aidgraph.plugins.low_income import CATEGORY_OF_PROGRAM
from aidgraph.plugins.medical.models import MedicalClaim
from aidgraph.plugin import (
    Actor,
    AidChainKind,
    DomainError,
    Enrollment,
    ErrorCode,
    FieldError,
    Membership,
    Person,
    ProvinceParams,
    aidchain,
    audit,
    authz,
    idempotency,
    not_found,
    valid_on,
)


CENT = Decimal("0.01")
ILLNESS_IMPOVERISHED = "ILLNESS_IMPOVERISHED"
PERSON_CATEGORIES = (ILLNESS_IMPOVERISHED, "ORPHAN", "UNATTENDED_CHILD", "RETURNED_TO_POVERTY",
                     "TRANSITION_LIFTED", "STABLY_LIFTED")
"""Categories recorded on a person's own medical-aid enrolment (its ``category``), not implied by a household
programme: orphans and de-facto-unattended children (孤儿、事实无人抚养儿童, GD-2024 100%), rural
returned-to-poverty persons and lifted-out-of-poverty persons in transition (农村返贫致贫人口、过渡期内的已脱贫人口,
GS-2024, recognised by the rural-revitalisation department)."""


def money(value: float | Decimal | int) -> Decimal:
    return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class ClaimTerms:
    """The rules that apply to one claim: from the province's parameters for the category found."""

    category: str
    ratio: Decimal
    deductible: Decimal = Decimal("0")
    cap: Decimal | None = None
    secondary_threshold: Decimal | None = None
    secondary_ratio: Decimal | None = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class YearSoFar:
    """The person's earlier claims in the same calendar year."""

    deductible_used: Decimal = Decimal("0")
    aid_paid: Decimal = Decimal("0")
    out_of_pocket_before_secondary: Decimal = Decimal("0")
    secondary_paid: Decimal = Decimal("0")


@dataclass(frozen=True)
class Settlement:
    category: str
    compliant_cost: Decimal
    insurance_paid: Decimal
    deductible_applied: Decimal
    aid_amount: Decimal
    secondary_aid_amount: Decimal
    out_of_pocket: Decimal
    reasons: list[str]


def settle_amounts(compliant_cost: float | Decimal, insurance_paid: float | Decimal, terms: ClaimTerms,
                   year: YearSoFar = YearSoFar()) -> Settlement:
    compliant, insured = money(compliant_cost), money(insurance_paid)
    base = max(compliant - insured, Decimal("0"))
    reasons = [f"compliant cost {compliant} - insurance paid {insured} = {base} left after basic and "
               f"critical-illness insurance"]
    deductible_left = max(terms.deductible - year.deductible_used, Decimal("0"))
    applied = min(base, deductible_left)
    if terms.deductible:
        reasons.append(f"annual deductible {money(terms.deductible)} ({terms.sources.get('deductible', '')}), "
                       f"{money(year.deductible_used)} used earlier this year: {applied} applied")
    else:
        reasons.append("no annual deductible for this category")
    aid = money((base - applied) * terms.ratio)
    reasons.append(f"aid ratio {terms.ratio:.0%} for {terms.category} ({terms.sources.get('ratio', '')}): "
                   f"{base - applied} x {terms.ratio} = {aid}")
    if terms.cap is not None:
        cap_left = max(terms.cap - year.aid_paid, Decimal("0"))
        if aid > cap_left:
            reasons.append(f"annual cap {money(terms.cap)} ({terms.sources.get('cap', '')}), {money(year.aid_paid)} paid "
                           f"earlier this year: aid limited to {money(cap_left)}")
            aid = money(cap_left)
        else:
            reasons.append(f"annual cap {money(terms.cap)} ({terms.sources.get('cap', '')}) not reached")
    else:
        reasons.append("no annual cap configured for this province")
    before_secondary = base - aid
    secondary = Decimal("0.00")
    if terms.secondary_threshold is not None and terms.secondary_ratio is not None:
        year_total = year.out_of_pocket_before_secondary + before_secondary
        due = money(max(year_total - terms.secondary_threshold, Decimal("0")) * terms.secondary_ratio)
        secondary = max(due - year.secondary_paid, Decimal("0.00"))
        reasons.append(f"secondary aid: out of pocket this year {money(year_total)} above {money(terms.secondary_threshold)}"
                       f" x {terms.secondary_ratio:.0%} = {due}, {money(year.secondary_paid)} paid earlier: {secondary} "
                       f"now, no cap ({terms.sources.get('secondary', '')})")
    else:
        reasons.append("no secondary aid configured for this province")
    out_of_pocket = money(before_secondary - secondary)
    return Settlement(terms.category, compliant, insured, money(applied), aid, money(secondary), out_of_pocket, reasons)


def terms_for(params: ProvinceParams, categories: list[str], on: dt.date) -> ClaimTerms | None:
    """The most favourable terms among the person's categories on ``on`` (None: no category is covered)."""
    ratios = {k: Decimal(str(v)) for k, v in (params.value("medical.aid_ratio", on, default=None) or {}).items()}
    options: list[ClaimTerms] = []
    common: dict[str, Any] = dict(
        cap=_dec(params.value("medical.annual_cap", on, default=None)),
        secondary_threshold=_dec(params.value("medical.secondary_threshold", on, default=None)),
        secondary_ratio=_dec(params.value("medical.secondary_ratio", on, default=None)),
    )
    sources = {"ratio": params.cite("medical.aid_ratio"), "cap": params.cite("medical.annual_cap"),
               "secondary": params.cite("medical.secondary_ratio")}
    for category in categories:
        if category == ILLNESS_IMPOVERISHED:
            ratio = params.value("medical.illness_impoverished_ratio", on, default=None)
            if ratio is None:
                continue
            options.append(ClaimTerms(
                category, Decimal(str(ratio)), _dec(params.value("medical.illness_impoverished_deductible", on,
                                                                 default=0)) or Decimal("0"),
                sources={**sources, "ratio": params.cite("medical.illness_impoverished_ratio"),
                         "deductible": params.cite("medical.illness_impoverished_deductible")}, **common))
        elif category in ratios:
            options.append(ClaimTerms(category, ratios[category], sources=sources, **common))
    if not options:
        return None
    # without a claim to compute on: highest ratio, then smallest deductible (settle_claim computes, best_terms)
    return sorted(options, key=lambda t: (-t.ratio, t.deductible))[0]


def category_terms(params: ProvinceParams, categories: list[str], on: dt.date) -> list[ClaimTerms]:
    """The terms of each of the person's covered categories (one per category)."""
    return [t for t in (terms_for(params, [c], on) for c in categories) if t is not None]


def best_terms(params: ProvinceParams, categories: list[str], on: dt.date, compliant_cost, insurance_paid,
               year: YearSoFar = YearSoFar(), major_cap: Decimal | None = None) -> ClaimTerms | None:
    """The terms that leave the person least to pay *on this claim*, computed: the claim is settled under each
    category the person is in and the smallest out-of-pocket wins (then the larger aid, then the category name,
    for a stable choice). A higher ratio with a deductible can leave more to pay than a lower ratio without
    one; this never guesses from the ratio."""
    options = category_terms(params, categories, on)
    if major_cap is not None:
        options = [ClaimTerms(t.category, t.ratio, t.deductible, major_cap if t.cap is not None else None,
                              t.secondary_threshold, t.secondary_ratio,
                              {**t.sources, "cap": params.cite("medical.major_disease_annual_cap") +
                               " for the 35 major diseases"}) for t in options]
    if not options:
        return None
    settled = [(settle_amounts(compliant_cost, insurance_paid, t, year), t) for t in options]
    return min(settled, key=lambda st: (st[0].out_of_pocket, -st[0].aid_amount - st[0].secondary_aid_amount,
                                        st[1].category))[1]


PREMIUM_FULL = "full"


@dataclass(frozen=True)
class PremiumSubsidy:
    """参保资助: the resident-insurance premium subsidy of one person (yuan per year)."""

    category: str | None
    subsidy: Decimal | None
    to_pay: Decimal | None
    reason: str


def premium_subsidy(params: ProvinceParams, categories: list[str], on: dt.date) -> PremiumSubsidy:
    """The subsidy of the person's individual resident-insurance premium, computed for each category the person
    is in, keeping the one that leaves the least to pay (GD-2024 / FJ-2021 "full" = the whole individual
    premium; GS-2024 fixed amounts 380 / 310 / 250 / 100, never more than the premium). The premium itself
    (``medical.resident_premium``) is a dated province parameter; where a province has no subsidy table or no
    premium, the answer says "not configured"."""
    table = params.value("medical.premium_subsidy", on, default=None)
    if table is None:
        return PremiumSubsidy(None, None, None, "not configured: medical.premium_subsidy")
    premium_value = params.value("medical.resident_premium", on, default=None)
    premium = money(premium_value) if premium_value is not None else None
    options: list[tuple[Decimal, str, Decimal]] = []
    for category in categories:
        if category not in table:
            continue
        value = table[category]
        if premium is None:
            if value == PREMIUM_FULL:
                return PremiumSubsidy(category, None, Decimal("0.00"),
                                      f"{category}: full subsidy, nothing to pay ({params.cite('medical.premium_subsidy')}); "
                                      f"amount not computable: medical.resident_premium not configured")
            continue
        subsidy = premium if value == PREMIUM_FULL else min(money(value), premium)
        options.append((premium - subsidy, category, subsidy))
    if not options:
        if premium is None and any(c in table for c in categories):
            return PremiumSubsidy(None, None, None, "not configured: medical.resident_premium")
        return PremiumSubsidy(None, Decimal("0.00"), premium,
                              f"no subsidised category among {', '.join(categories) or 'none'} "
                              f"({params.cite('medical.premium_subsidy')})")
    to_pay, category, subsidy = min(options, key=lambda o: (o[0], o[1]))
    return PremiumSubsidy(category, subsidy, to_pay,
                          f"{category}: premium {premium} - subsidy {subsidy} = {to_pay} to pay "
                          f"({params.cite('medical.premium_subsidy')}; {params.cite('medical.resident_premium')})")


def _dec(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def categories_on(session: AsyncSession, person_id: int, household_id: int | None, on: dt.date) -> list[str]:
    """The person's medical-aid categories on ``on``: from enrolments active that day (household-wide ones of
    the household, and the person's own, such as medical aid for a patient impoverished by illness)."""
    e = Enrollment
    active_that_day = and_(e.start_date.is_not(None), e.start_date <= on, or_(e.end_date.is_(None), e.end_date > on),
                           e.status.in_(["ACTIVE", "GRADUAL_EXIT", "ENDED"]))
    whose = or_(e.person_id == person_id, and_(e.household_id == household_id, e.person_id.is_(None))) \
        if household_id is not None else e.person_id == person_id
    rows = (await session.execute(select(e.program_key, e.category).where(whose, active_that_day))).all()
    found: list[str] = []
    special = (await session.execute(select(Person.special_category).where(Person.id == person_id))).scalar_one_or_none()
    if special in PERSON_CATEGORIES:  # recorded on the person (recordPersonCategory)
        found.append(special)
    for program_key, category in rows:
        if category in PERSON_CATEGORIES:
            found.append(category)
        elif program_key in CATEGORY_OF_PROGRAM:
            found.append(CATEGORY_OF_PROGRAM[program_key])
    return sorted(set(found))


async def year_so_far(session: AsyncSession, person_id: int, year: int) -> YearSoFar:
    c = MedicalClaim
    row = (await session.execute(
        select(func.coalesce(func.sum(c.deductible_applied), 0), func.coalesce(func.sum(c.aid_amount), 0),
               func.coalesce(func.sum(c.out_of_pocket + c.secondary_aid_amount), 0),
               func.coalesce(func.sum(c.secondary_aid_amount), 0))
        .where(c.person_id == person_id, c.admission_date >= dt.date(year, 1, 1),
               c.admission_date < dt.date(year + 1, 1, 1))
    )).one()
    return YearSoFar(*(money(v) for v in row))


@dataclass(frozen=True)
class ClaimInput:
    person_id: int
    admission_date: dt.date
    compliant_cost: float
    insurance_paid: float
    major_disease: bool = False
    idempotency_key: str | None = None


async def settle_claim(session: AsyncSession, actor: Actor, engine, claim: ClaimInput) -> MedicalClaim:
    """Settle one claim in the caller's transaction (the boundary commits). Raises DomainError."""
    problems = []
    if claim.compliant_cost < 0:
        problems.append(FieldError("compliantCost", "must not be negative", ErrorCode.VALIDATION))
    if claim.insurance_paid < 0:
        problems.append(FieldError("insurancePaid", "must not be negative", ErrorCode.VALIDATION))
    if claim.insurance_paid > claim.compliant_cost:
        problems.append(FieldError("insurancePaid", "exceeds the compliant cost", ErrorCode.VALIDATION))
    if problems:
        raise DomainError(problems)
    # A retry with the key gets the first settlement back; one sent at the same time waits for it: never paid twice.
    key = await idempotency.claim(session, actor, "settleMedicalAid", claim.idempotency_key, claim)
    if (replayed := await key.replayed_row(MedicalClaim, "claim_id", "medical claim")) is not None:
        return replayed
    person = await session.get(Person, claim.person_id)
    membership = (await session.execute(select(Membership).where(
        Membership.person_id == claim.person_id, valid_on(Membership, claim.admission_date)))).scalars().first()
    region = person.region_code if person is not None else None
    if person is None or region is None or not actor.may("read", region, "person"):
        raise not_found("person", "personId")
    if not authz.check(actor, "disburse", region, "payment"):  # a settlement pays aid out, like any payment
        raise DomainError.single(ErrorCode.FORBIDDEN, "settling medical aid here needs the disburse permission on "
                                                      "payments", "personId")
    province = region[:2]
    if province not in engine.province_codes() or "medical" not in engine.province(province).programs:
        raise DomainError.single(ErrorCode.VALIDATION, f"medical aid is not enabled in province {province}", "personId")
    params = engine.province(province).params
    household_id = membership.household_id if membership is not None else None
    categories = await categories_on(session, claim.person_id, household_id, claim.admission_date)
    major_cap = params.value("medical.major_disease_annual_cap", claim.admission_date, default=None) \
        if claim.major_disease else None
    year = await year_so_far(session, claim.person_id, claim.admission_date.year)
    terms = best_terms(params, categories, claim.admission_date, claim.compliant_cost, claim.insurance_paid, year,
                       None if major_cap is None else Decimal(str(major_cap)))
    if terms is None:
        raise DomainError.single(ErrorCode.VALIDATION, f"no medical-aid category applies to this person on "
                                                       f"{claim.admission_date} (categories: {', '.join(categories) or 'none'})",
                                 "admissionDate")
    settled = settle_amounts(claim.compliant_cost, claim.insurance_paid, terms, year)
    row = MedicalClaim(person_id=claim.person_id, household_id=household_id, province_code=province, region_code=region,
                       admission_date=claim.admission_date, category=settled.category, major_disease=claim.major_disease,
                       compliant_cost=settled.compliant_cost, insurance_paid=settled.insurance_paid,
                       deductible_applied=settled.deductible_applied, aid_amount=settled.aid_amount,
                       secondary_aid_amount=settled.secondary_aid_amount, out_of_pocket=settled.out_of_pocket,
                       reasons=settled.reasons, settled_by=actor.username)
    session.add(row)
    await session.flush()
    if household_id is not None:
        aidchain.append(session, household_id, AidChainKind.PAYMENT,
                        f"医疗救助 medical aid {settled.aid_amount} + secondary {settled.secondary_aid_amount} yuan "
                        f"({settled.category}, admission {claim.admission_date})", program_key="medical",
                        ref_type="medical_claim", ref_id=row.id, actor=actor.username)
    audit.record(session, actor, "settle", "medical_claim", row.id, region,
                 {"category": settled.category, "aid": str(settled.aid_amount),
                  "secondary": str(settled.secondary_aid_amount)})
    await key.remember({"claim_id": row.id})
    return row
