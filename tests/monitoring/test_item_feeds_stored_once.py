"""The income and asset feeds' rows are stored once, as economic items carrying the row's hash, file and line
(migration 0027, ``ITEM_FEEDS`` in aidgraph.core.monitoring.feeds), on SQLite and PostgreSQL: nothing about a
row is lost, re-importing stores nothing twice (also rows imported before the revision), the downgrade gives
the rows their feed records back, and no column holds an ID number or an unkeyed hash of a row."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from aidgraph.core.monitoring.feeds import FEEDS, ITEM_FEEDS, import_feed, read_feed, validate
from aidgraph.core.policy.host import build_plugin_manager
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.migrate import current_revision, downgrade, head_revision, upgrade
from aidgraph.core.storage.models import Base, EconomicItem, FeedRecord
from aidgraph.core.storage.partitions import comparison_filter
from tests.conftest import make_database
from tests.monitoring.conftest import seed_world
from tests.monitoring.test_feeds import write_csv

INCOME = FEEDS["income"].names
ASSETS = FEEDS["assets"].names


def _income_rows(people, months=(1, 2, 3)):
    return [[p.id_number, f"2024-{m:02d}", "WAGE" if i % 2 else "PENSION", f"{1000 + 10 * i + m}.5", "税务"]
            for i, p in enumerate(people) for m in months]


def _items(engine, source_file: str) -> list[tuple]:
    with Session(engine) as s:
        return s.execute(select(EconomicItem.person_id, EconomicItem.kind, EconomicItem.amount,
                                EconomicItem.period_start, EconomicItem.period_end, EconomicItem.source,
                                EconomicItem.row_hash, EconomicItem.line_number)
                         .where(EconomicItem.source_file == source_file).order_by(EconomicItem.line_number)).all()


def _records(engine, *kinds: str) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(FeedRecord).where(FeedRecord.kind.in_(kinds)))


def test_income_and_asset_rows_are_economic_items_with_their_provenance_and_no_feed_records(sync_engine, tmp_path):
    world = seed_world(sync_engine, households=3, start=60)
    people = world.persons[:4]
    rows = _income_rows(people)
    path = write_csv(tmp_path / "i.csv", INCOME, rows)
    summary = import_feed(sync_engine, "income", path)
    assert (summary.read, summary.stored, summary.economic_items, summary.rejected) == (12, 12, 12, 0)
    items = _items(sync_engine, "i.csv")
    by_id = {p.id_number: p.id for p in people}
    assert [(i.person_id, i.kind, float(i.amount), i.period_start, i.source, i.line_number) for i in items] == [
        (by_id[r[0]], r[2], float(r[3]), dt.date(2024, int(r[1][5:]), 1), r[4], line)
        for line, r in enumerate(rows, start=2)]
    assert items[0].period_end == dt.date(2024, 1, 31)
    # The hashes are the ones the import computes for the rows: month, mark, keyed digest.
    hashes = validate(read_feed(path, FEEDS["income"]), FEEDS["income"]).good.sort("line")["row_hash"].to_list()
    assert [i.row_hash for i in items] == hashes and {h[:7] for h in hashes} == {"202401k", "202402k", "202403k"}
    assert _records(sync_engine, "income", "assets") == 0

    assets = write_csv(tmp_path / "a.csv", ASSETS, [[people[0].id_number, "存款", "52000", "2024-03-31", "银行"]])
    assert import_feed(sync_engine, "assets", assets).economic_items == 1
    [deposit] = _items(sync_engine, "a.csv")
    assert (deposit.kind, float(deposit.amount), deposit.period_start, deposit.period_end, deposit.line_number) == (
        "DEPOSIT", 52000.0, dt.date(2024, 3, 31), dt.date(2024, 3, 31), 2)
    assert _records(sync_engine, "income", "assets") == 0

    # The same rows again, reversed and as JSON lines: recognised by their hashes, nothing stored twice.
    lines = tmp_path / "i.jsonl"
    lines.write_text("".join(json.dumps(dict(zip(INCOME, r)), ensure_ascii=False) + "\n" for r in reversed(rows)),
                     encoding="utf-8")
    again = import_feed(sync_engine, "income", lines)
    assert (again.stored, again.already_stored, again.economic_items) == (0, 12, 0)
    assert _items(sync_engine, "i.jsonl") == []


def test_no_economic_item_column_holds_an_id_number_or_an_unkeyed_hash_of_a_fed_row(sync_engine, tmp_path):
    people = seed_world(sync_engine, households=2, start=64).persons
    rows = _income_rows(people, months=(4,))
    import_feed(sync_engine, "income", write_csv(tmp_path / "i.csv", INCOME, rows))
    with sync_engine.connect() as conn:
        raw = "\n".join(" ".join(str(v) for v in row) for row in conn.execute(
            text("SELECT * FROM economic_item WHERE source_file = 'i.csv'")))
    assert raw.count("202404k") == len(rows)
    for row in rows:
        # What the import hashes: the kind and the normalised values (amounts in fen), joined.
        normalised = ["income", row[0], "2024-04-01", row[2], str(round(float(row[3]) * 100)), row[4]]
        digest = hashlib.sha256("\x1f".join(normalised).encode()).hexdigest()
        assert digest[:16] not in raw and digest[-16:] not in raw
        assert row[0] not in raw and hashlib.sha256(row[0].encode()).hexdigest()[:16] not in raw


def test_two_imports_of_one_income_file_at_once_write_each_item_once(sync_engine, tmp_path):
    """The unique index on the fed items' hashes and the imports' lock: racing imports store each row once."""
    import threading

    people = seed_world(sync_engine, households=2, start=68).persons
    rows = _income_rows(people, months=range(1, 13))
    path = write_csv(tmp_path / "race.csv", INCOME, rows)
    summaries = []
    threads = [threading.Thread(target=lambda: summaries.append(import_feed(sync_engine, "income", path,
                                                                            batch_size=7))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(s.stored + s.already_stored for s in summaries) == [len(rows), len(rows)]
    assert sum(s.stored for s in summaries) == len(rows) == len(_items(sync_engine, "race.csv"))


def test_the_unique_index_refuses_a_second_item_for_one_feed_row(sync_engine, tmp_path):
    people = seed_world(sync_engine, households=1, start=72).persons
    import_feed(sync_engine, "income", write_csv(tmp_path / "one.csv", INCOME, _income_rows(people[:1], (5,))))
    copy = ("INSERT INTO economic_item (household_id, person_id, kind, source, amount, period_start, period_end, "
            "recorded_at, row_hash) SELECT household_id, person_id, kind, source, amount, period_start, period_end, "
            "recorded_at, row_hash FROM economic_item WHERE source_file = 'one.csv'")
    with pytest.raises(Exception, match="(?i)unique"):
        with sync_engine.begin() as conn:
            conn.execute(text(copy))
    # Items without a hash (entered by hand, seeded) are not in the index: any number of equal ones.
    with sync_engine.begin() as conn:
        conn.execute(text(copy.replace("row_hash FROM", "NULL FROM")))
        conn.execute(text(copy.replace("row_hash FROM", "NULL FROM")))


def test_indicator_context_refuses_to_read_an_item_feed_or_an_unknown_kind_as_feed_records(sync_engine):
    from aidgraph.core.monitoring.indicators import IndicatorContext
    from aidgraph.core.policy.engine import PolicyEngine
    from aidgraph.core.storage.config import Settings

    policy = PolicyEngine(Settings())
    with Session(sync_engine) as s:
        ctx = IndicatorContext(s, "44", "2024-03", policy.province("44").params, policy.catalogue().category_programs())
        for kind in sorted(ITEM_FEEDS):
            with pytest.raises(ValueError, match="economic items"):
                ctx.feed(kind)
        assert ctx.feed("hospitalisation").height == 0
        with pytest.raises(ValueError, match="unknown feed kind 'hospitalization'; known kinds: "):
            ctx.feed("hospitalization")  # misspelt: no records of it would ever be stored


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_revision_0027_round_trip_keeps_every_fed_row_found(kind, request, tmp_path_factory, tmp_path):
    """Down to 0026 the fed items get their feed records back (the older import finds them there); up again
    those records are the rows 'imported before 0027', which the import still recognises; new months go to the
    items alone."""
    engine = make_sync_engine(make_database(kind, request, tmp_path_factory))
    people = seed_world(engine, "44", households=2, start=76).persons
    rows = _income_rows(people, months=(1, 2))
    path = write_csv(tmp_path / "i.csv", INCOME, rows)
    assets = write_csv(tmp_path / "a.csv", ASSETS, [[people[1].id_number, "车辆", "30000.5", "2024-02-10", "车管所"]])
    assert import_feed(engine, "income", path).stored == len(rows)
    assert import_feed(engine, "assets", assets).stored == 1
    with Session(engine) as s:
        fed = dict(s.execute(select(EconomicItem.row_hash, EconomicItem.person_id)
                             .where(EconomicItem.row_hash.is_not(None))).all())
    assert len(fed) == len(rows) + 1

    downgrade(engine, "0026")
    with engine.connect() as conn:
        columns = {c[1] for c in conn.execute(text("PRAGMA table_info(economic_item)"))} if kind == "sqlite" else \
            set(conn.execute(text("SELECT column_name FROM information_schema.columns "
                                  "WHERE table_name = 'economic_item'")).scalars())
        assert "row_hash" not in columns and "line_number" not in columns
        records = conn.execute(text("SELECT kind, person_id, event_date, payload, row_hash, source_file, line_number "
                                    "FROM feed_record ORDER BY line_number, kind")).all()
    assert {r.row_hash: r.person_id for r in records} == fed
    assert sorted((r.kind, r.source_file, r.line_number) for r in records) == sorted(
        [("income", "i.csv", line) for line in range(2, len(rows) + 2)] + [("assets", "a.csv", 2)])
    vehicle = next(r for r in records if r.kind == "assets")
    payload = vehicle.payload if isinstance(vehicle.payload, dict) else json.loads(vehicle.payload)
    assert payload == {"kind": "VEHICLE", "amount": 30000.5, "as_of": "2024-02-10", "source": "车管所"}
    assert str(vehicle.event_date)[:10] == "2024-02-10"

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    again = import_feed(engine, "income", path)
    assert (again.stored, again.already_stored) == (0, len(rows))  # found among the feed records of before
    assert import_feed(engine, "assets", assets).already_stored == 1
    march = write_csv(tmp_path / "march.csv", INCOME, _income_rows(people, months=(3,)))
    assert import_feed(engine, "income", march).stored == len(people)
    assert _records(engine, "income") == len(rows)  # the legacy records only; March went to the items alone
    assert len(_items(engine, "march.csv")) == len(people)
    engine.dispose()


def test_a_file_half_stored_before_stores_the_other_half_and_says_so(sync_engine, tmp_path):
    """SQLite finds the stored rows through the unique index while inserting, PostgreSQL by a lookup first: the
    same counts, the same items, and the audit row counts only what was stored."""
    from aidgraph.core.storage.models import AuditLog

    people = seed_world(sync_engine, households=2, start=80).persons
    import_feed(sync_engine, "income", write_csv(tmp_path / "early.csv", INCOME, _income_rows(people, (6, 7))))
    summary = import_feed(sync_engine, "income", write_csv(tmp_path / "all.csv", INCOME,
                                                           _income_rows(people, (6, 7, 8))))
    assert (summary.stored, summary.already_stored, summary.economic_items) == (len(people), 2 * len(people),
                                                                                len(people))
    assert sorted(i.period_start for i in _items(sync_engine, "all.csv")) == [dt.date(2024, 8, 1)] * len(people)
    with Session(sync_engine) as s:
        details = s.scalars(select(AuditLog.detail).where(AuditLog.action == "import_feed")
                            .order_by(AuditLog.id.desc()).limit(1)).one()
    details = details if isinstance(details, dict) else json.loads(details)
    assert (details["file"], details["rows"]) == ("all.csv", len(people))


def _indexes(conn) -> set[str]:
    return {row[1] for row in conn.execute(text("PRAGMA index_list(economic_item)"))}


def test_revision_0029_keys_sqlite_fed_items_by_person_and_round_trips(request, tmp_path_factory, tmp_path):
    """SQLite's fed items are unique by (month, person, hash) from revision 0029 (FED_ITEM_KEYS): re-importing
    stores nothing twice before and after a round trip through 0028; an item whose person was deleted (its
    person_id set null, as the foreign key does) leaves the index, so the row can be stored for the person the
    ID number belongs to now, and the downgrade takes the hash off that orphan so the old index holds the rest.
    The models-match-migrations comparison notices the index missing."""
    engine = make_sync_engine(make_database("sqlite", request, tmp_path_factory))
    people = seed_world(engine, "44", households=2, start=84).persons
    rows = _income_rows(people, months=(1, 2))
    path = write_csv(tmp_path / "i.csv", INCOME, rows)
    assert import_feed(engine, "income", path).stored == len(rows)
    with engine.connect() as conn:
        assert {"uq_economic_item_person_row_hash"} <= _indexes(conn)
        assert "uq_economic_item_row_hash" not in _indexes(conn)
    # The first person's January item loses its person, as when a person is deleted: that row is then stored
    # again for the person who has its ID number now, and no other row is.
    with engine.begin() as conn:
        orphan, orphan_hash = conn.execute(text(
            "SELECT id, row_hash FROM economic_item WHERE source_file = 'i.csv' AND line_number = 2")).one()
        conn.execute(text("UPDATE economic_item SET person_id = NULL WHERE id = :id"), {"id": orphan})
    again = import_feed(engine, "income", path)
    assert (again.stored, again.already_stored) == (1, len(rows) - 1)

    downgrade(engine, "0028")
    with engine.connect() as conn:
        assert "uq_economic_item_row_hash" in _indexes(conn)
        assert "uq_economic_item_person_row_hash" not in _indexes(conn)
        kept = dict(conn.execute(text("SELECT id, row_hash FROM economic_item WHERE source_file = 'i.csv'")).all())
    assert len(kept) == len(rows) + 1 and kept[orphan] is None  # every item kept; the orphan's hash taken off
    assert sorted(h for h in kept.values() if h is not None) == sorted(set(kept.values()) - {None})
    assert orphan_hash in kept.values()  # the item stored for the person now holds the row's hash

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert import_feed(engine, "income", path).already_stored == len(rows)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX uq_economic_item_person_row_hash"))
    build_plugin_manager()  # plugins' tables are models too (as in tests/test_storage.py)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": comparison_filter("sqlite")})
        diff = compare_metadata(context, Base.metadata)
    assert [(d[0], d[1].name) for d in diff] == [("add_index", "uq_economic_item_person_row_hash")]
    engine.dispose()
