"""Department feed imports (aidgraph.core.monitoring.feeds, ``aidgraph import``) on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import json
import threading
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from aidgraph.core.monitoring.feeds import (
    FEEDS,
    FeedFileError,
    _id_reasons,
    _id_valid,
    _read_quoted_csv,
    _read_unquoted_csv,
    import_feed,
)
from aidgraph.core.graph.idnumber import InvalidIdNumber, make, parse
from aidgraph.core.storage.models import AuditLog, EconomicItem, FeedRecord, Outbox, Person

HOSP_HEADER = FEEDS["hospitalisation"].names


def write_csv(path, header, rows, encoding="utf-8"):
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_rejected(path):
    target = path.with_name(path.name + ".rejected.csv")
    with target.open(encoding="utf-8") as f:
        return {int(r["line"]): r["reason"] for r in csv.DictReader(f)}


def count(engine, model, *where):
    with Session(engine) as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_hospitalisation_csv_keeps_good_rows_rejects_bad_with_line_and_reason(sync_engine, world, tmp_path):
    p0, p1, p2 = world.person(0), world.person(1), world.person(2)
    unknown = make("440106", dt.date(1980, 5, 5), 123)
    future = (dt.date.today() + dt.timedelta(days=40)).isoformat()
    rows = [
        [p0.id_number, p0.name, "2024-03-02", "2024-03-10", "人民医院", "肺炎", "12000", "10000", "7000.5"],   # 2 ok
        [p1.id_number, p1.name, "2024-02-30", "", "人民医院", "", "100", "100", "50"],                         # 3 date
        [p2.id_number[:17] + ("0" if p2.id_number[17] != "0" else "1"), "", "2024-03-01", "", "医院", "", "1", "1", "1"],  # 4
        [unknown, "", "2024-03-01", "", "医院", "", "1", "1", "1"],                                           # 5 unknown
        [p1.id_number, p1.name, future, "", "医院", "", "1", "1", "1"],                                       # 6 future
        [p1.id_number, p1.name, "2024-03-05", "2024-03-01", "医院", "", "1", "1", "1"],                      # 7 order
        [p1.id_number, p1.name, "2024-03-05", "", "医院", "", "-5", "1", "1"],                               # 8 amount
        [p0.id_number, p0.name, "2024-03-02", "2024-03-10", "人民医院", "肺炎", "12000.00", "10000", "7000.50"],  # 9 dup
        [p1.id_number, "别人", "2024-03-05", "", "医院", "", "10", "1", "1"],                                 # 10 name
        [p1.id_number, p1.name, "2024-03-05", "", "医院"],                                                    # 11 ragged
        [p1.id_number, p1.name, "2024-04-01", "", "中心医院", "骨折", "3000", "2500", "2000"],                  # 12 ok
        # 13: an ID number in the amount's column, more fen than a 64-bit integer holds (it stopped the whole file)
        [p1.id_number, p1.name, "2024-03-06", "", "医院", "", "440106198005050000", "1", "1"],
    ]
    path = write_csv(tmp_path / "hosp.csv", HOSP_HEADER, rows)
    summary = import_feed(sync_engine, "hospitalisation", path)
    assert (summary.read, summary.stored, summary.already_stored, summary.rejected) == (12, 2, 0, 10)
    reasons = read_rejected(path)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 13]
    assert "admission_date" in reasons[3] and "not a real date" in reasons[3]
    assert reasons[4].startswith("id_number:") and "check character" in reasons[4]
    assert "no person" in reasons[5]
    assert "future" in reasons[6]
    assert "discharge_date" in reasons[7]
    assert reasons[8].startswith("total_cost:")
    assert reasons[9] == "duplicate of line 2"
    assert reasons[10].startswith("name:")
    assert "expected 9 fields" in reasons[11]
    assert reasons[13] == "total_cost: 440106198005050000 is implausibly large"
    with Session(sync_engine) as conn:
        stored = conn.execute(select(FeedRecord).where(FeedRecord.source_file == "hosp.csv")
                              .order_by(FeedRecord.line_number)).scalars().all()
        assert [r.line_number for r in stored] == [2, 12]
        assert stored[0].payload["insurance_paid"] == 7000.5 and stored[0].event_date == dt.date(2024, 3, 2)
        assert "id_number" not in stored[0].payload
        person = conn.get(Person, p0.id)
        assert person.hospitalised is True and person.version == 2
        assert conn.execute(select(func.count()).select_from(Outbox).where(
            Outbox.entity == "PERSON", Outbox.entity_id == p0.id, Outbox.version == 2)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "import_feed")).scalar_one() >= 1

    again = import_feed(sync_engine, "hospitalisation", path)
    assert (again.stored, again.already_stored, again.rejected) == (0, 2, 10)
    assert count(sync_engine, FeedRecord, FeedRecord.source_file == "hosp.csv") == 2
    with Session(sync_engine) as conn:
        assert conn.get(Person, p0.id).version == 2  # nothing changed the second time


def test_gbk_file_is_detected_and_wrong_encoding_is_a_file_error(sync_engine, world, tmp_path):
    p = world.person(3)
    header = FEEDS["disability"].names
    path = write_csv(tmp_path / "残联.csv", header, [[p.id_number, p.name, "肢体", "2", "2024-05-06"]],
                     encoding="gbk")
    summary = import_feed(sync_engine, "disability", path)
    assert summary.encoding == "gbk" and summary.stored == 1 and summary.rejected == 0
    with Session(sync_engine) as conn:
        person = conn.get(Person, p.id)
    assert (person.disability_category, person.disability_level) == ("PHYSICAL", 2)
    with pytest.raises(FeedFileError, match="not valid utf-8 at line 2"):
        import_feed(sync_engine, "disability", path, encoding="utf-8")


def test_wrong_header_names_missing_and_unknown_columns(sync_engine, tmp_path):
    path = write_csv(tmp_path / "u.csv", ["id_number", "name", "registered", "status", "extra"], [])
    with pytest.raises(FeedFileError) as info:
        import_feed(sync_engine, "unemployment", path)
    assert "missing columns: registered_date" in str(info.value)
    assert "unknown columns: registered, extra" in str(info.value)
    with pytest.raises(FeedFileError, match="unknown feed kind"):
        import_feed(sync_engine, "weather", path)


def test_income_jsonl_writes_economic_items_and_rejects_future_month(sync_engine, world, tmp_path):
    p = world.person(4)
    this_month = dt.date.today().replace(day=1)
    next_month = (this_month + dt.timedelta(days=32)).strftime("%Y-%m")
    lines = [
        {"id_number": p.id_number, "period": "2024-01", "kind": "WAGE", "amount": 3000, "source": "税务"},
        {"id_number": p.id_number, "period": "2024-02", "kind": "wage", "amount": "2800.5", "source": "税务"},
        {"id_number": p.id_number, "period": next_month, "kind": "WAGE", "amount": 1, "source": "税务"},
        {"id_number": p.id_number, "period": "2024-13", "kind": "WAGE", "amount": 1, "source": "税务"},
        {"id_number": p.id_number, "period": "2024-03", "kind": "DEPOSIT", "amount": 1, "source": "税务"},
        {"id_number": p.id_number, "period": "2024-03", "kind": "WAGE", "source": "税务"},
    ]
    path = tmp_path / "income.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{not json\n", encoding="utf-8")
    summary = import_feed(sync_engine, "income", path)
    assert summary.format == "jsonl"
    assert (summary.read, summary.stored, summary.rejected, summary.economic_items) == (7, 2, 5, 2)
    reasons = read_rejected(path)
    assert "future" in reasons[3] and "not a real month" in reasons[4]
    assert reasons[5].startswith("kind: 'DEPOSIT' is not one of")
    assert "missing keys: amount" in reasons[6] and "not valid JSON" in reasons[7]
    with Session(sync_engine) as conn:
        items = conn.execute(select(EconomicItem).where(EconomicItem.person_id == p.id)
                             .order_by(EconomicItem.period_start)).scalars().all()
    assert [(i.kind, float(i.amount), i.period_start, i.period_end) for i in items] == [
        ("WAGE", 3000.0, dt.date(2024, 1, 1), dt.date(2024, 1, 31)),
        ("WAGE", 2800.5, dt.date(2024, 2, 1), dt.date(2024, 2, 29)),
    ]
    assert all(i.household_id == p.household_id for i in items)
    assert import_feed(sync_engine, "income", path).economic_items == 0


def test_person_effects_disease_unemployment_death_and_province_filter(sync_engine, world, tmp_path):
    p5, p6, p7 = world.person(5), world.person(6), world.person(7)
    disease = write_csv(tmp_path / "d.csv", FEEDS["disease"].names, [
        [p5.id_number, "", "MAJOR", "恶性肿瘤", "2024-04-01"], [p6.id_number, "", "慢性病", "糖尿病", "2024-04-02"]])
    assert import_feed(sync_engine, "disease", disease).persons_updated == 2
    unemployment = write_csv(tmp_path / "u.csv", FEEDS["unemployment"].names, [
        [p5.id_number, "", "2024-04-01", "REGISTERED"], [p6.id_number, "", "2024-03-01", "REGISTERED"],
        [p6.id_number, "", "2024-04-01", "REEMPLOYED"]])
    import_feed(sync_engine, "unemployment", unemployment)
    events = write_csv(tmp_path / "e.csv", FEEDS["household_event"].names, [
        [p7.id_number, "死亡", "2024-04-03", ""], [p7.id_number, "DEATH", "2024-04-09", ""]])
    import_feed(sync_engine, "household_event", events)
    with Session(sync_engine) as conn:
        a, b, c = (conn.get(Person, x.id) for x in (p5, p6, p7))
    assert a.major_disease and not a.chronic_disease and a.employment_status == "UNEMPLOYED"
    assert b.chronic_disease and b.employment_status == "EMPLOYED"
    assert c.death_date == dt.date(2024, 4, 3)

    outside = write_csv(tmp_path / "o.csv", FEEDS["disease"].names, [[p5.id_number, "", "CHRONIC", "x", "2024-05-01"]])
    summary = import_feed(sync_engine, "disease", outside, province="62")
    assert summary.rejected == 1 and "outside province 62" in read_rejected(outside)[2]


def test_college_admissions_record_higher_education_stages(sync_engine, world, tmp_path):
    """A college admission's 高职 (the contract's VOCATIONAL) is a higher vocational college, one of GS-2024's
    本专科生 (含预科生、高职生、第二学士学位学生), not secondary vocational school, whose grants are lower."""
    people = [world.person(i) for i in range(9, 14)]
    stages = ["VOCATIONAL", "高职", "预科", "第二学士学位", "本科"]
    admissions = write_csv(tmp_path / "a.csv", FEEDS["college_admission"].names, [
        [p.id_number, p.name, "2024", "兰州职业技术学院", stage, "4000"] for p, stage in zip(people, stages)])
    assert import_feed(sync_engine, "college_admission", admissions).rejected == 0
    with Session(sync_engine) as conn:
        recorded = [conn.get(Person, p.id).student_stage for p in people]
    assert recorded == ["JUNIOR_COLLEGE", "JUNIOR_COLLEGE", "PREPARATORY", "SECOND_DEGREE", "UNDERGRADUATE"]


def test_cli_prints_summary_and_exits_nonzero_only_for_unreadable_files(db_url, world, tmp_path, monkeypatch):
    from aidgraph.core.app.cli import app

    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", db_url)
    p = world.person(8)
    good = write_csv(tmp_path / "c.csv", FEEDS["college_admission"].names, [
        [p.id_number, p.name, "2023", "中山大学", "UNDERGRADUATE", "5000"], ["bad", "", "2023", "x", "X", "1"]])
    result = CliRunner().invoke(app, ["import", "college_admission", str(good)])
    assert result.exit_code == 0, result.output
    assert "rows read 2, stored 1, skipped as already stored 0, rejected 1" in " ".join(result.output.split())
    missing = CliRunner().invoke(app, ["import", "college_admission", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "cannot be read" in " ".join(missing.output.split())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.builds(lambda a, d, s: make(a, d, s), st.sampled_from(["440106", "620102", "350203", "110101"]),
              st.dates(dt.date(1880, 1, 1), dt.date(2024, 12, 31)), st.integers(0, 999)),
    st.text(alphabet="0123456789Xx -", min_size=0, max_size=20),
    st.builds(lambda a, d, s, i, c: (lambda n: n[:i] + c + n[i + 1:])(make(a, d, s)),
              st.sampled_from(["440106", "620102"]), st.dates(dt.date(1900, 1, 1), dt.date(2030, 12, 31)),
              st.integers(0, 999), st.integers(0, 17), st.sampled_from("0123456789X")),
), min_size=1, max_size=30))
def test_vectorised_id_check_agrees_with_core_idnumber(values):
    today = dt.date(2025, 1, 1)
    result = _id_reasons(pl.Series(values, dtype=pl.Utf8), today)
    for raw, norm, reason in result.iter_rows():
        try:
            expected = parse(raw, today=today).number
        except InvalidIdNumber:
            expected = None
        assert norm == expected, raw
        assert (reason is None) == (expected is not None), raw
    # The bulk check alone says the same (parse has the last word only over the numbers it refuses).
    bulk = _id_valid(pl.Series(values, dtype=pl.Utf8), today).to_list()
    assert bulk == [_parses(v, today) for v in values]


def _parses(value: str, today: dt.date) -> bool:
    try:
        parse(value, today=today)
    except InvalidIdNumber:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.permutations(FEEDS["unemployment"].names),
       st.lists(st.text(alphabet="a1,国 \t-", max_size=14), max_size=10), st.sampled_from(["\n", "\r\n"]),
       st.booleans())
def test_unquoted_reader_agrees_with_the_csv_module(header, lines, newline, final_newline):
    """Files without quotes are split in bulk; rows, line numbers and ragged-row reasons are the csv module's."""
    schema = FEEDS["unemployment"]
    text = newline.join([",".join(header), *lines]) + (newline if final_newline else "")
    fast = _read_unquoted_csv(text, schema, Path("u.csv"), "utf-8")
    slow = _read_quoted_csv(text, schema, Path("u.csv"), "utf-8")
    assert fast.frame.equals(slow.frame)
    assert fast.early_rejects == slow.early_rejects


