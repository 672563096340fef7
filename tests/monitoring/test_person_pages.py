"""A feed's update of a person stays on the person's page (migration 0028, PostgreSQL ``fillfactor`` 90): the
hospitalisation file sets ``hospitalised`` on persons spread over the whole table, and each new row version must
land beside the old one (a heap-only tuple: no new entry in ``person``'s indexes), not on another page.

Checked through the real import on a real embedded PostgreSQL server, by the rows' physical addresses (``ctid``)
before and after: a table filled to the brim (no migration 0028) moves every updated row but those of its last
page, which fails the test."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from aidgraph.core.monitoring.feeds import import_feed
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.migrate import downgrade, upgrade
from tests.conftest import make_database
from tests.monitoring.conftest import seed_world

TODAY = dt.date.today()


@pytest.fixture()
def engine(request, tmp_path_factory):
    engine = make_sync_engine(make_database("postgres", request, tmp_path_factory))
    yield engine
    engine.dispose()


def pages(engine) -> dict[int, int]:
    """Each person's heap page (the block of its ``ctid``)."""
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, (ctid::text::point)[0]::int FROM person")).all())


def hospital_file(tmp_path, numbers: list[str]):
    day = TODAY - dt.timedelta(days=3)
    path = tmp_path / "hospital.jsonl"
    path.write_text("\n".join(json.dumps({"id_number": n, "name": "", "admission_date": day.isoformat(),
                                          "discharge_date": "", "hospital": "人民医院", "diagnosis": "",
                                          "total_cost": 5000, "compliant_cost": 4000, "insurance_paid": 2000},
                                         ensure_ascii=False) for n in numbers), encoding="utf-8")
    return path


def test_person_pages_keep_room_for_updates(engine):
    with engine.connect() as conn:
        options = conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'person'")).scalar()
    assert options == ["fillfactor=90"]
    downgrade(engine, "0027")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'person'")).scalar() is None
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'person'")).scalar() == options


def test_hospitalisation_updates_leave_each_person_on_its_page(engine, tmp_path):
    world = seed_world(engine, households=60, members=5, start=150)
    before = pages(engine)
    last = max(before.values())
    assert last >= 3, "the test needs several full pages of persons"
    # One person of each page but the last, as a month's file names a few persons spread over the table.
    first_of_page: dict[int, int] = {}
    for person_id, page in sorted(before.items()):
        if page != last:
            first_of_page.setdefault(page, person_id)
    chosen = set(first_of_page.values())
    numbers = [p.id_number for p in world.persons if p.id in chosen]
    summary = import_feed(engine, "hospitalisation", hospital_file(tmp_path, numbers), province="44")
    assert (summary.stored, summary.persons_updated) == (len(chosen), len(chosen))
    after = pages(engine)
    with engine.connect() as conn:
        flagged = set(conn.scalars(text("SELECT id FROM person WHERE hospitalised")))
    assert flagged == chosen
    assert {p: after[p] for p in chosen} == {p: before[p] for p in chosen}
