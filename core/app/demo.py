"""Demo and fixture accounts (a user with a role in some regions, its province's policies, a token, the demo
login's password) and the demo province's normal day (:func:`seed_demo_day`): what the console shows.

In the app floor because loading a province's Casbin policies needs the objects every plugin declares
(:func:`aidgraph.core.policy.host.casbin_objects`), which the access floor cannot know.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from aidgraph.core.access import authz, passwords, users
from aidgraph.core.access.actor import RoleGrant, system_actor
from aidgraph.core.access.authn import DEMO_USERNAME, issue_token
from aidgraph.core.access.scope import Scope
from aidgraph.core.monitoring import cycle
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.policy.host import casbin_objects
from aidgraph.core.storage.config import Settings, load_settings
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.storage.errors import DomainError
from aidgraph.core.storage.models import Alert, Enrollment, Membership, Payment
from aidgraph.core.workflow.enrollment import apply_for_aid, decide_enrollment, disburse_month
from aidgraph.schema.build import build_schema
from aidgraph.schema.context import Context
from aidgraph.schema.relay import to_global_id


def ensure_demo_user(engine: Engine, settings: Settings | None = None, username: str = DEMO_USERNAME,
                     region_codes: Iterable[str] = ("44",), ttl: str | None = None,
                     role: str = "province_admin", region_code: str | None = None) -> str:
    """A user holding ``role`` (a province administrator by default) in each region, policies loaded if
    missing, and a fresh token for it. The demo and the test fixtures call this; re-running is harmless."""
    settings = settings or load_settings()
    if region_code is not None:
        region_codes = (region_code,)
    codes = [region_codes] if isinstance(region_codes, str) else list(region_codes)
    grants = [RoleGrant(role, code) for code in codes]
    with session_scope(engine) as session:
        loaded = authz.policy_provinces(session)
        missing = sorted({code[:2] for code in codes} - loaded)
        if missing:
            authz.load_policies(session, settings.province_configs_dir, missing,
                                  authz.known_objects(casbin_objects(settings)))
        user = users.get_user(session, username)
        if user is None:
            user = users.add_user(session, username, grants, display_name="Demo administrator")
        else:
            user.active = True
            users.grant(session, username, grants)
        session.flush()
        return issue_token(settings, user, ttl)


# --- a normal day for the demo province (the console's demo data) -------------------------------------------

DEMO_PASSWORD_FILE = "demo_password"
DEMO_DAY_PROGRAMS = (("tekun", 0.5, 10), ("dibao", 0.5, 30), ("dibao_edge", 0.5, 20),
                     ("expenditure_hardship", 0.5, 6))
"""(program, share of the rules' eligible households already receiving it, at most that many). Earlier programs
come first: a household receiving tekun is not also put on dibao or near-dibao, one on dibao not on near-dibao."""
QUEUE_STEPS = ((), ("START_VERIFICATION",), ("START_VERIFICATION", "REVIEW"),
               ("START_VERIFICATION", "REVIEW", "APPROVE"))
"""Waiting enrolments left at APPLIED, VERIFYING, REVIEWED and APPROVED: the approval queue's rows."""
QUEUE_PER_PROGRAM = 4
ALERTS_DISPOSED_PER_LEVEL = 4
DEMO_BATCH = 10


@dataclass(frozen=True)
class DemoDay:
    seeded: bool
    active: dict[str, int]
    waiting: int
    payments: int
    alerts_disposed: int
    medical_claims: int


def demo_password(settings: Settings) -> str:
    """The demo login's password: generated once per state directory (outside the repository), mode 0600."""
    path = Path(settings.state_dir) / DEMO_PASSWORD_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write("demo-" + secrets.token_urlsafe(9))
    return path.read_text().strip()


def ensure_demo_login(engine: Engine, settings: Settings, username: str = DEMO_USERNAME) -> str:
    """Give the demo user its password (kept in the state directory) unless it has one; returns the password."""
    password = demo_password(settings)
    with session_scope(engine) as session:
        user = users.get_user(session, username)
        if user is not None and not passwords.verify(user, password):
            passwords.set_password(session, user, password)
    return password


def seed_demo_day(settings: Settings, province: str, today: dt.date | None = None) -> DemoDay:
    """What a province's console shows on a normal day, decided by the rules through the enrolment workflow:
    households receiving tekun, dibao, near-dibao and expenditure-hardship aid (applied, verified, reviewed,
    approved and activated, with their payments and aid chains), enrolments waiting
    at each step of the approval queue, and some alerts disposed (verified, no action needed). Written in small
    transactions (each household's steps whole); a province that already has enrolments is left as it is, so
    running the demo again changes nothing (an interrupted first run is not completed later: seed afresh)."""
    work = _seed_demo_day(settings, province, today or dt.date.today())
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(1) as pool:  # called from a thread that runs a loop already (a test's browser driver)
        return pool.submit(asyncio.run, work).result()


async def _seed_demo_day(settings: Settings, province: str, today: dt.date) -> DemoDay:
    policy = PolicyEngine(settings)
    actor = system_actor("demo")
    engine = make_async_engine(settings.database_url)
    sessions = async_session_factory(engine)
    start = today  # the synthetic households exist from the seed's day on: every step is taken today
    active: dict[str, int] = {}
    waiting = payments = disposed = 0
    try:
        async with sessions() as session:
            existing = await session.scalar(select(func.count()).select_from(Enrollment).where(
                Scope.of([province]).predicate(Enrollment.region_code)))
            if existing:
                return DemoDay(False, {}, 0, 0, 0, 0)
            _total, gaps = await policy.gaps(session, region_code=province, on=start)
        taken: set[int] = set()
        plan: list[tuple[str, int, tuple[str, ...], dt.date]] = []
        for program, share, most in DEMO_DAY_PROGRAMS:
            ids = [h for h in gaps.filter(gaps["program"] == program)["household_id"].to_list() if h not in taken]
            cut = int(len(ids) * share)
            receiving, queue = ids[:min(most, cut)], ids[cut:cut + QUEUE_PER_PROGRAM]
            taken.update(receiving + queue)
            plan += [(program, h, ("START_VERIFICATION", "REVIEW", "APPROVE", "ACTIVATE"), start) for h in receiving]
            plan += [(program, h, QUEUE_STEPS[i % len(QUEUE_STEPS)], today) for i, h in enumerate(queue)]
        # Small transactions (each household's steps whole): the audit chain is sealed at every commit.
        for offset in range(0, len(plan), DEMO_BATCH):
            async with sessions() as session:
                async with session.begin():
                    for program, household_id, steps, on in plan[offset:offset + DEMO_BATCH]:
                        enrollment = await apply_for_aid(session, actor, policy, household_id=household_id,
                                                         program_key=program, note="演示 demo", on=on)
                        status = "APPLIED"
                        try:
                            for action in steps:
                                await decide_enrollment(session, actor, policy, enrollment_id=enrollment.id,
                                                        action=action, note="演示 demo", on=on)
                                status = enrollment.status
                        except DomainError:
                            pass  # the rules said no on that day: it waits in the queue like a real case
                        if status == "ACTIVE":
                            active[program] = active.get(program, 0) + 1
                        else:
                            waiting += 1
        async with sessions() as session:  # this month's payments (activation paid the first one)
            async with session.begin():
                await disburse_month(session, actor, f"{today:%Y-%m}", Scope.of([province]))
                payments = (await session.execute(select(func.count()).select_from(Payment).where(
                    Payment.household_id.in_([h for _p, h, _s, _o in plan])))).scalar_one()
        disposed = await _dispose_some_alerts(sessions, actor, policy, province)
        claims = await _settle_some_claims(settings, policy, sessions, actor, province, today)
    finally:
        await engine.dispose()
    return DemoDay(True, active, waiting, payments, disposed, claims)


SETTLE = """mutation($input: MedicalClaimInput!) { settleMedicalAid(input: $input) {
  claim { category aidAmount } errors { field message code } } }"""
DEMO_CLAIMS = 8
"""Hospital claims settled for heads of households receiving dibao or tekun (medical aid, 医疗救助): the
synthetic bills below are demo data; the ratio, deductible and cap applied are the province's rules."""


async def _settle_some_claims(settings: Settings, policy, sessions, actor, province: str, today: dt.date) -> int:
    """Through the public mutation (the medical plugin's settleMedicalAid), run in process: the claims, their
    audit and aid-chain rows are exactly what the console's form would write."""
    async with sessions() as session:
        heads = (await session.execute(
            select(Membership.person_id).join(Enrollment, Enrollment.household_id == Membership.household_id)
            .where(Enrollment.status == "ACTIVE", Enrollment.program_key.in_(["dibao", "tekun"]),
                   Scope.of([province]).predicate(Enrollment.region_code), Membership.relation_to_head == "SELF",
                   Membership.valid_to.is_(None))
            .order_by(Membership.household_id).limit(DEMO_CLAIMS))).scalars().all()
    if not heads:
        return 0
    schema = build_schema(settings=settings, pm=policy.pm)
    settled = 0
    for i, person_id in enumerate(heads):
        context = Context(actor=actor, settings=settings, session_factory=sessions, programs=policy.catalogue(),
                          policy=policy)
        cost = 12_000 + 4_500 * i
        try:
            result = await schema.execute(SETTLE, context_value=context, variable_values={"input": {
                "personId": to_global_id("Person", person_id), "admissionDate": today.isoformat(),
                "compliantCost": cost, "insurancePaid": round(cost * 0.55, 2), "majorDisease": i % 3 == 0,
                "idempotencyKey": f"demo-claim-{person_id}"}})
        finally:
            await context.close()
        if not result.errors and result.data and not result.data["settleMedicalAid"]["errors"]:
            settled += 1
    return settled


async def _dispose_some_alerts(sessions, actor, policy, province: str) -> int:
    """A few open alerts of each level that has at least eight: verified, and half of those closed as needing
    no action; every level keeps most of its alerts open for the inbox (verification runs the rules: ~0.3 s)."""
    async def verify(s, household_id: int):
        return await cycle.policy_verification(s, policy, household_id)

    async with sessions() as session:
        rows = (await session.execute(select(Alert.id, Alert.level).where(
            Scope.of([province]).predicate(Alert.region_code), Alert.status == "OPEN").order_by(Alert.id))).all()
    by_level: dict[str, list[int]] = {}
    for alert_id, level in rows:
        by_level.setdefault(level, []).append(alert_id)
    disposed = 0
    for level, ids in sorted(by_level.items()):
        if len(ids) < 8:
            continue
        chosen = ids[-ALERTS_DISPOSED_PER_LEVEL:]
        for offset in range(0, len(chosen), DEMO_BATCH):
            async with sessions() as session:
                async with session.begin():
                    for i, alert_id in enumerate(chosen[offset:offset + DEMO_BATCH], start=offset):
                        await cycle.dispose_alert(session, actor, alert_id, "START_VERIFICATION",
                                                  "演示：入户核查 demo visit", verify=verify)
                        if i % 2 == 0:
                            await cycle.dispose_alert(session, actor, alert_id, "NO_ACTION_NEEDED",
                                                      "演示：核查后无需救助 demo: no aid needed", verify=verify)
                        disposed += 1
    return disposed