def test_two_imports_of_one_file_at_once_store_it_once(sync_engine, world, tmp_path, sqlite_read_path):
    """Each batch takes the write lock before it looks for rows already stored: no row or effect twice."""
    people = [world.person(i) for i in (9, 10, 11)]
    years = (2022, 2023) if sqlite_read_path == "cursor" else (2020, 2021)  # the module's world: rows of its own
    lines = [{"id_number": p.id_number, "period": f"{year}-{month:02d}", "kind": "PENSION", "amount": 1000 + month,
              "source": "社保"} for p in people for year in years for month in range(1, 13)]
    path = tmp_path / "pensions.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    summaries = []

    def run():
        summaries.append(import_feed(sync_engine, "income", path, batch_size=5))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(s.stored + s.already_stored for s in summaries) == [len(lines), len(lines)]
    assert sum(s.stored for s in summaries) == len(lines)
    assert count(sync_engine, EconomicItem, EconomicItem.person_id.in_([p.id for p in people]),
                 EconomicItem.kind == "PENSION", EconomicItem.period_start >= dt.date(years[0], 1, 1),
                 EconomicItem.period_start <= dt.date(years[-1], 12, 1)) == len(lines)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_rows_imported_before_the_month_prefixed_hash_are_recognised_after_migration(kind, request,
                                                                                      tmp_path_factory, tmp_path,
                                                                                      monkeypatch):
    """Revision 0003 rewrites stored hashes (64-digit sha256) as event month + 58 digits: a file imported
    before it is still 'already stored' when imported again after it."""
    from aidgraph.core.storage.db import make_sync_engine
    from aidgraph.core.storage.migrate import current_revision, downgrade, head_revision, upgrade
    from tests.conftest import make_database
    from tests.monitoring.conftest import seed_world

    engine = make_sync_engine(make_database(kind, request, tmp_path_factory))
    people = seed_world(engine, "44", households=2, start=40).persons
    path = write_csv(tmp_path / "d.csv", FEEDS["disease"].names,
                     [[p.id_number, "", "CHRONIC", "高血压", f"2024-0{i + 1}-02"] for i, p in enumerate(people[:3])])
    import aidgraph.core.monitoring.feeds

    # What an import before revision 0003 stored: the full 64-digit sha256 of the same normalised row.
    monkeypatch.setattr(aidgraph.core.monitoring.feeds, "_row_hash_expr", lambda schema: aidgraph.core.monitoring.feeds._row_digest_expr(schema, 64))
    assert import_feed(engine, "disease", path).stored == 3
    monkeypatch.undo()
    with Session(engine) as s:
        assert {len(h) for h in s.scalars(select(FeedRecord.row_hash))} == {64}
    downgrade(engine, "0002")
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(FeedRecord)) == 3  # no row lost on the way down
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with Session(engine) as s:
        assert sorted(h[:6] for h in s.scalars(select(FeedRecord.row_hash))) == ["202401", "202402", "202403"]
    again = import_feed(engine, "disease", path)
    assert (again.stored, again.already_stored) == (0, 3)
    engine.dispose()


