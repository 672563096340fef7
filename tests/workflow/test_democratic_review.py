"""民主评议 (democratic review) only for disputed applications (GD-2021 §7 优化审核确认程序，对没有争议的救助申请家庭不再
进行民主评议), through DecideEnrollment over a live server on SQLite and PostgreSQL.

Guangdong configures ``workflow.democratic_review`` = DISPUTED_ONLY: an undisputed application goes from
verification to REVIEW with no democratic review, and a review on it is refused (INVALID_TRANSITION, nothing
written); a disputed one (DISPUTE) cannot be reviewed (REVIEW) before its democratic review (DEMOCRATIC_REVIEW).
Gansu configures nothing: a review there is refused as "not configured" and its REVIEW is not gated.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.models import AuditLog, Enrollment, EnrollmentStep
from aidgraph.schema.relay import db_id
from tests.plugins.test_api_programs import gansu_token, member, register  # noqa: F401 - gansu_token: a fixture

SHANTOU = "440507001001"
LANZHOU = "620102001001"
APPLY = """mutation A($input: ApplyForAidInput!) { applyForAid(input: $input) {
  enrollment { id status } errors { field message code } } }"""
DECIDE = """mutation D($input: DecideEnrollmentInput!) { decideEnrollment(input: $input) {
  enrollment { status } errors { field message code } } }"""


def _send(live, query, variables, token=...):
    body = live.post(query, {"input": variables}, token=token).json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def _application(live, region, address, seq, token=...) -> str:
    household = register(live, region, [member(address, 70, seq)], token=token)
    applied = _send(live, APPLY, {"householdId": household["id"], "programKey": "dibao"}, token)
    assert applied["errors"] == [], applied
    started = _send(live, DECIDE, {"enrollmentId": applied["enrollment"]["id"], "action": "START_VERIFICATION"},
                    token)
    assert started["enrollment"]["status"] == "VERIFYING"
    return applied["enrollment"]["id"]


def _decide(live, enrollment, action, token=...):
    return _send(live, DECIDE, {"enrollmentId": enrollment, "action": action}, token)


def _state(live, enrollment) -> tuple[dict, int, int]:
    engine = make_sync_engine(live.components.settings.database_url)
    try:
        with engine.connect() as conn:
            pk = db_id(enrollment, "Enrollment")
            details = conn.execute(select(Enrollment.details).where(Enrollment.id == pk)).scalar_one() or {}
            steps = conn.execute(select(func.count()).select_from(EnrollmentStep)
                                 .where(EnrollmentStep.enrollment_id == pk)).scalar_one()
            audits = conn.execute(select(func.count()).select_from(AuditLog)).scalar_one()
        return details, steps, audits
    finally:
        engine.dispose()


def test_no_democratic_review_for_an_undisputed_application(live_server):
    enrollment = _application(live_server, SHANTOU, "440507", 301)
    before = _state(live_server, enrollment)
    refused = _decide(live_server, enrollment, "DEMOCRATIC_REVIEW")
    assert refused["enrollment"] is None and refused["errors"][0]["code"] == "INVALID_TRANSITION"
    assert "对没有争议的救助申请家庭不再进行民主评议" in refused["errors"][0]["message"]
    assert refused["errors"][0]["field"] == "action"
    after = _state(live_server, enrollment)
    assert after[:2] == before[:2] and "democratic_review_on" not in after[0]  # nothing written
    # straight on to REVIEW, with no democratic review
    assert _decide(live_server, enrollment, "REVIEW") == {"enrollment": {"status": "REVIEWED"}, "errors": []}


def test_a_disputed_application_is_reviewed_democratically_before_review(live_server):
    enrollment = _application(live_server, SHANTOU, "440507", 303)
    disputed = _decide(live_server, enrollment, "DISPUTE")
    assert disputed == {"enrollment": {"status": "VERIFYING"}, "errors": []}
    assert _state(live_server, enrollment)[0]["dispute_raised_on"] == dt.date.today().isoformat()
    twice = _decide(live_server, enrollment, "DISPUTE")
    assert twice["errors"][0]["code"] == "INVALID_TRANSITION"
    steps = _state(live_server, enrollment)[1]
    early = _decide(live_server, enrollment, "REVIEW")
    assert early["enrollment"] is None and early["errors"][0]["code"] == "INVALID_TRANSITION"
    assert "needs its democratic review" in early["errors"][0]["message"]
    assert _state(live_server, enrollment)[1] == steps  # nothing written
    held = _decide(live_server, enrollment, "DEMOCRATIC_REVIEW")
    assert held == {"enrollment": {"status": "VERIFYING"}, "errors": []}
    assert _state(live_server, enrollment)[0]["democratic_review_on"] == dt.date.today().isoformat()
    assert _decide(live_server, enrollment, "REVIEW") == {"enrollment": {"status": "REVIEWED"}, "errors": []}
    # a dispute once the application is reviewed has no step left to gate
    late = _decide(live_server, enrollment, "DISPUTE")
    assert late["errors"][0]["code"] == "INVALID_TRANSITION"


def test_a_province_without_the_rule_is_told_it_is_not_configured(live_server, gansu_token):
    enrollment = _application(live_server, LANZHOU, "620102", 305, gansu_token)
    assert _decide(live_server, enrollment, "DISPUTE", gansu_token)["errors"] == []
    refused = _decide(live_server, enrollment, "DEMOCRATIC_REVIEW", gansu_token)
    assert refused["errors"][0]["code"] == "INVALID_TRANSITION"
    assert "not configured: workflow.democratic_review" in refused["errors"][0]["message"]
    assert _decide(live_server, enrollment, "REVIEW", gansu_token) == {"enrollment": {"status": "REVIEWED"},
                                                                       "errors": []}
