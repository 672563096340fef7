"""Economic verification under the applicant's authorisation (一证一书; GD-2021 §5 and §25: "提交户口簿（身份证）和家庭
经济状况核对授权委托书'一证一书'即可申请社会救助", "推进认定结果共享使用").

Why: the verification reads tax, social insurance, property, vehicle and bank records of every member; the
sources make the signed authorisation the condition of that reading, and ask that the result be shared with the
departments that need it instead of verifying again.

* :func:`record_authorisation`: who signed, when, for which current members, the scanned document's reference;
  valid for ``workflow.authorisation_valid_days`` (illustrative: no source gives a period).
* :func:`run_verification`: reads the household's verification sources (its economic items, through
  :func:`aidgraph.core.graph.economics.economics_for`) only under an authorisation in force that covers every
  current member; the result is stored, in the aid chain (VERIFICATION) and audited.
* :func:`share_verification`: attaches a verification result to a referral of the same household (认定结果共享),
  audited; the department reads it with the referral when it holds the income right.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.access.authz import may_partitioned
from aidgraph.core.graph import aidchain, audit, idempotency
from aidgraph.core.graph.economics import economics_for
from aidgraph.core.policy.engine import PolicyEngine, default_engine
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found
from aidgraph.core.storage.models import (
    AidChainKind,
    EconomicVerification,
    Membership,
    Referral,
    VerificationAuthorisation,
)
from aidgraph.core.workflow.casework import household_in_scope, province_params
from aidgraph.core.workflow.defaults import REFERRAL_OBJECT
from aidgraph.core.workflow.enrollment import OBJECT


async def _current_members(session: AsyncSession, household_id: int, on: dt.date) -> set[int]:
    return set((await session.execute(select(Membership.person_id).where(
        Membership.household_id == household_id, Membership.valid_from <= on,
        (Membership.valid_to.is_(None)) | (Membership.valid_to > on)))).scalars())


async def record_authorisation(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                               household_id: int | None, signed_by_person_id: int | None, document_ref: str,
                               signed_on: dt.date | None = None, person_ids: list[int] | None = None,
                               idempotency_key: str | None = None) -> VerificationAuthorisation:
    engine = engine or default_engine()
    today = dt.date.today()
    signed_on = signed_on or today
    claim = await idempotency.claim(session, actor, "recordVerificationAuthorisation", idempotency_key, {
        "household_id": household_id, "signed_by_person_id": signed_by_person_id, "document_ref": document_ref,
        "signed_on": signed_on, "person_ids": sorted(person_ids) if person_ids is not None else None})
    if (replayed := await claim.replayed_row(VerificationAuthorisation, "authorisation_id",
                                             "verification authorisation")) is not None:
        return replayed
    household = await household_in_scope(session, actor, household_id)
    if not actor.may("apply", household.region_code, OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, "recording an authorisation needs the 'apply' permission on "
                                                      "enrolments here (the office that accepts applications)",
                                 "householdId")
    if signed_on > today:
        raise DomainError.single(ErrorCode.VALIDATION, f"signed on {signed_on}, a date in the future", "signedOn")
    if not document_ref or not document_ref.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "the reference of the scanned authorisation is required",
                                 "documentRef")
    members = await _current_members(session, household.id, signed_on)
    if signed_by_person_id not in members:
        raise DomainError.single(ErrorCode.VALIDATION, "the signer must be a current member of the household",
                                 "signedByPersonId")
    covered = set(person_ids) if person_ids else members
    if not covered <= members:
        raise DomainError.single(ErrorCode.VALIDATION, "every person authorised must be a current member",
                                 "personIds")
    params = province_params(engine, household.region_code)
    days = int(params.value("workflow.authorisation_valid_days", signed_on, default=180))
    authorisation = VerificationAuthorisation(
        household_id=household.id, signed_by_person_id=signed_by_person_id, person_ids=sorted(covered),
        signed_on=signed_on, valid_until=signed_on + dt.timedelta(days=days), document_ref=document_ref.strip(),
        recorded_by=actor.username)
    session.add(authorisation)
    await session.flush()
    aidchain.append(session, household.id, AidChainKind.VERIFICATION,
                    f"一证一书 verification authorisation signed on {signed_on} for {len(covered)} member(s), valid "
                    f"until {authorisation.valid_until} ({params.cite('workflow.authorisation_valid_days')})",
                    ref_type="authorisation", ref_id=authorisation.id, actor=actor.username)
    audit.record(session, actor, "record_authorisation", OBJECT, authorisation.id, household.region_code,
                 {"household": household.id, "members": len(covered), "document": authorisation.document_ref})
    await claim.remember({"authorisation_id": authorisation.id})
    return authorisation


async def run_verification(session: AsyncSession, actor: Actor, *, household_id: int | None,
                           as_of: dt.date | None = None) -> EconomicVerification:
    as_of = as_of or dt.date.today()
    household = await household_in_scope(session, actor, household_id)
    if not actor.may("review", household.region_code, OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, "economic verification needs the 'review' permission on "
                                                      "enrolments here", "householdId")
    members = await _current_members(session, household.id, as_of)
    candidates = (await session.execute(select(VerificationAuthorisation).where(
        VerificationAuthorisation.household_id == household.id, VerificationAuthorisation.signed_on <= as_of,
        VerificationAuthorisation.valid_until >= as_of).order_by(VerificationAuthorisation.signed_on.desc(),
                                                                  VerificationAuthorisation.id.desc()))).scalars()
    authorisation = next((a for a in candidates if members <= set(a.person_ids)), None)
    if authorisation is None:
        raise DomainError.single(ErrorCode.VALIDATION, "no authorisation (一证一书) in force covers every current "
                                                       "member: the verification sources may not be read",
                                 "householdId")
    economics = (await economics_for(session, [household.id], as_of)).get(household.id)
    result = {
        "members": len(members),
        "monthly_income": str(economics.monthly_income) if economics else "0.00",
        "per_capita_monthly_income": str(economics.per_capita_monthly_income) if economics else "0.00",
        "annual_expenditure": str(economics.annual_expenditure) if economics else "0.00",
        "total_financial_assets": str(economics.total_financial_assets) if economics else "0.00",
        "data_found": economics is not None,
    }
    verification = EconomicVerification(household_id=household.id, authorisation_id=authorisation.id, as_of=as_of,
                                        result=result, verified_by=actor.username)
    session.add(verification)
    await session.flush()
    aidchain.append(session, household.id, AidChainKind.VERIFICATION,
                    f"家庭经济状况核对 economic verification as of {as_of} under authorisation {authorisation.id}",
                    ref_type="economic_verification", ref_id=verification.id, actor=actor.username)
    audit.record(session, actor, "economic_verification", "income", verification.id, household.region_code,
                 {"household": household.id, "authorisation": authorisation.id, "as_of": as_of.isoformat()})
    return verification


async def share_verification(session: AsyncSession, actor: Actor, *, referral_id: int | None,
                             verification_id: int | None) -> Referral:
    referral = (await session.execute(select(Referral).where(Referral.id == referral_id).with_for_update())
                ).scalar_one_or_none() if referral_id is not None else None
    if referral is None or not may_partitioned(actor, "read", referral.region_code, REFERRAL_OBJECT,
                                               referral.department):
        raise not_found("referral", "referralId")
    if not may_partitioned(actor, "create", referral.region_code, REFERRAL_OBJECT, referral.department):
        raise DomainError.single(ErrorCode.FORBIDDEN, "sharing a result with a referral needs the 'create' "
                                                      "permission on referrals here", "referralId")
    verification = await session.get(EconomicVerification, verification_id) if verification_id is not None else None
    if verification is None or verification.household_id != referral.household_id:
        raise not_found("verification of this household", "verificationId")
    referral.shared_verification_id = verification.id
    referral.version += 1
    aidchain.append(session, referral.household_id, AidChainKind.REFERRAL,
                    f"认定结果共享: verification of {verification.as_of} shared with {referral.department}",
                    ref_type="referral", ref_id=referral.id, actor=actor.username)
    audit.record(session, actor, "share_verification", REFERRAL_OBJECT, referral.id, referral.region_code,
                 {"verification": verification.id, "department": referral.department})
    await session.flush()
    return referral
