"""RecordRelationship exactly as the contract writes it, against a live server on SQLite and PostgreSQL:
relationships across households recorded and ended, the reverse edge, supportObligors following from it,
the audit log, the aid chain and the outbox written with it, and bad input refused with nothing written
(also two identical requests racing)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from aidgraph.core.graph.relations import relationships_of, support_obligors
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import (
    AidChainEvent,
    AuditLog,
    Outbox,
    Person,
    Relationship,
)
from aidgraph.schema.relay import to_global_id
from tests.live import OPERATION_TEXT
from tests.workflow.builders import FUZHOU, GUANGZHOU, add_household, counts, run

pid = lambda i: to_global_id("Person", i)


@pytest.fixture(scope="module")
def families(sync_engine):
    """An elderly mother living alone, her adult son in another household, and a Fujian resident."""
    mother_hh, (mother,) = add_household(sync_engine, GUANGZHOU, [{"age": 78}])
    son_hh, (son, grandchild) = add_household(sync_engine, GUANGZHOU, [{"age": 50}, {"age": 12}])
    _, (stranger,) = add_household(sync_engine, FUZHOU, [{"age": 45}])
    return {"mother": mother, "son": son, "grandchild": grandchild, "stranger": stranger,
            "mother_hh": mother_hh, "son_hh": son_hh}


def record(live_server, **input):
    body = live_server.data("RecordRelationship", {"input": input})
    return body["recordRelationship"]


def test_record_support_obligor_across_households(live_server, sync_engine, families, db_url):
    m, s = families["mother"], families["son"]
    before = counts(sync_engine)
    out = record(live_server, personId=pid(m), otherPersonId=pid(s), kind="SUPPORT_OBLIGOR", since="2020-03-01",
                 idempotencyKey="rel-1")
    assert out["errors"] == []
    assert out["person"]["id"] == pid(m)
    assert out["person"]["relationships"] == [{"kind": "SUPPORT_OBLIGOR", "since": "2020-03-01", "until": None,
                                               "person": {"id": pid(s)}}]
    assert out["person"]["supportObligors"] == [{"id": pid(s)}]  # 赡养义务人 in another household
    # the reverse edge follows: seen from the son, the mother is the person he supports
    views = run(db_url, lambda session: relationships_of(session, [s]))[s]
    assert [(v.kind, v.other_person_id) for v in views] == [("SUPPORTED", m)]
    with session_scope(sync_engine) as session:
        edge = session.execute(select(Relationship).where(Relationship.to_person_id == m)).scalar_one()
        assert (edge.from_person_id, edge.kind, edge.valid_from, edge.valid_to) == (
            s, "SUPPORT_OBLIGOR", dt.date(2020, 3, 1), None)
        audit = session.execute(select(AuditLog).where(AuditLog.object_type == "relationship")).scalar_one()
        assert (audit.action, audit.object_id, audit.actor) == ("record_relationship", str(edge.id), "admin44")
        chain = session.execute(select(AidChainEvent.household_id).where(
            AidChainEvent.ref_type == "relationship", AidChainEvent.ref_id == edge.id).order_by(
            AidChainEvent.household_id)).scalars().all()
        assert chain == sorted([families["mother_hh"], families["son_hh"]])  # both households' aid chains
        outbox = session.execute(select(Outbox.entity_id, Outbox.version).where(
            Outbox.entity == "PERSON", Outbox.entity_id.in_([m, s])).order_by(Outbox.entity_id)).all()
        versions = dict(session.execute(select(Person.id, Person.version).where(Person.id.in_([m, s]))).all())
        assert sorted(outbox) == sorted([(m, versions[m]), (s, versions[s])]) and versions[m] == 2
    after = counts(sync_engine)
    assert after["relationship"] == before["relationship"] + 1
    # the same idempotency key again: the first answer, nothing written twice
    again = record(live_server, personId=pid(m), otherPersonId=pid(s), kind="SUPPORT_OBLIGOR", since="2020-03-01",
                   idempotencyKey="rel-1")
    assert again["errors"] == [] and again["person"]["supportObligors"] == [{"id": pid(s)}]
    assert counts(sync_engine) == after


@pytest.mark.parametrize("case", ["unknown person", "out of scope", "self", "until before since", "duplicate",
                                  "duplicate from the other end", "end what does not exist", "bad id"])
def test_bad_input_is_refused_with_nothing_written(live_server, sync_engine, families, case):
    m, s, g, x = families["mother"], families["son"], families["grandchild"], families["stranger"]
    if case == "duplicate" or case == "duplicate from the other end":
        existing = record(live_server, personId=pid(g), otherPersonId=pid(s), kind="PARENT", since="2013-01-15")
        assert existing["errors"] == [] or existing["errors"][0]["field"] == "kind"
    inputs = {
        "unknown person": ({"personId": pid(m), "otherPersonId": pid(999999), "kind": "SPOUSE"},
                           ("otherPersonId", "NOT_FOUND")),
        "out of scope": ({"personId": pid(m), "otherPersonId": pid(x), "kind": "SUPPORT_OBLIGOR"},
                         ("otherPersonId", "NOT_FOUND")),  # a Fujian resident: not found for a Guangdong officer
        "self": ({"personId": pid(m), "otherPersonId": pid(m), "kind": "SPOUSE"}, ("otherPersonId", "VALIDATION")),
        "until before since": ({"personId": pid(m), "otherPersonId": pid(g), "kind": "GUARDIAN",
                                "since": "2024-05-01", "until": "2024-04-30"}, ("until", "VALIDATION")),
        "duplicate": ({"personId": pid(g), "otherPersonId": pid(s), "kind": "PARENT", "since": "2014-01-01"},
                      ("kind", "VALIDATION")),
        "duplicate from the other end": ({"personId": pid(s), "otherPersonId": pid(g), "kind": "CHILD"},
                                         ("kind", "VALIDATION")),
        "end what does not exist": ({"personId": pid(m), "otherPersonId": pid(g), "kind": "WARD",
                                     "until": "2025-01-01"}, ("kind", "NOT_FOUND")),
        "bad id": ({"personId": "not-an-id", "otherPersonId": pid(s), "kind": "SPOUSE"}, ("personId", "NOT_FOUND")),
    }
    given, (field, code) = inputs[case]
    before = counts(sync_engine)
    out = record(live_server, **given)
    assert out["person"] is None
    assert [(e["field"], e["code"]) for e in out["errors"]] == [(field, code)], out["errors"]
    assert counts(sync_engine) == before


def test_end_a_relationship_with_until(live_server, sync_engine, families, db_url):
    m, g, s = families["mother"], families["grandchild"], families["son"]
    record(live_server, personId=pid(g), otherPersonId=pid(s), kind="PARENT", since="2013-01-15")  # maybe already
    assert record(live_server, personId=pid(g), otherPersonId=pid(m), kind="GUARDIAN", since="2019-01-01")["errors"] == []
    run_on = dt.date(2025, 6, 1)
    # the parent of a minor is the obligor (抚养); a guardian (监护人) is not one
    assert run(db_url, lambda session: support_obligors(session, [g], run_on))[g] == [s]
    views = run(db_url, lambda s: relationships_of(s, [m], run_on))[m]
    assert ("WARD", g) in [(v.kind, v.other_person_id) for v in views]
    before = counts(sync_engine)
    ended = record(live_server, personId=pid(g), otherPersonId=pid(m), kind="GUARDIAN", until="2026-01-01")
    assert ended["errors"] == []
    assert all(r["kind"] != "GUARDIAN" for r in ended["person"]["relationships"])  # ended before today
    after = counts(sync_engine)
    assert after["relationship"] == before["relationship"]  # the edge is ended, not added
    assert after["audit_log"] == before["audit_log"] + 1
    with session_scope(sync_engine) as session:
        edge = session.execute(select(Relationship).where(Relationship.from_person_id == m,
                                                          Relationship.to_person_id == g)).scalar_one()
        assert (edge.valid_from, edge.valid_to) == (dt.date(2019, 1, 1), dt.date(2026, 1, 1))
        assert session.execute(select(AuditLog.action).where(AuditLog.object_id == str(edge.id)).order_by(
            AuditLog.id.desc())).scalars().first() == "end_relationship"
    # still current on the day before the end, gone on the end day
    on_eve = run(db_url, lambda s: relationships_of(s, [m], dt.date(2025, 12, 31)))[m]
    on_end = run(db_url, lambda s: relationships_of(s, [m], dt.date(2026, 1, 1)))[m]
    assert ("WARD", g) in [(v.kind, v.other_person_id) for v in on_eve]
    assert ("WARD", g) not in [(v.kind, v.other_person_id) for v in on_end]
    # ending it again: nothing current to end
    again = record(live_server, personId=pid(g), otherPersonId=pid(m), kind="GUARDIAN", until="2026-02-01")
    assert [(e["field"], e["code"]) for e in again["errors"]] == [("kind", "NOT_FOUND")]
    # a new guardianship may start after the old one ended
    renewed = record(live_server, personId=pid(g), otherPersonId=pid(m), kind="GUARDIAN", since="2026-03-01")
    assert renewed["errors"] == []


def test_two_identical_requests_racing_store_one_edge(live_server, sync_engine, families):
    m, s = families["mother"], families["son"]
    before = counts(sync_engine)

    def send(_):
        response = live_server.post(OPERATION_TEXT["RecordRelationship"], {"input": {
            "personId": pid(s), "otherPersonId": pid(m), "kind": "SPOUSE", "since": "2001-01-01"}},
            "RecordRelationship")
        assert response.status_code == 200, response.text
        return response.json()["data"]["recordRelationship"]

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))
    ok = [a for a in answers if a["errors"] == []]
    refused = [a for a in answers if a["errors"]]
    assert len(ok) == 1, answers
    assert all(a["errors"][0]["field"] == "kind" and a["person"] is None for a in refused)
    after = counts(sync_engine)
    assert after["relationship"] == before["relationship"] + 1
    assert after["audit_log"] == before["audit_log"] + 1
