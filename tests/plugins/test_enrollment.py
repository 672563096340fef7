"""The enrolment workflow on SQLite and PostgreSQL: the state machine, permissions, township delegation,
conflict of interest, amounts on the decision date, payments, transfer, reviews and gradual exit, idempotency,
and the rows every step writes (step, aid chain, audit, outbox)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from aidgraph.core.workflow import enrollment as wf
from aidgraph.core.access.actor import Actor, RoleGrant, system_actor
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.errors import DomainError
from aidgraph.core.storage.models import (
    AidChainEvent,
    AppUser,
    AuditLog,
    EconomicItem,
    Enrollment,
    EnrollmentStep,
    IdempotencyRecord,
    Outbox,
    Payment,
)
from aidgraph.core.access.scope import Scope
from tests.plugins.db import add_household, relate

ON = dt.date(2025, 6, 1)
SHANTOU = "440507001001"   # Guangdong, not Pearl River Delta: counties approve
GUANGZHOU = "440106001001"  # Pearl River Delta: approval delegated to townships (GD-2021)
FUZHOU = "350102001001"    # Fujian: delegated everywhere (FJ-2021)
SYSTEM = system_actor("tester")


def officer(name: str, prefix: str, actions=("read", "apply", "review", "approve", "disburse")) -> Actor:
    """An actor holding the workflow permissions in region ``prefix`` (as Casbin would decide them)."""
    def decide(actor, action, object_type):
        return Scope.of([prefix]) if action in actions else Scope.nothing()

    return Actor(username=name, display_name=name, grants=(RoleGrant("township_caseworker", prefix),), _decide=decide)


def run(db_url, work):
    async def main():
        engine = make_async_engine(db_url)
        try:
            async with async_session_factory(engine)() as session:
                try:
                    result = await work(session)
                    await session.commit()
                    return result
                except BaseException:
                    await session.rollback()
                    raise
        finally:
            await engine.dispose()

    return asyncio.run(main())


def count(sync_engine, model, *where) -> int:
    with session_scope(sync_engine) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def step(db_url, engine, enrollment_id, action, actor=SYSTEM, on=ON):
    return run(db_url, lambda s: wf.decide_enrollment(s, actor, engine, enrollment_id=enrollment_id, action=action,
                                                      on=on))


def apply(db_url, engine, household_id, program, actor=SYSTEM, **kw):
    return run(db_url, lambda s: wf.apply_for_aid(s, actor, engine, household_id=household_id, program_key=program,
                                                  on=ON, **kw))


def error_of(call) -> DomainError:
    with pytest.raises(DomainError) as err:
        call()
    return err.value


@pytest.fixture
def hh(sync_engine):
    """Fresh households for each test (in the module's database): no test sees another's enrolments, so the
    tests pass alone, in any order and split across workers."""
    with session_scope(sync_engine) as s:
        data = {
            "poor": add_household(s, SHANTOU, [{"age": 45, "employment_status": "UNEMPLOYED", "labour_capacity": "FULL"}, {"age": 12}], wages=500),
            "gz": add_household(s, GUANGZHOU, [{"age": 45}], wages=300),
            "fj": add_household(s, FUZHOU, [{"age": 45}], wages=300),
            "edge": add_household(s, SHANTOU, [{"age": 45}, {"age": 44}], wages=2 * 1500, receiving=["dibao_edge"]),
            "review": add_household(s, SHANTOU, [{"age": 40, "employment_status": "EMPLOYED"}], wages=700),
            "ill": add_household(s, SHANTOU, [{"age": 30, "hospitalised": True}], hukou="620102",
                                 emergencies=[("MAJOR_ILLNESS", dt.date(2025, 5, 20))]),
            "related": add_household(s, SHANTOU, [{"age": 40}], wages=400),
            "approver": add_household(s, "440507001003", [{"age": 50}, {"age": 48}], wages=9000),
        }
        # the approver (person 0 of 'approver') is the spouse of someone whose child heads 'related': 2 steps
        a, spouse = data["approver"].person_ids
        relate(s, spouse, data["related"].person_ids[0], "PARENT")
    return data


@pytest.fixture
def conflicted(sync_engine, hh) -> str:
    """The user name of an official who is the approver of ``hh`` (2 steps from the 'related' applicant)."""
    username = f"conflicted-{hh['approver'].household_id}"
    with session_scope(sync_engine) as s:
        s.add(AppUser(username=username, display_name=username, person_id=hh["approver"].person_ids[0]))
    return username


def to_active(db_url, engine, household_id, program="dibao"):
    """An enrolment of the household brought through every step to ACTIVE by the system actor."""
    e = apply(db_url, engine, household_id, program)
    for action in ("START_VERIFICATION", "REVIEW", "APPROVE", "ACTIVATE"):
        e = step(db_url, engine, e.id, action)
    return e


def test_full_lifecycle_writes_every_row(db_url, sync_engine, engine, hh):
    hid = hh["poor"].household_id
    e = apply(db_url, engine, hid, "dibao", note="一门受理")
    assert e.status == "APPLIED" and e.province_code == "44" and e.version == 1
    for action, status in (("START_VERIFICATION", "VERIFYING"), ("REVIEW", "REVIEWED"), ("APPROVE", "APPROVED"),
                           ("ACTIVATE", "ACTIVE")):
        e = step(db_url, engine, e.id, action)
        assert e.status == status
    # GD: 500 wages, nobody employed (no employment-cost deduction): 250 per capita; gap (1200 - 250) x 2
    assert float(e.monthly_amount) == pytest.approx(1900) and e.category == "DIBAO"
    assert e.start_date == ON and e.version == 5
    # GD-2021: wage income and a working-age member able to work: unstable income, reviewed every six months
    assert e.next_review_date == dt.date(2025, 12, 1)
    assert count(sync_engine, EnrollmentStep, EnrollmentStep.enrollment_id == e.id) == 5
    assert count(sync_engine, Outbox, Outbox.entity == "ENROLLMENT", Outbox.entity_id == e.id) == 5
    assert count(sync_engine, Outbox, Outbox.entity_id == e.id, Outbox.version == 5) == 1
    assert count(sync_engine, AuditLog, AuditLog.object_type == "enrollment", AuditLog.object_id == str(e.id)) == 5
    assert count(sync_engine, Payment, Payment.enrollment_id == e.id, Payment.period == "2025-06") == 1
    kinds = {k for (k,) in _chain(sync_engine, hid)}
    assert {"APPLICATION", "VERIFICATION", "DECISION", "PAYMENT"} <= kinds
    # the employment plugin's lifecycle hook referred the zero-employment household (分类转办)
    assert "REFERRAL" in kinds


def _chain(sync_engine, hid):
    with session_scope(sync_engine) as s:
        return s.execute(select(AidChainEvent.kind).where(AidChainEvent.household_id == hid)).all()


def test_transition_not_allowed_writes_nothing(db_url, sync_engine, engine, hh):
    e = apply(db_url, engine, hh["gz"].household_id, "dibao")
    before = count(sync_engine, EnrollmentStep)
    err = error_of(lambda: step(db_url, engine, e.id, "APPROVE"))
    assert err.errors[0].code.value == "INVALID_TRANSITION" and "allowed: DISPUTE, REJECT, START_VERIFICATION, WITHDRAW" in str(err)
    assert count(sync_engine, EnrollmentStep) == before
    err = error_of(lambda: step(db_url, engine, e.id, "ACTIVATE"))
    assert err.errors[0].code.value == "INVALID_TRANSITION"
    assert step(db_url, engine, e.id, "WITHDRAW").status == "WITHDRAWN"
    assert error_of(lambda: step(db_url, engine, e.id, "START_VERIFICATION")).errors[0].code.value == "INVALID_TRANSITION"


def test_emergency_aid_is_approved_first(db_url, engine, hh):
    # a Gansu-hukou resident hospitalised in Shantou: temporary aid where it happens, aid first
    e = apply(db_url, engine, hh["ill"].household_id, "temporary_emergency")
    e = step(db_url, engine, e.id, "APPROVE")
    assert e.status == "APPROVED" and e.monthly_amount is None
    assert e.details["one_off_amount"] == pytest.approx(3 * 1200)
    assert step(db_url, engine, e.id, "ACTIVATE").status == "ACTIVE"


def test_unknown_program_and_program_not_enabled(db_url, engine, hh, copy_settings, configs):
    err = error_of(lambda: apply(db_url, engine, hh["poor"].household_id, "no_such_program"))
    assert err.errors[0].code.value == "VALIDATION" and err.errors[0].field == "programKey"
    assert "unknown program key 'no_such_program'" in str(err)
    path = configs / "44" / "province.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('  "housing",\n', ""), encoding="utf-8")
    without_housing = PolicyEngine(copy_settings)
    err = error_of(lambda: apply(db_url, without_housing, hh["poor"].household_id, "housing"))
    assert err.errors[0].code.value == "VALIDATION" and "not enabled in province 44" in str(err)
    assert error_of(lambda: apply(db_url, engine, 10**9, "dibao")).errors[0].code.value == "NOT_FOUND"


def test_permissions_scope_and_township_delegation(db_url, engine, hh):
    # out of scope: NOT_FOUND, as if it did not exist
    fz_officer = officer("fz", "350102001")
    err = error_of(lambda: apply(db_url, engine, hh["gz"].household_id, "tekun", actor=fz_officer))
    assert err.errors[0].code.value == "NOT_FOUND"
    # a village assistant may read but not apply
    reader = officer("reader", "440507", actions=("read",))
    assert error_of(lambda: apply(db_url, engine, hh["related"].household_id, "employment", actor=reader)
                    ).errors[0].code.value == "FORBIDDEN"

    def to_reviewed(household_id, program="dibao"):
        e = apply(db_url, engine, household_id, program)
        step(db_url, engine, e.id, "START_VERIFICATION")
        return step(db_url, engine, e.id, "REVIEW")

    # Shantou (GD outside the Pearl River Delta): a township approver is not enough
    e = to_reviewed(hh["review"].household_id)
    township = officer("st-township", "440507001")
    err = error_of(lambda: step(db_url, engine, e.id, "APPROVE", actor=township))
    assert err.errors[0].code.value == "FORBIDDEN" and "not delegated to townships" in str(err)
    county = officer("st-county", "440507")
    assert step(db_url, engine, e.id, "APPROVE", actor=county).status == "APPROVED"
    # Guangzhou (Pearl River Delta) and Fujian: townships approve dibao
    gz = to_reviewed(hh["gz"].household_id)
    assert step(db_url, engine, gz.id, "APPROVE", actor=officer("gz-township", "440106001")).status == "APPROVED"
    fj = to_reviewed(hh["fj"].household_id)
    assert step(db_url, engine, fj.id, "APPROVE", actor=officer("fj-township", "350102001")).status == "APPROVED"
    # without the approve permission at all
    nope = officer("no-approve", "440507", actions=("read", "apply", "review"))
    e2 = to_reviewed(hh["ill"].household_id, "temporary")
    assert error_of(lambda: step(db_url, engine, e2.id, "APPROVE", actor=nope)).errors[0].code.value == "FORBIDDEN"


def test_conflict_of_interest_needs_the_next_level(db_url, engine, hh, conflicted):
    e = apply(db_url, engine, hh["related"].household_id, "dibao")
    step(db_url, engine, e.id, "START_VERIFICATION")
    step(db_url, engine, e.id, "REVIEW")
    official = officer(conflicted, "440507")  # AppUser.person_id: 2 steps from the applicant
    err = error_of(lambda: step(db_url, engine, e.id, "APPROVE", actor=official))
    assert err.errors[0].code.value == "FORBIDDEN" and "关系保/人情保" in str(err) and "next level up" in str(err)
    assert step(db_url, engine, e.id, "APPROVE", actor=officer("city", "4405")).status == "APPROVED"


def test_idempotency_key_returns_the_first_result(db_url, sync_engine, engine, hh):
    hid = hh["edge"].household_id
    first = apply(db_url, engine, hid, "education", idempotency_key="k-1")
    again = apply(db_url, engine, hid, "education", idempotency_key="k-1")
    assert again.id == first.id
    assert count(sync_engine, Enrollment, Enrollment.household_id == hid, Enrollment.program_key == "education") == 1
    assert count(sync_engine, IdempotencyRecord, IdempotencyRecord.key == "k-1") == 1
    # a second application without the key is refused: one open case per program
    assert error_of(lambda: apply(db_url, engine, hid, "education")).errors[0].code.value == "VALIDATION"


def test_transfer_from_near_dibao_without_reapplying(db_url, sync_engine, engine, hh):
    hid = hh["edge"].household_id
    with session_scope(sync_engine) as s:
        source_id = s.execute(select(Enrollment.id).where(Enrollment.household_id == hid,
                                                          Enrollment.program_key == "dibao_edge")).scalar_one()
    # still near-dibao (1500 per capita): does not meet the dibao criteria
    err = error_of(lambda: run(db_url, lambda s: wf.transfer_enrollment(s, SYSTEM, engine, enrollment_id=source_id,
                                                                         to_program="dibao", on=ON)))
    assert err.errors[0].code.value == "VALIDATION" and "does not meet the dibao criteria" in str(err)
    # income falls to a verified nothing (deleting the data would be missing data, not zero income): the
    # household now meets the dibao criteria and moves over with consent, no new application
    with session_scope(sync_engine) as s:
        s.query(EconomicItem).filter(EconomicItem.household_id == hid, EconomicItem.kind == "WAGE").update({"amount": 0})
    new = run(db_url, lambda s: wf.transfer_enrollment(s, SYSTEM, engine, enrollment_id=source_id, to_program="dibao",
                                                        note="本人同意", on=ON))
    assert new.status == "APPROVED" and new.transferred_from_id == source_id
    assert float(new.monthly_amount) == pytest.approx(1200 * 2)
    with session_scope(sync_engine) as s:
        assert s.get(Enrollment, source_id).status == "ENDED"
    assert ("REFERRAL",) in _chain(sync_engine, hid)
    err = error_of(lambda: run(db_url, lambda s: wf.transfer_enrollment(s, SYSTEM, engine, enrollment_id=source_id,
                                                                         to_program="dibao", on=ON)))
    assert err.errors[0].code.value == "INVALID_TRANSITION"


def test_review_cycle_and_gradual_exit(db_url, sync_engine, engine, hh):
    hid = hh["review"].household_id
    e = to_active(db_url, engine, hid)
    eid = e.id
    # no member able to work is recorded (labour capacity unknown): a stable household, reviewed yearly (GD-2021)
    assert e.next_review_date == dt.date(2026, 6, 1)
    due_day = dt.date(2026, 6, 2)
    due = run(db_url, lambda s: wf.due_reviews(s, Scope.of(["4405"]), due_day))
    assert eid in [d.id for d in due]
    assert run(db_url, lambda s: wf.due_reviews(s, Scope.of(["4401"]), due_day)) == []
    # a review with unchanged economic status keeps the benefit
    same = run(db_url, lambda s: wf.conduct_review(s, SYSTEM, engine, enrollment_id=eid, on=ON))
    assert same.status == "ACTIVE" and same.monthly_amount == e.monthly_amount
    # income rises above the standard after work: six months of gradual exit (GD-2021)
    with session_scope(sync_engine) as s:
        s.add(EconomicItem(household_id=hid, kind="WAGE", source="tax", amount=3000 * 12,
                           period_start=dt.date(2025, 6, 2), period_end=dt.date(2026, 6, 1)))
    exiting = run(db_url, lambda s: wf.conduct_review(s, SYSTEM, engine, enrollment_id=eid, on=due_day))
    assert exiting.status == "GRADUAL_EXIT" and exiting.gradual_exit_until == dt.date(2026, 12, 2)
    assert exiting.monthly_amount == e.monthly_amount  # the benefit continues during the exit
    assert run(db_url, lambda s: wf.end_gradual_exits(s, SYSTEM, engine, Scope.of(["44"]), dt.date(2026, 12, 1))) == 0
    assert run(db_url, lambda s: wf.end_gradual_exits(s, SYSTEM, engine, Scope.of(["44"]), dt.date(2026, 12, 2))) == 1
    with session_scope(sync_engine) as s:
        assert s.get(Enrollment, eid).status == "ENDED"
    assert run(db_url, lambda s: wf.end_gradual_exits(s, SYSTEM, engine, Scope.of(["44"]), dt.date(2026, 12, 2))) == 0


def test_monthly_disbursement_is_set_at_a_time_and_rerunnable(db_url, sync_engine, engine, hh):
    to_active(db_url, engine, hh["poor"].household_id)
    receiving = count(sync_engine, Enrollment, Enrollment.status.in_(["ACTIVE", "GRADUAL_EXIT"]),
                      Enrollment.monthly_amount.is_not(None), Enrollment.region_code.like("44%"))
    assert receiving >= 1
    paid = run(db_url, lambda s: wf.disburse_month(s, SYSTEM, "2025-07", Scope.of(["44"])))
    assert paid == receiving
    assert count(sync_engine, Payment, Payment.period == "2025-07") == receiving
    assert run(db_url, lambda s: wf.disburse_month(s, SYSTEM, "2025-07", Scope.of(["44"]))) == 0
    err = error_of(lambda: run(db_url, lambda s: wf.disburse_month(s, SYSTEM, "July", Scope.of(["44"]))))
    assert err.errors[0].field == "period"


def test_hook_aidgraph_enrollment_changed(db_url, sync_engine, hh, copy_settings, configs):
    """Every transition notifies the province's enabled plugins inside its transaction; a plugin raising aborts it."""
    from aidgraph.core.policy.hookspecs import hookimpl
    from aidgraph.core.policy.host import build_plugin_manager

    events = []

    class Recorder:
        PLUGIN_NAME = "recorder"

        @hookimpl
        def aidgraph_enrollment_changed(self, event):
            events.append((event.program.key, event.action, event.from_status, event.to_status, event.on,
                           event.params.province_code))
            if event.action == "WITHDRAW":
                raise RuntimeError("a plugin refused the change")

    pm = build_plugin_manager(copy_settings, extra_plugins=[Recorder()], entry_points=False)
    path = configs / "44" / "province.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("enabled = [\n", 'enabled = [\n  "recorder",\n'),
                    encoding="utf-8")
    engine = PolicyEngine(copy_settings, pm)
    e = apply(db_url, engine, hh["related"].household_id, "housing")
    step(db_url, engine, e.id, "START_VERIFICATION")
    assert events == [("housing", "APPLY", None, "APPLIED", ON, "44"),
                      ("housing", "START_VERIFICATION", "APPLIED", "VERIFYING", ON, "44")]
    steps = count(sync_engine, EnrollmentStep, EnrollmentStep.enrollment_id == e.id)
    with pytest.raises(RuntimeError):
        step(db_url, engine, e.id, "WITHDRAW")
    assert count(sync_engine, EnrollmentStep, EnrollmentStep.enrollment_id == e.id) == steps
    with session_scope(sync_engine) as s:
        assert s.get(Enrollment, e.id).status == "VERIFYING"
    # a Fujian household's transitions never reach a plugin Guangdong enabled
    events.clear()
    apply(db_url, engine, hh["fj"].household_id, "housing")
    assert events == []
