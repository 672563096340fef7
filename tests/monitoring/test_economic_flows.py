"""The monthly income and expenditure sums the sudden-change signals (收入骤减, 支出骤增) read
(:meth:`aidgraph.core.monitoring.indicators.IndicatorContext.economic_flows`), on SQLite and PostgreSQL: what
is summed together, what is left out, and a source read back whole whatever it holds (SQLite reads kind, month
and source as one text key)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from concurrent.futures import Future
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from sqlalchemy.orm import Session

from aidgraph.core.monitoring import indicators
from aidgraph.core.monitoring.cycle import score_month, weights_for
from aidgraph.core.monitoring.indicators import FLOW_KEY_SEPARATOR, FlowWindow, IndicatorContext, month_index
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import EconomicItem
from aidgraph.plugins.relapse_monitoring.indicators import INDICATORS
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


def test_a_window_begun_ahead_is_the_window_read_in_place(sync_engine, sqlite_read_path, monkeypatch):
    # The sudden-change signals begin their window before any indicator computes (Indicator.prefetch): on
    # SQLite's reader process it is read on a thread meanwhile; elsewhere nothing is begun and it is read in place.
    start = 80 if sqlite_read_path == "cursor" else 90
    h1, h2 = sorted(seed_world(sync_engine, "44", households=2, start=start).households)
    with session_scope(sync_engine) as session:
        session.add_all(_items([
            (h1, "WAGE", "税务", "2025-03-01", "2025-03-31", "100"),  # against 3000 / 3 a month: a drop
            (h1, "WAGE", "税务", "2025-01-01", "2025-01-31", "3000"),
            (h2, "EXPENDITURE_MEDICAL", "医保", "2025-03-01", "2025-03-31", "700.5"),
        ]))
    begun: list[bool] = []
    real = indicators.start_large_read

    def counted(*args, **kwargs):
        pending = real(*args, **kwargs)
        begun.append(pending is not None)
        return pending

    monkeypatch.setattr(indicators, "start_large_read", counted)
    params = PolicyEngine(Settings()).province("44").params
    kinds = ["WAGE", "EXPENDITURE_MEDICAL"]
    with Session(sync_engine) as session:
        ahead = IndicatorContext(session, "44", "2025-03", params, {})
        ahead.prefetch_flows(3)
        ahead.prefetch_flows(3)
        read_ahead = ahead.economic_flows(kinds, 3).sort("household_id", "source", "months_back")
        households_ahead = ahead.households_in_scope().sort("household_id")
        assert not ahead._pending  # every read begun was taken
        in_place = IndicatorContext(session, "44", "2025-03", params, {})
        read_in_place = in_place.economic_flows(kinds, 3).sort("household_id", "source", "months_back")
        households_in_place = in_place.households_in_scope().sort("household_id")
    assert read_ahead.equals(read_in_place) and households_ahead.equals(households_in_place)
    mine = read_ahead.filter(pl.col("household_id").is_in([h1, h2])).rows()
    assert mine == [(h1, "税务", 0, 100.0), (h1, "税务", 2, 3000.0), (h2, "医保", 0, 700.5)]
    reader = sync_engine.dialect.name == "sqlite" and sqlite_read_path == "reader process"
    # the window (in two parts) and the households, each begun once; where nothing can be begun, asked twice for
    # nothing (the window's first part, the households)
    assert begun == ([True, True, True] if reader else [False] * 4)

    # The month's scores, the indicators' reads begun ahead or not
    on = dt.date(2025, 3, 31)
    weights = weights_for(params, "44", INDICATORS, on)
    unprefetched = [dataclasses.replace(indicator, prefetch=None) for indicator in INDICATORS]
    with Session(sync_engine) as session:
        ahead_scores = score_month(IndicatorContext(session, "44", "2025-03", params, {}), INDICATORS, weights)
        plain_scores = score_month(IndicatorContext(session, "44", "2025-03", params, {}), unprefetched, weights)
    assert ahead_scores.households.sort("household_id").equals(plain_scores.households.sort("household_id"))
    assert h1 in ahead_scores.hits.filter(pl.col("key") == "income_drop")["household_id"].to_list()


def test_a_window_the_reader_refused_is_read_through_the_session(sync_engine):
    params = PolicyEngine(Settings()).province("44").params
    with Session(sync_engine) as session:
        refused = IndicatorContext(session, "44", "2025-03", params, {})
        for key in (("flows", 3), "households"):
            nothing: Future = Future()
            nothing.set_result(None)  # what start_large_read's future holds when the driver refused
            refused._pending[key] = [nothing]
        # a window whose first part was read and whose second was refused: the first is not used alone
        read: Future = Future()
        read.set_result(pl.DataFrame({"household_id": [-1], "flow_key": ["WAGE"], "amount": [1.0]},
                                     schema={"household_id": pl.Int64, "flow_key": pl.Categorical,
                                             "amount": pl.Float64}))
        refused._pending[("flows", 3)].insert(0, read)
        flows = refused.economic_flows(["WAGE"], 3).sort("household_id", "source", "months_back")
        households = refused.households_in_scope().sort("household_id")
        plain = IndicatorContext(session, "44", "2025-03", params, {})
        assert flows.equals(plain.economic_flows(["WAGE"], 3).sort("household_id", "source", "months_back"))
        assert households.equals(plain.households_in_scope().sort("household_id"))
        assert households.height > 0


@pytest.mark.parametrize("coded", ["flow_key", "columns"], ids=["sqlite key", "postgresql columns"])
def test_the_window_sums_by_code_what_summing_by_text_gives(coded):
    # FlowWindow works on integer codes; the sums must be those of grouping the read groups by their text.
    rng = np.random.default_rng(7)
    n = 20_000
    kinds = np.array(["WAGE", "BUSINESS", "PENSION", "EXPENDITURE_MEDICAL", "EXPENDITURE_EDUCATION"])
    sources = np.array(["税务", "社保", ODD_SOURCE, "医保"])
    months = [dt.date(2025, 3, 1), dt.date(2025, 2, 1), dt.date(2024, 12, 1)]
    text = pl.DataFrame({
        "household_id": rng.integers(1, 400, n), "kind": kinds[rng.integers(0, len(kinds), n)],
        "source": sources[rng.integers(0, len(sources), n)], "period_start": [months[i] for i in rng.integers(0, len(months), n)],
        "amount": rng.integers(0, 1_000_000, n) / 100,  # cents, as stored
    })
    if coded == "flow_key":
        read = text.select("household_id", pl.concat_str(
            "kind", pl.col("period_start").cast(pl.Utf8), "source", separator=FLOW_KEY_SEPARATOR
        ).cast(pl.Categorical).alias("flow_key"), "amount")
    else:
        read = text
    window = FlowWindow.of(read, dt.date(2025, 3, 1))
    for asked in (["WAGE", "BUSINESS"], ["EXPENDITURE_MEDICAL"], ["PENSION", "EXPENDITURE_EDUCATION", "WAGE"],
                  ["DEPOSIT"]):
        expected = (text.filter(pl.col("kind").is_in(asked))
                    .with_columns((pl.lit(2025 * 12 + 2) - month_index("period_start")).alias("months_back"))
                    .group_by("household_id", "source", "months_back").agg(pl.col("amount").sum()))
        got = window.sums(asked)
        assert got.schema == expected.schema
        keys = ["household_id", "source", "months_back"]
        joined = expected.join(got, on=keys, how="full", coalesce=True)
        assert joined.height == expected.height == got.height
        difference = (joined["amount"] - joined["amount_right"]).abs().max()
        assert difference is None or difference < 1e-6  # the same numbers, summed maybe in another order
        assert sorted(got["months_back"].unique().to_list()) == \
            sorted(expected["months_back"].unique().to_list())


@pytest.mark.parametrize("baseline_months, parts", [
    (3, [("2024-12-01", "2025-01-01"), ("2025-02-01", "2025-03-01")]),
    (4, [("2024-11-01", "2025-01-01"), ("2025-02-01", "2025-03-01")]),
    (0, [("2025-03-01", "2025-03-01")]),
])
def test_the_window_is_read_in_runs_of_its_months(baseline_months, parts):
    params = PolicyEngine(Settings()).province("44").params
    ctx = IndicatorContext(None, "44", "2025-03", params, {})  # type: ignore[arg-type]  # no session needed
    assert [(a.isoformat(), b.isoformat()) for a, b in ctx._flow_parts(baseline_months)] == parts
