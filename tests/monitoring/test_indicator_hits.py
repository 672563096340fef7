"""Each indicator is computed once a run: an indicator that reads another's hits (身份信息重合叠加 reads every
signal's) gets the run's, whichever of the two the scoring reaches first, and a province's variant of a key is
computed as itself."""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from aidgraph.core.access.actor import system_actor
from aidgraph.core.monitoring.cycle import run_month, score_month
from aidgraph.core.monitoring.indicators import IndicatorContext
from aidgraph.core.policy.contract import Indicator
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import Alert
from tests.monitoring.conftest import seed_world
from tests.monitoring.helpers import monitoring_params


def test_an_indicator_read_by_another_is_computed_once_a_run(sync_engine):
    calls: list[str] = []

    def signal(ctx):
        calls.append("signal")
        return pl.DataFrame({"household_id": [1, 2], "person_id": [10, None]}, schema={
            "household_id": pl.Int64, "person_id": pl.Int64})

    first = Indicator("signal", "信号", "a signal", (), signal)
    variant = Indicator("signal", "信号", "a province's variant of the same key", (), lambda ctx: (
        calls.append("variant"), signal(ctx).head(1))[1])
    overlay = Indicator("overlay", "叠加", "reads the signal's hits", (),
                        lambda ctx: ctx.hits(first).filter(pl.col("household_id") == 2))
    params = PolicyEngine(Settings()).province("44").params
    with Session(sync_engine) as session:
        for order in ([overlay, first], [first, overlay]):
            calls.clear()
            ctx = IndicatorContext(session, "44", "2025-03", params, {})
            scores = score_month(ctx, order, {"signal": 1.0, "overlay": 2.0})
            assert calls == ["signal"]
            assert dict(scores.households.select("household_id", "score").iter_rows()) == {1: 1.0, 2: 3.0}
        calls.clear()
        ctx = IndicatorContext(session, "44", "2025-03", params, {})
        assert ctx.hits(variant).height == 1 and ctx.hits(first).height == 2 and ctx.hits(variant).height == 1
        assert calls == ["variant", "signal", "signal"]


def test_a_hit_outside_the_province_raises_no_alert(sync_engine):
    # An indicator's hits are the province's to alert only for the province's households: the run routes each
    # alert by the region of the households it scored over, and a household of another province has none there.
    guangdong = seed_world(sync_engine, "44", households=1, start=700).households
    fujian = seed_world(sync_engine, "35", households=1, start=705).households
    ours, theirs = next(iter(guangdong)), next(iter(fujian))
    signal = Indicator("hospitalisation", "住院", "hits chosen by the test", (), lambda ctx: pl.DataFrame(
        {"household_id": [ours, theirs], "person_id": [None, None]},
        schema={"household_id": pl.Int64, "person_id": pl.Int64}))
    with session_scope(sync_engine) as session:
        summary = run_month(session, "44", "2025-03", params=monitoring_params("44"), indicators=[signal],
                            category_programs={}, actor=system_actor("monitor"), today=dt.date(2025, 6, 15))
    with Session(sync_engine) as session:
        alerts = {a.household_id: a for a in session.scalars(
            select(Alert).where(Alert.household_id.in_([ours, theirs])))}
    assert summary.alerts_raised == 1 and set(alerts) == {ours}
    assert alerts[ours].region_code == guangdong[ours] and alerts[ours].level == "GREEN"  # hospitalisation: 25
