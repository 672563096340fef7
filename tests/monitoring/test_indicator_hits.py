"""Each indicator is computed once a run: an indicator that reads another's hits (身份信息重合叠加 reads every
signal's) gets the run's, whichever of the two the scoring reaches first, and a province's variant of a key is
computed as itself."""

from __future__ import annotations

import polars as pl
from sqlalchemy.orm import Session

from aidgraph.core.monitoring.cycle import score_month
from aidgraph.core.monitoring.indicators import IndicatorContext
from aidgraph.core.policy.contract import Indicator
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import Settings


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
