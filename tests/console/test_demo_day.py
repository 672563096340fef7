"""``aidgraph demo``'s normal day, in the database the console tests use: enrolments decided by the rules through
the enrolment workflow (with their payments and aid chains), the approval queue at every step, disposed alerts,
medical aid claims, and a second run that changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select, text
from typer.testing import CliRunner

from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import AidChainEvent, Alert, AuditLog, Enrollment, Payment

RECEIVING = {"tekun", "dibao", "dibao_edge", "expenditure_hardship"}


def counts(url: str) -> dict:
    engine = make_sync_engine(url)
    with session_scope(engine) as session:
        result = {
            "enrollments": dict(session.execute(select(Enrollment.status, func.count()).group_by(Enrollment.status)).all()),
            "payments": session.scalar(select(func.count()).select_from(Payment)),
            "chain": session.scalar(select(func.count()).select_from(AidChainEvent)),
            "alerts": dict(session.execute(select(Alert.status, func.count()).group_by(Alert.status)).all()),
            "audit": session.scalar(select(func.count()).select_from(AuditLog)),
        }
    engine.dispose()
    return result


def test_the_demo_day_is_decided_by_the_rules_and_runs_once(demo_db, tmp_path):
    engine = make_sync_engine(demo_db)
    with session_scope(engine) as session:
        active = session.scalars(select(Enrollment).where(Enrollment.status == "ACTIVE", Enrollment.details.is_not(None),
                                                          Enrollment.program_key.in_(RECEIVING))).all()
        assert {e.program_key for e in active} == RECEIVING
        for enrollment in active:
            reasons = enrollment.details["reasons"]  # the rules' own words, kept with the decision
            assert reasons and any("met" in r or "benefit" in r for r in reasons)
            kinds = set(session.scalars(select(AidChainEvent.kind).where(
                AidChainEvent.household_id == enrollment.household_id,
                AidChainEvent.program_key == enrollment.program_key)).all())
            assert {"APPLICATION", "VERIFICATION", "DECISION"} <= kinds
            if enrollment.monthly_amount is not None:  # dibao and tekun pay monthly: this month's payment exists
                assert "PAYMENT" in kinds
                assert session.scalar(select(Payment.amount).where(Payment.enrollment_id == enrollment.id)) \
                    == enrollment.monthly_amount
        waiting = set(session.scalars(select(Enrollment.status).where(Enrollment.program_key.in_(RECEIVING))).all())
        assert {"APPLIED", "VERIFYING", "REVIEWED", "APPROVED"} <= waiting
        assert {"RESOLVED", "DISMISSED", "VERIFYING", "OPEN"} & set(session.scalars(select(Alert.status)).all()) >= \
            {"DISMISSED", "VERIFYING", "OPEN"}
        # medical aid (医疗救助) settled through the public mutation for heads of dibao and tekun households
        claims = session.execute(text("SELECT category, aid_amount FROM medical_claim")).all()
        assert claims and {c for c, _ in claims} <= {"DIBAO", "TEKUN"} and all(a > 0 for _, a in claims)
    engine.dispose()

    from aidgraph.core.app.cli import app

    before = counts(demo_db)
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--province", "44", "--households", "800"],
                                env={"AIDGRAPH_DATABASE_URL": demo_db, "AIDGRAPH_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "demo day:" not in result.output  # nothing seeded the second time
    after = counts(demo_db)
    assert after == before
