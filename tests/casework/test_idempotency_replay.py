"""Idempotency keys of the casework mutations (aidgraph.core.graph.idempotency, their one helper), over a live
server on SQLite and PostgreSQL: a retry replays the first answer and writes nothing; the same key with another
input is IDEMPOTENCY_KEY_REUSED and writes nothing; concurrent requests with one key write once; a retry whose first answer has been
deleted since is NOT_FOUND, not a second row under the same key."""

from __future__ import annotations

import threading

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import IdempotencyRecord, ReserveFundEntry, Visit
from aidgraph.schema.relay import from_global_id, to_global_id
from tests.casework.conftest import count, token_for

VISIT = """mutation V($input: RecordVisitInput!) { recordVisit(input: $input) {
    visit { id findings } errors { code field message } } }"""
REPLENISH = """mutation R($input: ReplenishReserveFundInput!) { replenishReserveFund(input: $input) {
    reserveFund { townshipCode balance } errors { code field } } }"""


def post(live, query, variables, token=...):
    body = live.post(query, variables, token=token).json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def test_a_visit_sent_again_with_its_key_is_recorded_once(live_server, world, sync_engine, db_url):
    household = world.persons[3].household_id
    caseworker = token_for(db_url, sync_engine, "cw_idem", "township_caseworker", world.households[household][:9])
    hid = to_global_id("Household", household)
    first = post(live_server, VISIT, {"input": {"householdId": hid, "findings": "生活平稳", "idempotencyKey": "v-1"}},
                 token=caseworker)
    assert first["errors"] == []
    # The retry resends the same input: the first answer comes back.
    again = post(live_server, VISIT, {"input": {"householdId": hid, "findings": "生活平稳", "idempotencyKey": "v-1"}},
                 token=caseworker)
    assert again == first
    # The same key with another text is another request: refused, nothing written.
    reused = post(live_server, VISIT, {"input": {"householdId": hid, "findings": "重发", "idempotencyKey": "v-1"}},
                  token=caseworker)
    assert reused["visit"] is None
    assert [(e["code"], e["field"]) for e in reused["errors"]] == [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    assert count(sync_engine, Visit, Visit.household_id == household) == 1
    with Session(sync_engine) as s:
        record = s.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "v-1")).one()
    assert (record.operation, record.actor) == ("recordVisit", "cw_idem")
    assert record.request_hash is not None  # keyed: see tests/personal_data/test_request_fingerprint.py
    assert record.result == {"visit_id": int(from_global_id(first["visit"]["id"])[1])}

    # Six clients send one request at once: one visit, and every client gets its answer.
    answers: list[dict] = []

    def send() -> None:
        answers.append(post(live_server, VISIT, {"input": {"householdId": hid, "findings": "同时发送",
                                                           "idempotencyKey": "v-many"}}, token=caseworker))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 6 and all(a["errors"] == [] for a in answers)
    assert len({a["visit"]["id"] for a in answers}) == 1
    assert count(sync_engine, Visit, Visit.household_id == household) == 2

    # The visit the key answered with is gone: the retry says so and writes nothing.
    with Session(sync_engine) as s, s.begin():
        s.execute(delete(Visit).where(Visit.id == int(from_global_id(first["visit"]["id"])[1])))
    gone = post(live_server, VISIT, {"input": {"householdId": hid, "findings": "生活平稳", "idempotencyKey": "v-1"}},
                token=caseworker)
    assert gone["visit"] is None and [(e["code"], e["field"]) for e in gone["errors"]] == [
        ("NOT_FOUND", "idempotencyKey")]
    assert count(sync_engine, Visit, Visit.household_id == household) == 1


def test_a_reserve_fund_replenished_again_with_its_key_is_credited_once(live_server, world, sync_engine, db_url):
    town = world.persons[6].region_code[:9]
    officer = token_for(db_url, sync_engine, "county_idem", "county_officer", town[:6])
    first = post(live_server, REPLENISH, {"input": {"townshipCode": town, "amount": 1500, "idempotencyKey": "rf-1"}},
                 token=officer)
    assert first["errors"] == [] and first["reserveFund"]["balance"] == 1500
    again = post(live_server, REPLENISH, {"input": {"townshipCode": town, "amount": 1500, "idempotencyKey": "rf-1"}},
                 token=officer)
    assert again == first
    # Another amount under the first credit's key: refused, never reported as credited.
    reused = post(live_server, REPLENISH, {"input": {"townshipCode": town, "amount": 900, "idempotencyKey": "rf-1"}},
                  token=officer)
    assert reused["reserveFund"] is None
    assert [(e["code"], e["field"]) for e in reused["errors"]] == [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    assert count(sync_engine, ReserveFundEntry, ReserveFundEntry.township_code == town) == 1
    other = post(live_server, REPLENISH, {"input": {"townshipCode": town, "amount": 100, "idempotencyKey": "rf-2"}},
                 token=officer)
    assert other["reserveFund"]["balance"] == 1600
    bad = post(live_server, REPLENISH, {"input": {"townshipCode": town, "amount": 100, "idempotencyKey": " "}},
               token=officer)
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [("VALIDATION", "idempotencyKey")]
    assert count(sync_engine, ReserveFundEntry, ReserveFundEntry.township_code == town) == 2
