"""The audit log is hash-chained and append-only on both engines; ``aidgraph audit verify`` names tampering."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from sqlalchemy import func, insert, select, text
from typer.testing import CliRunner

from aidgraph.core.graph import audit
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.storage.models import AuditChain, AuditLog
from tests.personal_data.conftest import SystemActor


def _write(engine, n: int, actor: str = "tester") -> None:
    for i in range(n):
        with session_scope(engine) as session:
            audit.record(session, SystemActor(actor), "create", "household", i, "4401", {"i": i, "名": "张三"})
            session.execute(insert(AuditLog), [{"actor": actor, "action": "read_sensitive", "object_type": "person",
                                               "object_id": str(i), "region_code": "440106",
                                               "detail": {"fields": ["idNumber"]}}])


def _seqs(engine) -> list[int | None]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(AuditLog.seq).order_by(AuditLog.seq))]


def _drop_triggers(engine) -> None:
    """What a database owner can do: the chain, not the triggers, is what catches the change."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))


def _verify_cli(engine) -> tuple[int, dict]:
    from aidgraph.core.app.cli import app

    url = engine.url.render_as_string(hide_password=False)
    r = CliRunner().invoke(app, ["audit", "verify", "--json"], env={"AIDGRAPH_DATABASE_URL": url})
    return r.exit_code, json.loads(r.stdout.strip().splitlines()[-1])


def test_every_commit_seals_its_rows_in_one_chain(fresh_engine):
    _write(fresh_engine, 5)
    assert _seqs(fresh_engine) == list(range(1, 11))
    with session_scope(fresh_engine) as session:
        result = audit.verify(session)
        head = session.get(AuditChain, "audit")
    assert result.ok and result.checked == 10 and result.unsealed == 0
    assert head.seq == 10 and head.head_hash == result.head_hash
    code, body = _verify_cli(fresh_engine)
    assert code == 0 and body["ok"] and body["checked"] == 10


def test_a_rolled_back_write_leaves_no_row_and_no_gap(fresh_engine):
    _write(fresh_engine, 1)
    with pytest.raises(RuntimeError):
        with session_scope(fresh_engine) as session:
            audit.record(session, SystemActor(), "create", "household", 9, "4401")
            session.flush()
            raise RuntimeError("the write fails after its audit row was flushed")
    _write(fresh_engine, 1)
    assert _seqs(fresh_engine) == [1, 2, 3, 4]
    with session_scope(fresh_engine) as session:
        assert audit.verify(session).ok


def test_concurrent_writers_extend_one_chain(fresh_engine):
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            _write(fresh_engine, 6, actor=f"w{k}")
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _seqs(fresh_engine) == list(range(1, 6 * 6 * 2 + 1))
    with session_scope(fresh_engine) as session:
        assert audit.verify(session).ok


@pytest.mark.parametrize("rows", [1, 250])  # 250: past the size where sealing updates through the bulk path
def test_async_sessions_seal_too(fresh_engine, rows):
    url = fresh_engine.url.render_as_string(hide_password=False)

    async def go() -> None:
        engine = make_async_engine(url)
        factory = async_session_factory(engine)
        async with factory() as session:
            await session.execute(insert(AuditLog), [{"actor": "api", "action": "read_sensitive",
                                                      "object_type": "person", "object_id": str(i),
                                                      "region_code": "4401", "detail": {"fields": ["phone"]}}
                                                     for i in range(rows)])
            await session.commit()
        await engine.dispose()

    asyncio.run(go())
    assert _seqs(fresh_engine) == list(range(1, rows + 1))
    with session_scope(fresh_engine) as session:
        assert audit.verify(session).ok


def test_triggers_refuse_changes_and_deletions(fresh_engine):
    _write(fresh_engine, 2)
    for statement in ("UPDATE audit_log SET actor = 'x' WHERE seq = 2", "DELETE FROM audit_log WHERE seq = 1"):
        with pytest.raises(Exception, match="append-only"):
            with fresh_engine.begin() as conn:
                conn.execute(text(statement))
    assert _seqs(fresh_engine) == [1, 2, 3, 4]


