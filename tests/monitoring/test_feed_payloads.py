"""The month's feed records as the indicators read them (IndicatorContext.feed): the payload is decoded by polars
with the feed's declared types (aidgraph.core.monitoring.feeds.payload_dtype) and must hold, record by record, the
values the stored JSON holds, for every kind of feed record, empty and odd values included."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from aidgraph.core.monitoring.feeds import FEEDS, ITEM_FEEDS, import_feeds, payload_dtype
from aidgraph.core.monitoring.indicators import IndicatorContext
from aidgraph.core.storage.models import FeedRecord
from tests.monitoring.conftest import seed_world
from tests.monitoring.test_feeds import write_csv


BASE = ["household_id", "person_id", "region_code", "event_date"]


def _rows(kind, people):
    a, b = people[:2]
    return {
        "hospitalisation": [[a.id_number, a.name, "2025-05-03", "", "省人民医院, \"东院\"", "", "12000", "10000.5", "0"],
                            [b.id_number, b.name, "2025-05-04", "2025-05-20", "医院", "肺炎\n复诊", "99.99", "0", "0"]],
        "disease": [[a.id_number, a.name, "大病", "白血病", "2025-05-10"]],
        "college_admission": [[b.id_number, b.name, "2024", "某大学", "本科", "5000"]],
        "disability": [[a.id_number, a.name, "VISUAL", "2", "2025-05-02"], [b.id_number, b.name, "肢体", "4", "2025-05-09"]],
        "unemployment": [[b.id_number, b.name, "2025-05-12", "登记失业"]],
        "household_event": [[a.id_number, "DEATH", "2025-05-30", ""], [b.id_number, "MOVE_OUT", "2025-05-14", "H01"]],
    }[kind]


def test_the_feed_records_payload_reads_back_as_stored(sync_engine, tmp_path):
    people = seed_world(sync_engine, households=2, members=1, start=441).persons
    kinds = [k for k in FEEDS if k not in ITEM_FEEDS]
    files = [(k, write_csv(tmp_path / f"{k}.csv", FEEDS[k].names, _rows(k, people))) for k in kinds]
    assert all(s.rejected == 0 for s in import_feeds(sync_engine, files, today=dt.date(2025, 6, 30)))
    ids = [p.id for p in people]
    for kind in kinds:
        month = "2024-09" if kind == "college_admission" else "2025-05"  # admission: dated to 1 September
        with Session(sync_engine) as session:
            ctx = IndicatorContext(session, "44", month, None, {})
            got = ctx.feed(kind).filter(pl.col("person_id").is_in(ids)).sort("person_id", "event_date")
            stored = session.execute(select(FeedRecord.person_id, FeedRecord.event_date, FeedRecord.payload)
                                     .where(FeedRecord.kind == kind, FeedRecord.person_id.in_(ids))
                                     .order_by(FeedRecord.person_id, FeedRecord.event_date)).all()
        # the record's own columns first (a payload field of the same name, household_event's date, is its own)
        declared = {k: v for k, v in payload_dtype(FEEDS[kind]).to_schema().items() if k not in BASE}
        assert got.height == len(stored) == len(_rows(kind, people)), kind
        assert got.columns == [*BASE, *declared] and got.select(list(declared)).schema == pl.Schema(declared), kind
        for record, (_, day, payload) in zip(got.iter_rows(named=True), stored):
            payload = json.loads(payload) if isinstance(payload, str) else payload
            assert {k: record[k] for k in payload if k not in BASE} == {k: v for k, v in payload.items()
                                                                         if k not in BASE}, kind
            assert record["event_date"] == day, kind
