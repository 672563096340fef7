"""Retention on both engines: what is due is deleted or kept for storage only, search drops it, the audit chain
is pruned as a prefix and still verifies, the legal minimum is enforced at load, and a rerun finds nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from aidgraph.core.access.actor import system_actor
from aidgraph.core.graph import audit, retention
from aidgraph.core.storage.config import builtin_province_configs
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import (
    AidChainEvent,
    Alert,
    AuditLog,
    Enrollment,
    EnrollmentStep,
    Outbox,
    Payment,
    RetainedRecord,
)
from tests.search.conftest import add_household

TODAY = dt.date(2026, 12, 1)
LONG_AGO = dt.datetime(2020, 3, 1, 10, 0)
RECENT = dt.datetime(2026, 10, 1, 9, 0)


def _ended(session, household_id: int, region: str, end: dt.date, status: str = "ENDED") -> Enrollment:
    e = Enrollment(household_id=household_id, program_key="dibao", province_code="44", region_code=region,
                   status=status, end_date=end, decided_at=dt.datetime.combine(end, dt.time()), version=3)
    session.add(e)
    session.flush()
    session.add(Payment(enrollment_id=e.id, household_id=household_id, amount=Decimal("650.00"), period="2019-06"))
    session.add(EnrollmentStep(enrollment_id=e.id, action="END", from_status="ACTIVE", to_status=status,
                               actor="tester"))
    session.add(AidChainEvent(household_id=household_id, kind="DECISION", summary="ended", ref_type="enrollment",
                              ref_id=e.id))
    return e


@pytest.fixture
def data(fresh_engine, tmp_path):
    """Records on both sides of every period (44's shipped periods: enrolments 36 months then stored until
    120 months, closed alerts 24 months, rejected feed rows 6 months, audit rows 36 months)."""
    made = {}
    with session_scope(fresh_engine) as s:
        h = add_household(s, "440106001001", "五山路1号", ["张三"])["household"]
        made["household"] = h.id
        made["deleted"] = _ended(s, h.id, "440106001001", dt.date(2014, 1, 31)).id        # past 120 months
        made["stored"] = _ended(s, h.id, "440106001001", dt.date(2020, 5, 31), "REJECTED").id  # 36 < age < 120
        made["recent"] = _ended(s, h.id, "440106001001", dt.date(2025, 6, 30)).id          # within 36 months
        made["active"] = add_household(s, "440106001001", None, ["李四"], enrollment="dibao")["enrollment"].id
        old = add_household(s, "440106001001", None, ["王五"], alert="RED", alert_status="RESOLVED")["alert"]
        old.updated_at = dt.datetime(2023, 1, 1)
        made["old_alert"] = old.id
        made["open_alert"] = add_household(s, "440106001001", None, ["赵六"], alert="RED")["alert"].id
        # Audit rows: old ones first in the chain, then recent ones.
        for at in (LONG_AGO, LONG_AGO, dt.datetime(2023, 1, 1), RECENT):
            s.add(AuditLog(at=at, actor="tester", action="create", object_type="household", region_code="44"))
        feed = tmp_path / "hospital.csv"
        feed.write_text("id_number,date\n", encoding="utf-8")
        rejected = tmp_path / "hospital.csv.rejected.csv"
        rejected.write_text("line,reason\n2,bad\n3,bad\n", encoding="utf-8")
        old_time = dt.datetime(2026, 1, 1).timestamp()
        os.utime(rejected, (old_time, old_time))
        made["rejected_file"] = rejected
        s.add(AuditLog(at=RECENT, actor="tester", action="import_feed", object_type="feed_record",
                       detail={"kind": "hospitalisation", "file": str(feed), "rows": 0}))
    return made


def periods(code="44"):
    from aidgraph.core.policy.provinces import load_province
    from aidgraph.core.workflow.retention_params import periods as read

    return [read(load_province(code).params, TODAY)]


def _ids(engine, model):
    with engine.connect() as c:
        return set(c.execute(select(model.id)).scalars())


def test_dry_run_counts_and_changes_nothing_then_the_run_applies_it(fresh_engine, data):
    before = {m: _ids(fresh_engine, m) for m in (Enrollment, Payment, Alert, AuditLog)}
    with session_scope(fresh_engine) as s:
        dry = retention.run(s, system_actor("retention"), periods(), today=TODAY, dry_run=True)
        s.rollback()
    assert {m: _ids(fresh_engine, m) for m in before} == before and data["rejected_file"].exists()
    with session_scope(fresh_engine) as s:
        report = retention.run(s, system_actor("retention"), periods(), today=TODAY)
    assert report.deleted == dry.deleted and report.stored_only == dry.stored_only
    assert report.deleted["ended_enrollment"] == 1 and report.stored_only["ended_enrollment"] == 1
    assert report.deleted["closed_alert"] == 1 and report.deleted["rejected_feed_row"] == 2
    assert report.deleted["audit"] == 3 and report.audit_pruned_through == 3

    enrollments = _ids(fresh_engine, Enrollment)
    assert data["deleted"] not in enrollments and data["stored"] not in enrollments
    assert {data["recent"], data["active"]} <= enrollments
    assert _ids(fresh_engine, Alert) == {data["open_alert"]}
    assert not data["rejected_file"].exists()
    with session_scope(fresh_engine) as s:
        # Nothing of the removed enrolments is left in a live table (payments, steps, aid chain).
        gone = [data["deleted"], data["stored"]]
        assert not s.execute(select(Payment).where(Payment.enrollment_id.in_(gone))).all()
        assert not s.execute(select(EnrollmentStep).where(EnrollmentStep.enrollment_id.in_(gone))).all()
        assert not s.execute(select(AidChainEvent).where(AidChainEvent.ref_type == "enrollment",
                                                         AidChainEvent.ref_id.in_(gone))).all()
        kept = s.execute(select(RetainedRecord)).scalars().all()
        assert [(k.object_type, k.object_id, k.hold_until) for k in kept] == [
            ("enrollment", data["stored"], dt.date(2030, 5, 31))]
        assert kept[0].payload["enrollment"]["status"] == "REJECTED" and len(kept[0].payload["payment"]) == 1
        # Search learns of every removal through the outbox.
        deletions = set(s.execute(select(Outbox.entity, Outbox.entity_id).where(Outbox.deleted)).all())
        assert deletions == {("ENROLLMENT", data["deleted"]), ("ENROLLMENT", data["stored"]),
                             ("ALERT", data["old_alert"])}
        # The audit chain lost a prefix only, and still verifies; the run is itself audited.
        result = audit.verify(s)
        assert result.ok, result.findings
        assert min(s.execute(select(AuditLog.seq)).scalars()) == 4
        run_row = s.execute(select(AuditLog).where(AuditLog.action == "retention")).scalar_one()
        assert run_row.detail["deleted"]["ended_enrollment"] == 1


def test_a_second_run_finds_nothing_and_holds_end(fresh_engine, data):
    with session_scope(fresh_engine) as s:
        retention.run(s, system_actor("retention"), periods(), today=TODAY)
    with session_scope(fresh_engine) as s:
        again = retention.run(s, system_actor("retention"), periods(), today=TODAY)
    assert sum(again.deleted.values()) == 0 and sum(again.stored_only.values()) == 0
    with session_scope(fresh_engine) as s:  # ten years after it ended, the stored-only enrolment goes for good
        later = retention.run(s, system_actor("retention"), periods(), today=dt.date(2030, 6, 1))
    assert later.deleted["ended_enrollment (stored only, hold ended)"] == 1
    assert later.stored_only["ended_enrollment"] == 1  # the one that ended in 2025 is now past 36 months
    with fresh_engine.connect() as c:
        assert list(c.execute(select(RetainedRecord.object_id)).scalars()) == [data["recent"]]


def test_search_drops_what_retention_removed(fresh_engine, data, osmem_clone):
    from aidgraph.core.search.client import BULK_TIMEOUT, make_client
    from aidgraph.core.search.indexer import drain
    from aidgraph.core.search.mapping import DEFAULT_ALIAS, build_layout
    from aidgraph.core.search.rebuild import reindex
    from aidgraph.core.search.documents import doc_id

    client = make_client(osmem_clone.url, timeout=BULK_TIMEOUT)
    layout = build_layout()
    try:
        reindex(fresh_engine, client, DEFAULT_ALIAS, layout)
        drain(fresh_engine, client, DEFAULT_ALIAS, layout, refresh=True)
        keys = [doc_id("ENROLLMENT", data["deleted"]), doc_id("ENROLLMENT", data["stored"]),
                doc_id("ALERT", data["old_alert"])]
        assert all(client.exists(index=DEFAULT_ALIAS, id=k) for k in keys)
        with session_scope(fresh_engine) as s:
            retention.run(s, system_actor("retention"), periods(), today=TODAY)
        drain(fresh_engine, client, DEFAULT_ALIAS, layout, refresh=True)
        assert not any(client.exists(index=DEFAULT_ALIAS, id=k) for k in keys)
        assert client.exists(index=DEFAULT_ALIAS, id=doc_id("ENROLLMENT", data["recent"]))
    finally:
        client.close()


def test_cli_run_writes_a_report_and_refuses_a_period_below_the_legal_minimum(fresh_engine, data, tmp_path):
    from aidgraph.core.app.cli import app

    url = fresh_engine.url.render_as_string(hide_password=False)
    env = {"AIDGRAPH_DATABASE_URL": url, "AIDGRAPH_STATE_DIR": str(tmp_path / "state")}
    configs = tmp_path / "configs"
    shutil.copytree(builtin_province_configs(), configs)
    toml = configs / "44" / "parameters" / "retention.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(
        '["retention.audit_months"]\ndescription', '["retention.audit_months"]\ndescription', 1).replace(
        "value = 36 },\n]\n", "value = 3 },\n]\n"), encoding="utf-8")
    assert "value = 3 }" in toml.read_text(encoding="utf-8")
    before = _ids(fresh_engine, AuditLog)
    r = CliRunner().invoke(app, ["retention", "run", "--today", TODAY.isoformat()],
                           env={**env, "AIDGRAPH_PROVINCE_CONFIGS": str(configs)})
    assert r.exit_code == 1 and "retention.audit_months" in r.output and "minimum" in r.output
    assert "nothing was changed" in r.output and _ids(fresh_engine, AuditLog) == before

    r = CliRunner().invoke(app, ["retention", "run", "--dry-run", "--today", TODAY.isoformat(), "--province", "44"],
                           env=env)
    assert r.exit_code == 0, r.output
    assert _ids(fresh_engine, AuditLog) == before
    r = CliRunner().invoke(app, ["retention", "run", "--today", TODAY.isoformat(), "--province", "44"], env=env)
    assert r.exit_code == 0, r.output
    reports = sorted((tmp_path / "state" / "retention").glob("retention-*.json"))
    assert len(reports) == 2 and reports[0].name.endswith("-dry-run.json") != reports[1].name.endswith("-dry-run.json")
    real = json.loads(next(p for p in reports if not p.name.endswith("-dry-run.json")).read_text(encoding="utf-8"))
    assert real["deleted"]["ended_enrollment"] == 1 and real["stored_only"]["ended_enrollment"] == 1
