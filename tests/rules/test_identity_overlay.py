"""GS-2024's warning score overlays the person's identity on the indicators (身份信息重合叠加), on both engines:
the identity_overlay indicator hits a household whose low-income enrolment coincides with another indicator's
hit in the month, and adds Gansu's weight to its score; Guangdong and Fujian give it the weight 0 (off)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from aidgraph.core.monitoring.cycle import score_month, weights_for
from aidgraph.core.monitoring.indicators import IndicatorContext
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.models import Enrollment, FeedRecord
from aidgraph.plugins.relapse_monitoring.indicators import INDICATORS, identity_overlay
from tests.monitoring.conftest import seed_world


def test_identity_overlays_the_indicators_in_gansu(sync_engine):
    world = seed_world(sync_engine, "62", households=4, start=9)
    households = list(world.households)
    heads = {p.household_id: p for p in reversed(world.persons)}
    with Session(sync_engine) as s, s.begin():
        for i in (0, 1):  # hospitalised in March: households 0 and 1
            person = heads[households[i]]
            s.add(FeedRecord(kind="hospitalisation", person_id=person.id, event_date=dt.date(2025, 3, 10),
                             payload={"hospital": "兰州"}, row_hash=f"overlay-{world.province}-{person.id}",
                             source_file="test", line_number=i + 1))
        for i in (0, 2):  # dibao households 0 and 2 (identity)
            s.add(Enrollment(household_id=households[i], program_key="dibao", province_code="62",
                             region_code=world.households[households[i]], status="ACTIVE",
                             start_date=dt.date(2024, 1, 1)))
    params = PolicyEngine(Settings()).province("62").params
    with Session(sync_engine) as s:
        table = PolicyEngine(Settings()).catalogue().category_programs()
        ctx = IndicatorContext(s, "62", "2025-03", params, table)
        hits = identity_overlay(ctx)
        assert hits["household_id"].to_list() == [households[0]]  # identity and a hit; not 1 (no identity), not 2
        # the identity is what the programs' declared categories say: without dibao's, household 0 has none
        without = IndicatorContext(s, "62", "2025-03", params, {k: v for k, v in table.items() if k != "dibao"})
        assert identity_overlay(without).is_empty()
        weights = weights_for(params, "62", INDICATORS, ctx.month_end)
        assert weights["identity_overlay"] == 20  # illustrative: GS-2024 gives no weight
        scores = score_month(ctx, INDICATORS, weights).households
        by_id = dict(zip(scores["household_id"].to_list(), scores["score"].to_list()))
        hospital = weights["hospitalisation"]
        assert by_id[households[0]] == hospital + 20 and by_id[households[1]] == hospital
    for code in ("44", "35"):
        assert PolicyEngine(Settings()).province(code).params.value("monitoring.weights.identity_overlay",
                                                                      dt.date(2025, 3, 31)) == 0