def test_person_lookup_reads_the_whole_index_or_searches_it_with_the_same_answer(sync_engine, world, monkeypatch):
    """A file naming a large share of the persons reads the whole ID-number index (WHOLE_INDEX_SHARE), a small
    one searches it, and one given every person read beforehand joins them: the same persons, households and
    regions every way, unknown numbers left out."""
    import aidgraph.core.monitoring.feeds as feeds
    from aidgraph.core.storage.db import session_scope

    numbers = [world.person(i).id_number for i in (0, 1, 2, 5, 7)] + [make("440106", dt.date(1970, 1, 2), 77)]
    answers = []
    for share in (0.0, 1e9):  # 0: always the whole index; 1e9: always a search
        monkeypatch.setattr(feeds, "WHOLE_INDEX_SHARE", share)
        with session_scope(sync_engine) as s:
            answers.append(feeds.lookup_persons(s, numbers + numbers[:2], dt.date.today()).sort("person_id"))
    # A file naming most persons: every person read beforehand (import_feed reads it while validating).
    directory = feeds.read_person_directory(sync_engine, dt.date.today())
    with session_scope(sync_engine) as s:
        answers.append(feeds.lookup_persons(s, numbers + numbers[:2], dt.date.today(), directory).sort("person_id"))
    assert answers[0].equals(answers[1]) and answers[0].equals(answers[2])
    nameless = feeds.read_person_directory(sync_engine, dt.date.today(), names=False)  # for a file without names
    assert nameless["person_name"].null_count() == nameless.height > 0
    assert nameless.drop("person_name").sort("person_id").equals(directory.drop("person_name").sort("person_id"))
    assert answers[0].columns == ["id_number", "person_id", "person_name", "household_id", "person_region"]
    assert answers[0]["person_id"].to_list() == sorted(world.person(i).id for i in (0, 1, 2, 5, 7))
    assert answers[0]["household_id"].to_list() == [p.household_id for p in sorted(
        (world.person(i) for i in (0, 1, 2, 5, 7)), key=lambda p: p.id)]
