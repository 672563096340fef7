"""一证一书 against a live server on SQLite and PostgreSQL: the economic verification reads the sources only under a
signed authorisation in force that covers every current member; the result is shared with a referral
(认定结果共享) and shown to the department with the referral; every step audited; bad input writes nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import (
    AuditLog,
    EconomicItem,
    EconomicVerification,
    VerificationAuthorisation,
)
from aidgraph.schema.relay import to_global_id
from tests.casework.conftest import count, token_for

AUTH = """mutation A($input: VerificationAuthorisationInput!) { recordVerificationAuthorisation(input: $input) {
    authorisation { id signedOn validUntil documentRef membersCovered } errors { code field message } } }"""
VERIFY = """mutation V($h: ID!) { runEconomicVerification(householdId: $h) {
    verification { id asOf members monthlyIncome perCapitaMonthlyIncome totalFinancialAssets } errors { code field message } } }"""
SHARE = """mutation S($r: ID!, $v: ID!) { shareVerificationResult(referralId: $r, verificationId: $v) {
    referral { id sharedVerification { perCapitaMonthlyIncome } } errors { code field } } }"""


def test_verification_needs_an_authorisation_covering_every_member(live_server, world, sync_engine, db_url):
    members = [p for p in world.persons if p.household_id == world.persons[21].household_id]
    household = members[0].household_id
    hid = to_global_id("Household", household)
    today = dt.date.today()
    with Session(sync_engine) as s, s.begin():
        s.execute(insert(EconomicItem), [
            {"household_id": household, "person_id": members[0].id, "kind": "WAGE", "source": "tax",
             "amount": Decimal(3600 * 12), "period_start": today - dt.timedelta(days=364), "period_end": today},
            {"household_id": household, "kind": "DEPOSIT", "source": "bank", "amount": Decimal(9000),
             "period_start": today, "period_end": today}])
    caseworker = token_for(db_url, sync_engine, "cw_verify", "township_caseworker", members[0].region_code[:9])

    def run(query, variables, token=caseworker):
        body = live_server.post(query, variables, token=token).json()
        assert "errors" not in body, body
        return next(iter(body["data"].values()))

    none = run(VERIFY, {"h": hid})
    assert none["verification"] is None and none["errors"][0]["code"] == "VALIDATION" and "一证一书" in \
        none["errors"][0]["message"]
    partial = run(AUTH, {"input": {"householdId": hid, "signedByPersonId": to_global_id("Person", members[0].id),
                                   "documentRef": "scan/2025/0001.pdf",
                                   "personIds": [to_global_id("Person", members[0].id)]}})
    assert partial["errors"] == [] and partial["authorisation"]["membersCovered"] == 1
    assert partial["authorisation"]["validUntil"] == (today + dt.timedelta(days=180)).isoformat()
    still = run(VERIFY, {"h": hid})
    assert still["errors"][0]["code"] == "VALIDATION"  # one member is not covered
    assert count(sync_engine, EconomicVerification) == 0
    future = run(AUTH, {"input": {"householdId": hid, "signedByPersonId": to_global_id("Person", members[0].id),
                                  "documentRef": "x", "signedOn": (today + dt.timedelta(days=2)).isoformat()}})
    assert future["errors"][0]["field"] == "signedOn"
    stranger = [p for p in world.persons if p.household_id != household][0]
    wrong = run(AUTH, {"input": {"householdId": hid, "signedByPersonId": to_global_id("Person", stranger.id),
                                 "documentRef": "x"}})
    assert wrong["errors"][0]["code"] in ("VALIDATION", "NOT_FOUND")
    no_doc = run(AUTH, {"input": {"householdId": hid, "signedByPersonId": to_global_id("Person", members[0].id),
                                  "documentRef": " "}})
    assert no_doc["errors"][0]["field"] == "documentRef"
    assert count(sync_engine, VerificationAuthorisation, VerificationAuthorisation.household_id == household) == 1

    whole = run(AUTH, {"input": {"householdId": hid, "signedByPersonId": to_global_id("Person", members[0].id),
                                 "documentRef": "scan/2025/0002.pdf", "idempotencyKey": "auth-1"}})
    assert whole["errors"] == [] and whole["authorisation"]["membersCovered"] == len(members)
    verified = run(VERIFY, {"h": hid})
    assert verified["errors"] == []
    result = verified["verification"]
    assert result["members"] == len(members) and result["totalFinancialAssets"] == 9000
    assert result["monthlyIncome"] == 3600 and result["perCapitaMonthlyIncome"] == round(3600 / len(members), 2)

    referral = live_server.data("ReferCase", {"input": {"householdId": hid, "department": "education",
                                                        "reason": "子女教育救助"}}, token=caseworker)["referCase"]
    shared = run(SHARE, {"r": referral["referral"]["id"], "v": result["id"]})
    assert shared["errors"] == []
    assert shared["referral"]["sharedVerification"]["perCapitaMonthlyIncome"] == result["perCapitaMonthlyIncome"]
    other = [p for p in world.persons if p.household_id != household][0]
    foreign = live_server.data("ReferCase", {"input": {"householdId": to_global_id("Household", other.household_id),
                                                       "department": "education", "reason": "x"}})["referCase"]
    mismatch = run(SHARE, {"r": foreign["referral"]["id"], "v": result["id"]}, token=...)
    assert mismatch["errors"][0]["code"] == "NOT_FOUND"
    with Session(sync_engine) as s:
        actions = set(s.scalars(select(AuditLog.action).where(AuditLog.actor == "cw_verify")))
        assert {"record_authorisation", "economic_verification", "share_verification"} <= actions
