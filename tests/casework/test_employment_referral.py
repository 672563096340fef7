"""The employment plugin's automatic referral (分类转办, GD-2022) is a referral record: a zero-employment household's
dibao becoming active refers it to human resources and social security with the province's time limit, in the
same transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import AuditLog, Referral
from tests.plugins.db import add_household
from tests.plugins.test_enrollment import ON, SHANTOU, apply, step


def test_activation_of_a_zero_employment_household_writes_a_referral(db_url, sync_engine):
    engine = PolicyEngine(Settings())
    with session_scope(sync_engine) as s:
        jobless = add_household(s, SHANTOU, [{"age": 45, "employment_status": "UNEMPLOYED", "labour_capacity": "FULL"},
                                             {"age": 12}], wages=500).household_id
        working = add_household(s, SHANTOU, [{"age": 45, "employment_status": "EMPLOYED", "labour_capacity": "FULL"},
                                             {"age": 12}], wages=500).household_id
    for household in (jobless, working):
        e = apply(db_url, engine, household, "dibao")
        for action in ("START_VERIFICATION", "REVIEW", "APPROVE", "ACTIVATE"):
            e = step(db_url, engine, e.id, action)
        assert e.status == "ACTIVE"
    with session_scope(sync_engine) as s:
        rows = s.scalars(select(Referral).where(Referral.household_id.in_([jobless, working]))).all()
        assert len(rows) == 1
        referral = rows[0]
        assert referral.household_id == jobless and referral.department == "human_resources"
        assert referral.source == "ENROLLMENT" and referral.status == "SENT"
        assert referral.due_date == ON + dt.timedelta(days=15)  # workflow.referral_days default (illustrative)
        assert "零就业家庭" in referral.reason
        assert s.scalar(select(AuditLog.action).where(AuditLog.object_type == "referral",
                                                      AuditLog.object_id == str(referral.id))) == "refer"
