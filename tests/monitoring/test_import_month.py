"""A month's files imported as one job (aidgraph.core.monitoring.feeds.import_feeds, ``aidgraph import-month``) must
store and reject exactly what importing each file alone stores and rejects, whether the persons are found in the
directory the job reads once or searched for file by file; a file that cannot be read stops the job before any
file is stored; the command takes the files named after their kinds and names any other file it refuses."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from aidgraph.core.app.cli import app
from aidgraph.core.app.commands.feeds import month_files
from aidgraph.core.graph.idnumber import make
from aidgraph.core.monitoring import feeds
from aidgraph.core.monitoring.feeds import FEEDS, FeedFileError, import_feed, import_feeds
from aidgraph.core.storage.models import EconomicItem, FeedRecord, Person
from tests.monitoring.conftest import seed_world
from tests.monitoring.test_feeds import read_rejected, write_csv

UNKNOWN = make("440106", dt.date(1980, 5, 5), 321)


def _month(folder, people):
    """Three files of September 2025 for persons a, b, c: every outcome a row can have, by line."""
    folder.mkdir()
    a, b, c = people[:3]
    hospital = ["省人民医院", "肺炎", "12000", "10000", "6000"]
    write_csv(folder / "hospitalisation.csv", FEEDS["hospitalisation"].names, [
        [a.id_number, a.name, "2025-09-03", "", *hospital],      # 2 stored
        [UNKNOWN, "张三", "2025-09-04", "", *hospital],           # 3 no person with this ID number
        [b.id_number, "王五六", "2025-09-05", "", *hospital],      # 4 name does not match
        [c.id_number, c.name, "2025-13-01", "", *hospital],      # 5 not a date
        [c.id_number, c.name, "2025-09-07", "2025-09-20", *hospital],  # 6 stored
    ])
    write_csv(folder / "disease.csv", FEEDS["disease"].names, [
        [b.id_number, b.name, "CHRONIC", "糖尿病", "2025-09-10"],  # 2 stored
        [b.id_number, b.name, "慢性病", "糖尿病", "2025-09-10"],    # 3 the same row again: a duplicate
    ])
    write_csv(folder / "income.csv", FEEDS["income"].names, [
        [a.id_number, "2025-09", "WAGE", "1000.5", "税务"],       # 2 stored
        [b.id_number, "2025-09", "WAGE", "-1", "税务"],           # 3 negative amount
        [UNKNOWN, "2025-09", "WAGE", "10", "税务"],                # 4 no person with this ID number
        [c.id_number, "2025-09", "PENSION", "300", "社保"],       # 5 stored
    ])
    return [(kind, folder / f"{kind}.csv") for kind in ("hospitalisation", "disease", "income")]


def _outcome(engine, files, people, summaries):
    """What the files left, with persons named by their place in ``people`` (so two sets of persons compare)."""
    place = {p.id: i for i, p in enumerate(people)}
    ids = list(place)
    with Session(engine) as s:
        records = sorted((r.kind, place[r.person_id], r.event_date, r.line_number, r.payload) for r in s.scalars(
            select(FeedRecord).where(FeedRecord.person_id.in_(ids))))
        items = sorted((place[i.person_id], i.kind, i.amount, i.period_start, i.source, i.line_number)
                       for i in s.scalars(select(EconomicItem).where(EconomicItem.person_id.in_(ids))))
        flags = sorted((place[p.id], p.hospitalised, p.chronic_disease) for p in s.scalars(
            select(Person).where(Person.id.in_(ids))))
    counts = [(x.kind, x.read, x.stored, x.already_stored, x.rejected, x.persons_updated, x.economic_items)
              for x in summaries]
    return counts, [read_rejected(path) for _, path in files], records, items, flags


@pytest.fixture
def directory_reads(monkeypatch):
    """How many times the person directory is read (the real reader, counted)."""
    calls: list[bool] = []
    real = feeds.read_person_directory

    def counted(*args, **kwargs):
        calls.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(feeds, "read_person_directory", counted)
    return calls


@pytest.mark.parametrize("share", [0.0, 1e9], ids=["directory", "searched"])
def test_a_months_files_together_store_and_reject_what_each_file_alone_does(sync_engine, tmp_path, monkeypatch,
                                                                            directory_reads, share):
    # share 0: every file (and the job) names "most persons", so the directory is read; 1e9: never, searched.
    monkeypatch.setattr(feeds, "WHOLE_INDEX_SHARE", share)
    start = 401 if share else 411
    alone_people = seed_world(sync_engine, households=3, members=1, start=start).persons
    together_people = seed_world(sync_engine, households=3, members=1, start=start + 5).persons

    alone_files = _month(tmp_path / "alone", alone_people)
    alone = [import_feed(sync_engine, kind, path) for kind, path in alone_files]
    reads_alone = len(directory_reads)
    together_files = _month(tmp_path / "together", together_people)
    together = import_feeds(sync_engine, together_files)
    reads_together = len(directory_reads) - reads_alone

    expected = _outcome(sync_engine, alone_files, alone_people, alone)
    assert _outcome(sync_engine, together_files, together_people, together) == expected
    counts, rejected, records, items, flags = expected
    assert counts == [("hospitalisation", 5, 2, 0, 3, 2, 0), ("disease", 2, 1, 0, 1, 1, 0),
                      ("income", 4, 2, 0, 2, 0, 2)]
    assert sorted(rejected[0]) == [3, 4, 5] and "no person" in rejected[0][3] and "name" in rejected[0][4]
    assert rejected[1] == {3: "duplicate of line 2"}
    assert sorted(rejected[2]) == [3, 4] and "no person" in rejected[2][4]
    assert [(r[0], r[1], r[3]) for r in records] == [("disease", 1, 2), ("hospitalisation", 0, 2),
                                                     ("hospitalisation", 2, 6)]
    assert [(i[0], i[1], float(i[2]), i[5]) for i in items] == [(0, "WAGE", 1000.5, 2), (2, "PENSION", 300.0, 5)]
    assert flags == [(0, True, False), (1, False, True), (2, True, False)]
    # one read for the whole job, where alone each file read it for itself
    assert (reads_alone, reads_together) == ((3, 1) if share == 0.0 else (0, 0))


def test_a_file_that_cannot_be_read_stops_the_job_before_any_file_is_stored(sync_engine, tmp_path):
    people = seed_world(sync_engine, households=3, members=1, start=421).persons
    files = _month(tmp_path / "month", people)
    write_csv(files[2][1], ["id_number", "period", "kind", "amount"], [[people[0].id_number, "2025-09", "WAGE", "1"]])
    with pytest.raises(FeedFileError, match="income.csv: wrong header.*missing columns: source"):
        import_feeds(sync_engine, files)
    with Session(sync_engine) as s:
        assert not s.scalars(select(FeedRecord.id).where(FeedRecord.person_id.in_([p.id for p in people]))).all()
    with pytest.raises(FeedFileError, match="unknown feed kind 'wages'"):
        import_feeds(sync_engine, [*files[:2], ("wages", files[2][1])])


def test_a_store_that_fails_stops_the_persons_still_to_be_found(sync_engine, tmp_path, monkeypatch):
    # With the directory, the files' persons are found ahead on the reader's thread; when a file's store fails,
    # the job's error reaches the caller without the lookups not yet begun being run first.
    monkeypatch.setattr(feeds, "WHOLE_INDEX_SHARE", 0.0)
    people = seed_world(sync_engine, households=3, members=1, start=441).persons
    files = _month(tmp_path / "month", people)
    found: list[str] = []
    real = feeds.resolve_persons

    def slow(session, good, schema, *args, **kwargs):
        found.append(schema.kind)
        time.sleep(0.5)  # a lookup begun is still running when the first file's store fails
        return real(session, good, schema, *args, **kwargs)

    def failing(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(feeds, "resolve_persons", slow)
    monkeypatch.setattr(feeds, "_store_file", failing)
    with pytest.raises(RuntimeError, match="the disk is full"):
        import_feeds(sync_engine, files)
    # The second file's lookup may have begun before the failure or been cancelled with the third; the third,
    # queued behind the second's half second, was never run.
    kinds = [kind for kind, _ in files]
    assert found in (kinds[:1], kinds[:2]) and len(kinds) == 3


def test_import_month_takes_the_files_named_after_their_kinds(sync_engine, db_url, tmp_path, monkeypatch):
    people = seed_world(sync_engine, households=3, members=1, start=431).persons
    files = _month(tmp_path / "month", people)
    assert month_files(tmp_path / "month") == files  # in the order of FEEDS, whatever the folder's
    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", db_url)
    monkeypatch.setenv("AIDGRAPH_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["import-month", str(tmp_path / "month")])
    assert result.exit_code == 0, result.output
    assert "hospitalisation hospitalisation.csv" in result.output and "3 files in" in result.output
    assert "rows read 4, stored 2, skipped as already stored 0, rejected 2" in result.output  # income

    (tmp_path / "month" / "wages.csv").write_text("id_number\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import-month", str(tmp_path / "month")])
    assert result.exit_code == 2
    assert "wages.csv not named after a feed kind" in " ".join(result.output.split())
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeedFileError, match="no feed file"):
        month_files(tmp_path / "empty")
