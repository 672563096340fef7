"""The approval queue at the caller's level (``enrollments(awaitingMe: true)``, issue 14), over a live server on
SQLite and PostgreSQL.

Enrolments wait at every step in two townships of 广东: one in 广州 (4401), where GD-2021 delegates the approval
of dibao and tekun to townships, one in 汕头 (4405), where the county approves. Each caller sees only what waits
for a step they may take, and the queue agrees with deciding: a step outside the caller's queue is FORBIDDEN
when tried, one inside it is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import Enrollment, EnrollmentStep, Household, Region
from aidgraph.schema.relay import to_global_id
from tests.casework.conftest import token_for

QUEUE = """query Q($r: String!, $mine: Boolean!) { enrollments(regionCode: $r, awaitingMe: $mine, first: 100) {
    totalCount edges { node { id status program { key } } } } }"""
DECIDE = """mutation D($input: DecideEnrollmentInput!) { decideEnrollment(input: $input) {
    enrollment { status } errors { code field message } } }"""

ROWS = {  # label: (status, program)
    "applied": ("APPLIED", "dibao"),
    "verifying": ("VERIFYING", "dibao"),
    "reviewed": ("REVIEWED", "dibao"),
    "reviewed_edge": ("REVIEWED", "dibao_edge"),  # near-dibao: not delegated to townships anywhere in 44
    "approved": ("APPROVED", "dibao"),
    "active": ("ACTIVE", "dibao"),  # receiving: in no approval queue
    "emergency": ("APPLIED", "temporary_emergency"),  # aid first (先行救助)
}


@dataclass
class Queue:
    villages: dict[str, str]  # city -> village
    ids: dict[str, dict[str, int]]  # city -> label -> enrolment id

    def labels(self, city: str, names) -> set[str]:
        return {to_global_id("Enrollment", self.ids[city][n]) for n in names}


@pytest.fixture(scope="module")
def queue(sync_engine) -> Queue:
    """One household per row of :data:`ROWS` in a village of 广州 and one of 汕头."""
    found = Queue({}, {})
    with Session(sync_engine) as s, s.begin():
        for city in ("4401", "4405"):
            village = s.scalar(select(Region.code).where(Region.level == "VILLAGE", Region.code.startswith(city))
                               .order_by(Region.code).limit(1))
            assert village is not None
            households = s.execute(insert(Household).returning(Household.id, sort_by_parameter_order=True), [
                {"household_number": f"Q{city}{i:04d}", "region_code": village, "address": f"{village} 队列路{i}号"}
                for i in range(len(ROWS))]).scalars().all()
            enrolments = s.execute(insert(Enrollment).returning(Enrollment.id, sort_by_parameter_order=True), [
                {"household_id": h, "program_key": program, "province_code": "44", "region_code": village,
                 "status": status, "version": 1} for h, (status, program) in zip(households, ROWS.values())]
                                   ).scalars().all()
            found.villages[city], found.ids[city] = village, dict(zip(ROWS, enrolments))
    return found


def listed(live, token, region: str, mine: bool = True) -> dict[str, str]:
    body = live.post(QUEUE, {"r": region, "mine": mine}, token=token).json()
    assert "errors" not in body, body
    page = body["data"]["enrollments"]
    assert page["totalCount"] == len(page["edges"])
    return {e["node"]["id"]: e["node"]["status"] for e in page["edges"]}


def test_each_caller_sees_what_waits_at_their_level(live_server, sync_engine, db_url, queue):
    gz, st = queue.villages["4401"], queue.villages["4405"]
    cw_gz = token_for(db_url, sync_engine, "cw_queue_gz", "township_caseworker", gz[:9])
    cw_st = token_for(db_url, sync_engine, "cw_queue_st", "township_caseworker", st[:9])
    county_st = token_for(db_url, sync_engine, "county_queue_st", "county_officer", st[:6])
    city_gz = token_for(db_url, sync_engine, "city_queue_gz", "city_officer", gz[:4])

    # 广州's township: verification and review, and approval of dibao (delegated); not near-dibao's approval, not
    # activation (disbursement is the county's).
    assert set(listed(live_server, cw_gz, gz[:9])) == queue.labels("4401", ["applied", "verifying", "reviewed",
                                                                             "emergency"])
    # 汕头's township: no approval is delegated there.
    assert set(listed(live_server, cw_st, st[:9])) == queue.labels("4405", ["applied", "verifying", "emergency"])
    # 汕头's county: every step up to activation; what its townships verify waits for it too (it holds review).
    assert set(listed(live_server, county_st, st[:6])) == queue.labels("4405", [
        "applied", "verifying", "reviewed", "reviewed_edge", "approved", "emergency"])
    # A city officer reads enrolments but takes no step: the whole list, an empty queue.
    assert set(listed(live_server, city_gz, gz[:4], mine=False)) == queue.labels("4401", ROWS)
    assert listed(live_server, city_gz, gz[:4]) == {}
    # The province administrator: every waiting enrolment of both cities, never the receiving ones.
    everything = listed(live_server, ..., "44")
    waiting = [n for n in ROWS if n != "active"]
    assert queue.labels("4401", waiting) | queue.labels("4405", waiting) <= set(everything)
    assert not queue.labels("4401", ["active"]) & set(everything) and "ACTIVE" not in everything.values()
    # The filter narrows within the caller's scope and the region asked: 汕头's township asking for 广州 sees none.
    assert listed(live_server, cw_st, gz[:9]) == {}


def test_the_queue_agrees_with_deciding(live_server, sync_engine, db_url, queue):
    gz = queue.villages["4401"]
    cw_gz = token_for(db_url, sync_engine, "cw_queue_gz", "township_caseworker", gz[:9])
    with Session(sync_engine) as s:
        steps = s.scalar(select(func.count()).select_from(EnrollmentStep))

    def decide(label: str, action: str) -> list[dict]:
        variables = {"input": {"enrollmentId": to_global_id("Enrollment", queue.ids["4401"][label]), "action": action}}
        body = live_server.post(DECIDE, variables, token=cw_gz).json()
        assert "errors" not in body, body
        return body["data"]["decideEnrollment"]["errors"]

    # Outside the queue: the step is refused for the caller's level.
    assert [e["code"] for e in decide("reviewed_edge", "APPROVE")] == ["FORBIDDEN"]
    assert [e["code"] for e in decide("approved", "ACTIVATE")] == ["FORBIDDEN"]
    # Inside it: the caller may take the step (this household, with no members, is then found not eligible).
    inside = decide("reviewed", "APPROVE")
    assert inside and "FORBIDDEN" not in {e["code"] for e in inside}
    with Session(sync_engine) as s:
        assert s.scalar(select(func.count()).select_from(EnrollmentStep)) == steps  # nothing written