def test_verify_names_changed_deleted_and_inserted_rows(fresh_engine):
    _write(fresh_engine, 5)  # seq 1..10
    _drop_triggers(fresh_engine)
    with fresh_engine.begin() as conn:
        ids = dict(conn.execute(select(AuditLog.seq, AuditLog.id)).all())
        conn.execute(text("UPDATE audit_log SET detail = :d WHERE seq = 3"), {"d": json.dumps({"i": 99})})
        conn.execute(text("DELETE FROM audit_log WHERE seq = 6"))
        # an inserted row whose hash is computed correctly but cannot link to both neighbours: it takes seq 8's
        # place after seq 8 is moved away
        conn.execute(text("UPDATE audit_log SET seq = 1000 WHERE seq = 8"))
        row = conn.execute(select(AuditLog).where(AuditLog.seq == 7)).first()
        forged = {"at": row.at, "actor": "intruder", "action": "create", "object_type": "household",
                  "object_id": "1", "region_code": "44", "remote_addr": None, "detail": None}

        class R:
            pass

        r = R()
        r.__dict__.update(forged)
        conn.execute(insert(AuditLog).values(**forged, seq=8, prev_hash="f" * 64,
                                             row_hash=audit.row_hash("f" * 64, 8, r)))
    code, body = _verify_cli(fresh_engine)
    assert code == 1 and not body["ok"]
    found = {(f["kind"], f["seq"], f["id"]) for f in body["findings"]}
    assert ("changed", 3, ids[3]) in found
    assert ("deleted", 6, None) in found
    assert ("inserted", 1000, ids[8]) in found  # moved beyond the head
    inserted = [f for f in body["findings"] if f["kind"] == "inserted" and f["seq"] == 8]
    assert inserted and inserted[0]["id"] not in ids.values()


def test_verify_notices_the_newest_rows_removed(fresh_engine):
    _write(fresh_engine, 3)
    _drop_triggers(fresh_engine)
    with fresh_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 5"))
    with session_scope(fresh_engine) as session:
        result = audit.verify(session)
    assert not result.ok
    assert [(f.kind, f.seq) for f in result.findings] == [("truncated", 5)]


def test_unsealed_rows_from_raw_writers_are_sealed_by_the_next_write(fresh_engine):
    with fresh_engine.begin() as conn:  # a raw batch path: no session, no listener
        conn.execute(text("INSERT INTO audit_log (at, actor, action, object_type) "
                          "VALUES (CURRENT_TIMESTAMP, 'seed', 'seed', 'household')"))
    with session_scope(fresh_engine) as session:
        result = audit.verify(session)
        assert result.ok and result.unsealed == 1
    _write(fresh_engine, 1)
    assert _seqs(fresh_engine) == [1, 2, 3]
    with session_scope(fresh_engine) as session:
        assert session.execute(select(func.count()).select_from(AuditLog).where(AuditLog.seq.is_(None))).scalar() == 0
        assert audit.verify(session).ok


def test_rows_written_through_the_bulk_path_are_sealed_at_commit(fresh_engine):
    import datetime as dt

    import polars as pl

    from aidgraph.core.storage.bulk import insert_frame

    frame = pl.DataFrame({"at": [dt.datetime(2026, 1, 1, 8, 0, 0, 123456)] * 3, "actor": ["monitor"] * 3,
                          "action": ["raise_alert"] * 3, "object_type": ["alert"] * 3, "object_id": ["1", "2", "3"],
                          "region_code": ["440106"] * 3, "detail": ['{"level": "RED"}'] * 3})
    with session_scope(fresh_engine) as session:
        insert_frame(session, AuditLog.__tablename__, frame)
    assert _seqs(fresh_engine) == [1, 2, 3]
    with session_scope(fresh_engine) as session:
        assert audit.verify(session).ok


