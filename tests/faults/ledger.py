"""A client ledger for fault tests: writers that send mutations with idempotency keys over HTTP and record
which ones the server acknowledged, and a check of the database against that ledger.

The ledger is the client's truth: an entry is *acknowledged* when the server answered HTTP 200 with the
mutation's payload and no error; every other request (a reset connection, a timeout, a refusal during a
fault) is *unacknowledged*: it may or may not have been written, and re-sending it with the same key must
give exactly one write. The checks read the database directly (not through the server under test).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from aidgraph.core.graph.idnumber import make as make_id
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import Household, Membership, Outbox, Person
from aidgraph.schema.relay import from_global_id
from tests.live import OPERATION_TEXT

VILLAGE = "440106001001"
_serial = itertools.count(1)


def new_id_number() -> str:
    """A valid ID number no other write of this session uses (birth date and sequence from one counter)."""
    n = next(_serial) + (os.getpid() % 50) * 20_000
    return make_id("440106", dt.date(1950, 1, 1) + dt.timedelta(days=n // 900), n % 900)


@dataclass
class Write:
    operation: str  # RegisterHousehold or AddHouseholdMember
    input: dict
    answer: dict | None = None
    """The mutation's payload when acknowledged."""
    error: str | None = None
    """Why it is unacknowledged (transport error, GraphQL error, user error)."""

    @property
    def key(self) -> str:
        return self.input["idempotencyKey"]

    @property
    def acknowledged(self) -> bool:
        return self.answer is not None


@dataclass
class Ledger:
    marker: str
    """Written into every household's address: the households of this ledger."""
    writes: list[Write] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> list[Write]:
        with self.lock:
            return [w for w in self.writes if w.acknowledged]

    def unacknowledged(self) -> list[Write]:
        with self.lock:
            return [w for w in self.writes if not w.acknowledged]

    def households(self) -> list[str]:
        """Global ids of the households whose registration was acknowledged."""
        return [w.answer["household"]["id"] for w in self.acknowledged() if w.operation == "RegisterHousehold"]

    def add(self, write: Write) -> None:
        with self.lock:
            self.writes.append(write)


def register_input(marker: str) -> dict:
    members = [{"name": "户主", "idNumber": new_id_number(), "relationToHead": "SELF"},
               {"name": "配偶", "idNumber": new_id_number(), "relationToHead": "SPOUSE"}]
    if random.random() < 0.5:
        members.append({"name": "子女", "idNumber": new_id_number(), "relationToHead": "CHILD"})
    return {"regionCode": VILLAGE, "address": f"{marker} {uuid.uuid4().hex[:6]}", "members": members,
            "idempotencyKey": uuid.uuid4().hex}


def add_member_input(household_id: str) -> dict:
    return {"householdId": household_id, "idempotencyKey": uuid.uuid4().hex,
            "member": {"name": "新成员", "idNumber": new_id_number(), "relationToHead": "CHILD"}}


def send(client: httpx.Client, url: str, token: str, write: Write, timeout: float = 30.0) -> None:
    """Send one write; fill ``answer`` when the server acknowledged it, else ``error``."""
    field_name = "registerHousehold" if write.operation == "RegisterHousehold" else "addHouseholdMember"
    try:
        response = client.post(f"{url}/graphql", json={"query": OPERATION_TEXT[write.operation],
                                                       "operationName": write.operation,
                                                       "variables": {"input": write.input}},
                                headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except httpx.HTTPError as e:
        write.error = f"{type(e).__name__}: {e}"
        return
    if response.status_code != 200:
        write.error = f"HTTP {response.status_code}: {response.text[:200]}"
        return
    body = response.json()
    payload = (body.get("data") or {}).get(field_name)
    if body.get("errors") or payload is None:
        write.error = f"GraphQL errors: {body.get('errors')}"
    elif payload["errors"]:
        write.error = f"user errors: {payload['errors']}"
    else:
        write.answer = payload


class Writers:
    """``n`` client threads writing until stopped: new households, and members added to acknowledged ones."""

    def __init__(self, url: str, token: str, ledger: Ledger, n: int = 2):
        self.url = url
        self.token = token
        self.ledger = ledger
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True, name=f"ledger-writer-{i}") for i in range(n)]

    def start(self) -> "Writers":
        for t in self.threads:
            t.start()
        return self

    def _run(self) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set():
                households = self.ledger.households()
                if households and random.random() < 0.4:
                    write = Write("AddHouseholdMember", add_member_input(random.choice(households)))
                else:
                    write = Write("RegisterHousehold", register_input(self.ledger.marker))
                self.ledger.add(write)  # before sending: a write in flight at a fault is in the ledger
                send(client, self.url, self.token, write, timeout=10)
                if write.error and "Error" in write.error.split(":")[0]:
                    self.stop.wait(0.05)  # the server is gone: do not spin on refused connections

    def join(self, timeout: float = 30.0) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout)


