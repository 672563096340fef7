"""Feed row hashes are keyed (issue 17, item 2), on both engines.

A feed row holds the resident's ID number, and a region's ID numbers are few enough to try them all: a stored
unkeyed hash of the row would give the number back. These tests recompute, independently of the import code,
the sha256 of each imported row (the hash the import used to store) and scan every ``feed_record`` column as the
database holds it for it; they show that re-importing the same rows is still recognised (in another format, and
after a data-key rotation), and that revision 0014 turns hashes stored before it into the keyed ones, so a file
imported before the revision is still "already stored" after it, and a second run of it hashes nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from sqlalchemy import text

import aidgraph.core.monitoring.feeds as feeds
from aidgraph.core.monitoring.feeds import FEEDS, import_feed
from aidgraph.core.storage.crypto import add_key
from aidgraph.core.storage.encrypted import forget_keyring, keyring
from aidgraph.core.storage.migrate import downgrade, upgrade
from tests.monitoring.conftest import seed_world
from tests.monitoring.test_feeds import write_csv

KIND = "disease"


def _rows(people, month: int) -> list[list[str]]:
    """One disease row per person, in the feed's column order (every value already in its normalised form)."""
    return [[p.id_number, p.name, "CHRONIC" if i % 2 else "MAJOR", f"诊断{i}", f"2024-{month:02d}-{i % 27 + 1:02d}"]
            for i, p in enumerate(people)]


def _unkeyed(row: list[str]) -> str:
    """The sha256 of a row as the import hashed it before revision 0014: the kind and the values, 0x1f apart."""
    return hashlib.sha256("\x1f".join([KIND, *row]).encode()).hexdigest()


def _feed_record_text(engine) -> list[str]:
    with engine.connect() as conn:
        return [" ".join(str(v) for v in row) for row in conn.execute(text("SELECT * FROM feed_record"))]


def _hashes(engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, row_hash FROM feed_record")).all())


def _unkeyed_import(monkeypatch, engine, path: Path) -> int:
    """Import as an aidgraph before revision 0014 did: event month + the first 58 digits of the row's sha256."""
    with monkeypatch.context() as m:
        m.setattr(feeds, "_row_hash_expr", lambda schema: feeds.pl.concat_str(
            [feeds.pl.col("event_date").dt.strftime("%Y%m"), feeds._row_digest_expr(schema, 58)]))
        return import_feed(engine, KIND, path).stored


def test_no_feed_record_column_holds_an_unkeyed_hash_of_a_row_and_reimport_stays_idempotent(fresh_engine, tmp_path,
                                                                                             monkeypatch):
    keys = tmp_path / "data.key"
    shutil.copy(Path(keyring_file()), keys)
    monkeypatch.setenv("AIDGRAPH_DATA_KEY_FILE", str(keys))
    forget_keyring()
    people = seed_world(fresh_engine, "44", households=6).persons
    rows = _rows(people, 3)
    assert list(FEEDS[KIND].names) == ["id_number", "name", "disease_kind", "diagnosis", "certified_date"]
    path = write_csv(tmp_path / "d.csv", FEEDS[KIND].names, rows)
    assert import_feed(fresh_engine, KIND, path).stored == len(rows) == 18

    stored = _feed_record_text(fresh_engine)
    assert len(stored) == len(rows)
    raw = "\n".join(stored)
    # No column holds the row's sha256, whole or in part (16 digits would already identify the row), nor the
    # ID number, nor the sha256 of the ID number alone.
    for row in rows:
        digest, number = _unkeyed(row), row[0]
        assert digest[:16] not in raw and digest[-16:] not in raw
        assert number not in raw and hashlib.sha256(number.encode()).hexdigest()[:16] not in raw
    hashes = _hashes(fresh_engine)
    assert {h[:7] for h in hashes.values()} == {"202403k"} and {len(h) for h in hashes.values()} == {64}

    # The same rows again, reordered and as JSON lines: recognised, nothing stored twice.
    lines = tmp_path / "d.jsonl"
    lines.write_text("".join(json.dumps(dict(zip(FEEDS[KIND].names, r)), ensure_ascii=False) + "\n"
                             for r in reversed(rows)), encoding="utf-8")
    again = import_feed(fresh_engine, KIND, lines)
    assert (again.stored, again.already_stored) == (0, len(rows))

    # A data-key rotation (a new current key) keeps the row hash's key: still recognised, hashes unchanged.
    add_key(keys)
    forget_keyring()
    assert keyring().current != keyring().index_key_id
    after = import_feed(fresh_engine, KIND, path)
    assert (after.stored, after.already_stored) == (0, len(rows))
    assert _hashes(fresh_engine) == hashes

    # A different deployment key gives different hashes: the hash is keyed, not a function of the row alone.
    other = tmp_path / "other.key"
    other.write_text("k1:" + "QUJD" * 11 + "\n", encoding="utf-8")
    monkeypatch.setenv("AIDGRAPH_DATA_KEY_FILE", str(other))
    forget_keyring()
    elsewhere = feeds.validate(feeds.read_feed(path, FEEDS[KIND]), FEEDS[KIND])
    assert not set(elsewhere.good["row_hash"].to_list()) & set(hashes.values())
    monkeypatch.undo()
    forget_keyring()


def test_revision_0014_keys_the_stored_hashes_and_a_second_run_hashes_nothing_twice(fresh_engine, tmp_path,
                                                                                    monkeypatch):
    people = seed_world(fresh_engine, "44", households=4).persons
    march = write_csv(tmp_path / "march.csv", FEEDS[KIND].names, _rows(people, 3))
    april = write_csv(tmp_path / "april.csv", FEEDS[KIND].names, _rows(people, 4))
    downgrade(fresh_engine, "0013")
    assert _unkeyed_import(monkeypatch, fresh_engine, march) == len(people)
    before = _hashes(fresh_engine)
    # What an import before the revision stored: the month and the row's sha256, which the test recomputes.
    assert sorted(before.values()) == sorted("202403" + _unkeyed(r)[:58] for r in _rows(people, 3))

    upgrade(fresh_engine)
    keyed = _hashes(fresh_engine)
    assert keyed.keys() == before.keys()
    assert all(keyed[i][:7] == "202403k" and keyed[i] != before[i] for i in keyed)
    raw = "\n".join(_feed_record_text(fresh_engine))
    assert not [r for r in _rows(people, 3) if _unkeyed(r)[:16] in raw]
    again = import_feed(fresh_engine, KIND, march)
    assert (again.stored, again.already_stored) == (0, len(people))

    # Half-done: rows already keyed and rows still unkeyed side by side (an interrupted run on an engine without
    # transactional DDL, or rows a newer import wrote). Running the revision again keys the unkeyed rows only.
    downgrade(fresh_engine, "0013")
    assert _hashes(fresh_engine) == keyed  # the downgrade cannot undo the keyed hash; it leaves them
    assert _unkeyed_import(monkeypatch, fresh_engine, april) == len(people)
    upgrade(fresh_engine)
    final = _hashes(fresh_engine)
    assert {i: final[i] for i in keyed} == keyed
    assert len(final) == 2 * len(people) and {h[:7] for h in final.values()} == {"202403k", "202404k"}
    for path in (march, april):
        result = import_feed(fresh_engine, KIND, path)
        assert (result.stored, result.already_stored) == (0, len(people))


def keyring_file() -> str:
    return os.environ["AIDGRAPH_DATA_KEY_FILE"]