def test_the_disclosure_writer_appends_sealed_rows_between_other_writers(fresh_engine):
    """The disclosure writer inserts its rows already sealed (audit.append_sealed): interleaved with other
    committing writers and after rows a raw path left unsealed, every row gets its own position in one chain
    (on PostgreSQL a writer whose rows are not yet committed is chained after those committed before it, as
    between any two writers)."""
    from aidgraph.core.graph import privacy

    with fresh_engine.begin() as conn:  # left unsealed by a raw path: sealed before the writer's rows
        conn.execute(text("INSERT INTO audit_log (at, actor, action, object_type) "
                          "VALUES (CURRENT_TIMESTAMP, 'seed', 'seed', 'household')"))
    url = fresh_engine.url.render_as_string(hide_password=False)

    async def go() -> None:
        engine = make_async_engine(url)
        writer = privacy.DisclosureWriter(async_session_factory(engine))
        rows = [[{"actor": f"u{k}", "action": "read_sensitive", "object_type": "person", "object_id": str(i),
                  "region_code": "440106", "remote_addr": "127.0.0.1",
                  "detail": {"fields": ["idNumber"], "operation": "HouseholdList", "note": "户主"} if k % 2 else None}
                 for i in range(k % 3 + 1)]
                for k in range(12)]
        other = threading.Thread(target=_write, args=(fresh_engine, 4, "other"))
        other.start()
        await asyncio.gather(*(writer.write(r) for r in rows))
        other.join()
        await engine.dispose()

    asyncio.run(go())
    expected = 1 + sum(k % 3 + 1 for k in range(12)) + 4 * 2
    with fresh_engine.connect() as conn:
        seqs = dict(conn.execute(select(AuditLog.actor, func.min(AuditLog.seq)).group_by(AuditLog.actor)).all())
    assert sorted(_seqs(fresh_engine)) == list(range(1, expected + 1))
    assert seqs["seed"] == 1  # the row left unsealed comes first
    with session_scope(fresh_engine) as session:
        result = audit.verify(session)
        assert result.ok and result.checked == expected and result.unsealed == 0
        assert session.get(AuditChain, "audit").seq == expected


def test_rows_sealed_as_written_take_their_place_in_the_chain_after_the_unsealed_ones(fresh_engine):
    """append_sealed_frame (the monitoring run's alerts): rows written unsealed before it in the transaction keep
    the earlier positions, its rows are sealed as they are written (nothing is left to seal at commit, nothing
    updated), a later row follows them, and verify finds every hash the one seal() would have given."""
    import datetime as dt

    import polars as pl

    _write(fresh_engine, 1)
    at = dt.datetime(2026, 3, 4, 5, 6, 7, 891011)
    frame = pl.DataFrame({"at": [at, at], "actor": ["monitor", "monitor"], "action": ["raise_alert"] * 2,
                          "object_type": ["alert", "alert"], "object_id": ["7", "8"],
                          "region_code": ["440106001001", None], "remote_addr": [None, "10.0.0.1"],
                          "detail": ['{"month":"2026-02","level":"RED","score":45.5,"indicators":["a","b"]}',
                                     '{"名":"张三","n":null}']},
                         schema_overrides={"at": pl.Datetime("us"), "remote_addr": pl.Utf8})
    with session_scope(fresh_engine) as session:
        audit.record(session, SystemActor(), "create", "household", 1, "4401", {"before": True})
        session.flush()
        assert audit.append_sealed_frame(session, frame) == 2
        assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.seq.is_(None))) == 0
        audit.record(session, SystemActor(), "create", "household", 2, "4401", {"after": True})
    with session_scope(fresh_engine) as session:
        rows = session.execute(select(AuditLog.seq, AuditLog.object_id, AuditLog.detail).order_by(AuditLog.seq)).all()
        result = audit.verify(session)
    assert [(r.seq, r.object_id) for r in rows[2:]] == [(3, "1"), (4, "7"), (5, "8"), (6, "2")]
    assert rows[4].detail == {"名": "张三", "n": None}
    assert result.ok and result.checked == 6 and result.unsealed == 0
    with session_scope(fresh_engine) as session:
        assert audit.append_sealed_frame(session, frame.clear()) == 0