def db_id(global_id: str) -> int:
    decoded = from_global_id(global_id)
    assert decoded is not None, global_id
    return decoded[1]


def check_database(db_url: str, ledger: Ledger, *, exactly_once: bool = False) -> dict[str, int]:
    """Assert the database against the ledger; return counts.

    - every acknowledged registration is there as answered (household number, each member's person and
      relation), with its outbox row (search hears of it);
    - every acknowledged added member is a current member of its household;
    - no household of the ledger is half-written: each has exactly one current head, and the members of every
      registration (acknowledged or not) are either all there or none of them is;
    - with ``exactly_once`` (after re-sending the unacknowledged writes): every write of the ledger is there
      exactly once.
    """
    engine = make_sync_engine(db_url)
    try:
        with session_scope(engine) as s:
            households = {h.id: h for h in s.scalars(select(Household).where(
                Household.address.like(f"{ledger.marker}%")))}
            memberships = s.scalars(select(Membership).where(Membership.household_id.in_(households))).all() \
                if households else []
            person_ids = {m.person_id for m in memberships}
            persons = {p.id: p for p in s.scalars(select(Person).where(Person.id.in_(person_ids)))} \
                if person_ids else {}
            outboxed = set(s.scalars(select(Outbox.entity_id).where(
                Outbox.entity == "HOUSEHOLD", Outbox.entity_id.in_(households)))) if households else set()
            current: dict[int, list[Membership]] = {hid: [] for hid in households}
            for m in memberships:
                if m.valid_to is None:
                    current[m.household_id].append(m)
            by_number = Counter(persons[m.person_id].id_number for m in memberships)

            for hid, members in current.items():
                heads = [m for m in members if m.relation_to_head == "SELF"]
                assert len(heads) == 1, f"household {hid} has {len(heads)} current heads"
                assert all(m.person_id in persons for m in members), f"household {hid} has a member without a person"
                assert hid in outboxed, f"household {hid} has no outbox row"

            numbers_present = set(by_number)
            for w in ledger.writes:
                wanted = [m["idNumber"] for m in (w.input["members"] if w.operation == "RegisterHousehold"
                                                  else [w.input["member"]])]
                present = [n in numbers_present for n in wanted]
                assert all(present) or not any(present), f"half-written {w.operation} {w.key}: {present}"
                if w.acknowledged:
                    assert all(present), f"acknowledged {w.operation} {w.key} is missing"
                if exactly_once:
                    assert all(present), f"{w.operation} {w.key} is missing after the retry"
                    assert all(by_number[n] == 1 for n in wanted), f"{w.operation} {w.key} written twice"

            for w in ledger.acknowledged():
                hid = db_id(w.answer["household"]["id"])
                assert hid in households, f"acknowledged household {hid} is missing"
                numbers = {persons[m.person_id].id_number: m for m in current[hid]}
                if w.operation == "RegisterHousehold":
                    answered = w.answer["household"]
                    assert households[hid].household_number == answered["householdNumber"]
                    assert households[hid].address == w.input["address"]
                    assert {n["idNumber"] for n in w.input["members"]} <= set(numbers)
                    answered_members = {(a["relationToHead"], db_id(a["person"]["id"])) for a in answered["members"]}
                    assert answered_members <= {(m.relation_to_head, m.person_id) for m in current[hid]}
                    assert len(answered_members) == len(w.input["members"])
                else:
                    assert w.input["member"]["idNumber"] in numbers
                    assert len(current[hid]) >= w.answer["household"]["memberCount"]
            return {"households": len(households), "acknowledged": len(ledger.acknowledged()),
                    "unacknowledged": len(ledger.unacknowledged())}
    finally:
        engine.dispose()
