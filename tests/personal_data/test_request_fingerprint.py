"""Idempotency fingerprints are keyed (issue 17 item 2's rule for any stored hash of an ID number; issue 12 item
10's refusal of a reused key): a registration's input holds its members' ID numbers, so the stored fingerprint of
it must not be the plain sha256 that anyone reading the table could recompute for candidate ID numbers; and
revision 0020 clears the unkeyed fingerprints stored before it, on both engines."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from aidgraph.core.graph import idempotency
from aidgraph.core.storage.encrypted import forget_keyring
from aidgraph.core.storage.migrate import downgrade, upgrade
from aidgraph.core.storage.models import IdempotencyRecord

PAYLOAD = {"regionCode": "440511001001", "address": "金砂街道1号",
           "members": [{"name": "张三", "idNumber": "440511198001010012", "relation": "SELF"}]}


def _canonical(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_a_fingerprint_is_keyed_and_not_the_inputs_sha256(monkeypatch):
    stored = idempotency.fingerprint(PAYLOAD)
    assert len(stored) == 64 and int(stored, 16) >= 0
    assert stored != hashlib.sha256(_canonical(PAYLOAD).encode()).hexdigest()
    assert "440511198001010012" not in stored
    assert idempotency.fingerprint(dict(PAYLOAD)) == stored  # stable for one deployment: a retry matches
    # Another deployment's key gives another fingerprint: without the key, candidates cannot be tested.
    monkeypatch.delenv("AIDGRAPH_DATA_KEY_FILE", raising=False)
    monkeypatch.setenv("AIDGRAPH_DATA_KEY", secrets.token_hex(32))
    forget_keyring()
    try:
        assert idempotency.fingerprint(PAYLOAD) != stored
    finally:
        monkeypatch.undo()
        forget_keyring()


def _record(engine, key: str, request_hash: str | None) -> None:
    with Session(engine) as s, s.begin():
        s.execute(insert(IdempotencyRecord).values(actor="tester", operation="registerHousehold", key=key,
                                                   result={"householdId": 1}, request_hash=request_hash,
                                                   created_at=dt.datetime(2026, 12, 1)))


def _hashes(engine) -> dict[str, str | None]:
    with Session(engine) as s:
        return dict(s.execute(select(IdempotencyRecord.key, IdempotencyRecord.request_hash)).tuples().all())


def test_revision_0020_clears_unkeyed_fingerprints(fresh_engine):
    downgrade(fresh_engine, "0019")
    unkeyed = hashlib.sha256(_canonical(PAYLOAD).encode()).hexdigest()
    _record(fresh_engine, "before", unkeyed)
    upgrade(fresh_engine)
    assert _hashes(fresh_engine) == {"before": None}
    _record(fresh_engine, "after", idempotency.fingerprint(PAYLOAD))
    downgrade(fresh_engine, "0019")  # an older release computes unkeyed fingerprints: the keyed ones go too
    assert _hashes(fresh_engine) == {"before": None, "after": None}
    upgrade(fresh_engine)