def test_the_hash_computed_from_a_rows_body_is_the_chains_canonical_hash():
    """row_hash (and append_sealed_frame, which hashes bodies computed beforehand, frame_bodies) must give what the
    canonical form gives: sha256 of the previous hash, a newline and json.dumps([position, time, who, what, where,
    detail]); here the frozen copy migration 0010 sealed the first rows with. Positions of any width, details as
    text or dict, non-ASCII text, missing values."""
    import datetime as dt
    import importlib
    from types import SimpleNamespace

    import polars as pl

    frozen = importlib.import_module("aidgraph.core.storage.migrations.versions.0010_personal_data")._row_hash
    at = dt.datetime(2026, 3, 4, 5, 6, 7, 891011)
    rows = [SimpleNamespace(at=at, actor="monitor", action="raise_alert", object_type="alert", object_id="7",
                            region_code="440106001001", remote_addr=None,
                            detail='{"month":"2026-02","level":"RED","score":45.5,"indicators":["a","b"]}'),
            SimpleNamespace(at=None, actor="张三", action="read", object_type="person", object_id=None,
                            region_code=None, remote_addr="10.0.0.1", detail={"名": "张三", "n": None, "a": [1.5, 2]}),
            SimpleNamespace(at=at, actor="x", action="y", object_type="z", object_id="", region_code="",
                            remote_addr="", detail=None)]
    for seq in (1, 9, 10, 12345678901234):
        for row in rows:
            assert audit.row_hash("p" * 64, seq, row) == frozen("p" * 64, seq, row)
    frame = pl.DataFrame([{k: getattr(r, k) for k in audit.SEALED_FRAME_COLUMNS} for r in rows[:1] * 3],
                         schema_overrides={"at": pl.Datetime("us"), "remote_addr": pl.Utf8})
    bodies = audit.frame_bodies(frame)
    assert [h for _, _, h in audit._chain(41, "g" * 64, bodies)] == \
        [h for _, _, h in audit._links(41, "g" * 64, rows[:1] * 3)]
    assert audit._links(41, "g" * 64, rows[:1]).__next__()[2] == frozen("g" * 64, 42, rows[0])


def test_frame_bodies_are_each_rows_canonical_body():
    """frame_bodies encodes each distinct value of a column once and joins the pieces: every row's body must still
    be exactly row_body's, whatever repeats or differs: missing times and values, a column missing in every row,
    text needing JSON escapes, non-ASCII text, details as text with keys out of order, nested, or null."""
    import datetime as dt
    from types import SimpleNamespace

    import polars as pl

    at = dt.datetime(2026, 3, 4, 5, 6, 7, 891011)
    texts = ["440106001001", "", "back\\slash", 'quote " and \\ backslash', "tab\tnew\nline \x01",
             "unit\x1fseparator", "张三", "7"]
    details = ['{"month":"2026-02","level":"RED","score":45.5,"indicators":["a","b"]}',
               '{"b":{"z":1,"a":[1.0,null,"é"]},"a":true}', '{"score":45.0}', None]
    rows = [{"at": None if i % 7 == 3 else at + dt.timedelta(microseconds=i % 3), "actor": texts[i % 7],
             "action": "raise_alert", "object_type": "alert", "object_id": None if i % 4 == 0 else str(i),
             "region_code": texts[(i * 2) % 8], "remote_addr": None, "detail": details[i % 4]} for i in range(40)]
    frame = pl.DataFrame(rows, schema={"at": pl.Datetime("us"), "actor": pl.Utf8, "action": pl.Utf8,
                                       "object_type": pl.Utf8, "object_id": pl.Utf8, "region_code": pl.Utf8,
                                       "remote_addr": pl.Utf8, "detail": pl.Utf8})
    assert audit.frame_bodies(frame) == [audit.row_body(SimpleNamespace(**row)) for row in rows]
    assert audit.frame_bodies(frame.clear()) == []
