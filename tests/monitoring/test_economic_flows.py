"""The monthly income and expenditure sums the sudden-change signals (收入骤减, 支出骤增) read
(:meth:`aidgraph.core.monitoring.indicators.IndicatorContext.economic_flows`), on SQLite and PostgreSQL: what
is summed together, what is left out, and a source read back whole whatever it holds (SQLite reads kind, month
and source as one text key)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from aidgraph.core.monitoring.indicators import FLOW_KEY_SEPARATOR, IndicatorContext
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import EconomicItem
from tests.monitoring.conftest import seed_world

ODD_SOURCE = f"社保{FLOW_KEY_SEPARATOR}补录{FLOW_KEY_SEPARATOR}二"
"""A data source holding the separator twice."""


def _items(rows) -> list[EconomicItem]:
    return [EconomicItem(household_id=h, kind=kind, source=source, amount=Decimal(amount),
                         period_start=dt.date.fromisoformat(start), period_end=dt.date.fromisoformat(end))
            for h, kind, source, start, end, amount in rows]


def test_flows_are_summed_per_household_source_and_month(sync_engine, sqlite_read_path):
    start = 60 if sqlite_read_path == "cursor" else 70  # the module's database: each read path its own world
    guangdong = sorted(seed_world(sync_engine, "44", households=2, start=start).households)
    fujian = sorted(seed_world(sync_engine, "35", households=1, start=start).households)
    h1, h2 = guangdong
    with session_scope(sync_engine) as session:
        session.add_all(_items([
            (h1, "WAGE", "税务", "2025-03-01", "2025-03-31", "1000.10"),
            (h1, "WAGE", "税务", "2025-03-01", "2025-03-15", "200.20"),  # the same month, another end: summed
            (h1, "BUSINESS", "税务", "2025-03-01", "2025-03-31", "5"),  # another kind of the same source: summed
            (h1, "WAGE", ODD_SOURCE, "2025-03-01", "2025-03-31", "50"),
            (h1, "BUSINESS", "税务", "2025-02-01", "2025-02-28", "300"),
            (h1, "PENSION", "社保", "2024-12-01", "2024-12-31", "80"),  # not asked for below
            (h1, "WAGE", "税务", "2024-11-01", "2024-11-30", "999"),  # before the window (three months back)
            (h1, "WAGE", "税务", "2025-03-01", "2025-04-30", "999"),  # ends after the month
            (h1, "DEPOSIT", "银行", "2025-03-01", "2025-03-31", "999"),  # an asset, not a flow
            (h2, "EXPENDITURE_MEDICAL", "医保", "2024-12-01", "2024-12-31", "700"),
            (h2, "EXPENDITURE_MEDICAL", "医保", "2024-12-01", "2024-12-31", "1.5"),
            (fujian[0], "WAGE", "税务", "2025-03-01", "2025-03-31", "999"),  # another province
        ]))
    params = PolicyEngine(Settings()).province("44").params
    with Session(sync_engine) as session:
        ctx = IndicatorContext(session, "44", "2025-03", params, {})
        income = ctx.economic_flows(["WAGE", "BUSINESS"], 3)
        spending = ctx.economic_flows(["EXPENDITURE_MEDICAL"], 3)
        everything = ctx.economic_flows(["WAGE", "BUSINESS", "PENSION", "EXPENDITURE_MEDICAL"], 3)
        nothing = IndicatorContext(session, "44", "2020-01", params, {}).economic_flows(["WAGE"], 3)

    def sums(frame):
        assert frame.columns == ["household_id", "source", "months_back", "amount"]
        return {(h, s, m): round(a, 2) for h, s, m, a in frame.iter_rows() if h in guangdong or h in fujian}

    assert sums(income) == {(h1, "税务", 0): 1205.30, (h1, ODD_SOURCE, 0): 50.0, (h1, "税务", 1): 300.0}
    assert sums(spending) == {(h2, "医保", 3): 701.5}
    assert sums(everything) == {**sums(income), **sums(spending), (h1, "社保", 3): 80.0}
    assert sums(nothing) == {}  # a window without items: no rows, the same columns
