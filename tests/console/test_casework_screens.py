"""The casework control screens in a real browser (Debian's Chromium through Playwright) against a live server on
the demo data: a county officer draws a random inspection sample (双随机、一公开) with inspectors per case and draws
it again from its seed, and issues a recovery order (追回) against an enrolment's payments, records an instalment and
withdraws a second order. What the page shows is checked against the database and an independent redraw.
Screenshots: tests/console/screenshots/inspection.png, inspection-error.png, recovery.png."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from decimal import Decimal

from sqlalchemy import func, select

from aidgraph.core.access import passwords, users
from aidgraph.core.access.actor import RoleGrant
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import AuditLog, CasbinRule, Enrollment, Payment, RecoveryOrder
from aidgraph.schema.relay import from_global_id, to_global_id
from tests.console.conftest import PASSWORD
from tests.console.test_console import log_in, page, ready, shot  # noqa: F401 (page: the fixture)

RECEIVING = ("ACTIVE", "GRADUAL_EXIT")
OFFICERS = ("county.officer.a", "county.officer.b")
POLICY = Path(__file__).parents[2] / "province_configs" / "44" / "policy.csv"


def _officers(url: str, county: str) -> None:
    """Two county officers of the township's county (the roster the inspectors are drawn from holds them)."""
    engine = make_sync_engine(url)
    with session_scope(engine) as session:
        for name in OFFICERS:
            if users.get_user(session, name) is None:
                user = users.add_user(session, name, [RoleGrant("county_officer", county)], "县民政局" + name[-1])
                passwords.set_password(session, user, PASSWORD)
    engine.dispose()


def _county(url: str) -> str:
    """The demo county with the most receiving cases that have been paid (the demo spreads 800 households over
    the province: a few cases per county)."""
    engine = make_sync_engine(url)
    with session_scope(engine) as session:
        county = func.substr(Enrollment.region_code, 1, 6)
        code = session.scalar(select(county).join(Payment, Payment.enrollment_id == Enrollment.id)
                              .where(Enrollment.status == "ACTIVE").group_by(county)
                              .order_by(func.count(func.distinct(Enrollment.id)).desc(), county).limit(1))
    engine.dispose()
    return code


def _said(page, prefix: str) -> str:
    """The page's answer to a mutation: the toast starting with ``prefix`` (or the error toast shown instead)."""
    page.wait_for_function("""p => [...document.querySelectorAll('[data-testid="toast"]')].some(
        m => m.textContent.startsWith(p) || m.classList.contains('error'))""", arg=prefix)
    errors = [m.inner_text() for m in page.locator('[data-testid="toast"].error').all()]
    assert not errors, errors
    return next(m.inner_text() for m in page.locator('[data-testid="toast"]').all() if m.inner_text().startswith(prefix))


def _clear_toasts(page) -> None:
    page.evaluate("() => document.querySelectorAll('[data-testid=\"toast\"]').forEach(m => m.remove())")


def _status(page, order_id: int, text: str) -> None:
    """Wait until the list, rendered again after the mutation, shows the order with ``text`` as its status."""
    page.wait_for_function("""([id, text]) => { const row = document.querySelector(`tr[data-order="${id}"]`);
        return row && row.querySelector('[data-testid="order-status"]').textContent === text; }""",
                           arg=[to_global_id("RecoveryOrder", order_id), text])


def _rows(page) -> list[tuple[int, str]]:
    return [(int(from_global_id(r.get_attribute("data-enrollment"))[1]),
             r.locator('[data-testid="inspectors"]').inner_text())
            for r in page.locator('[data-testid="sample"] tr[data-enrollment]').all()]


def test_a_county_officer_draws_a_reproducible_inspection_sample(page, console_server, people):  # noqa: F811
    url, county = console_server.url, _county(people["engine_url"])
    _officers(people["engine_url"], county)
    log_in(page, url, OFFICERS[0])
    page.goto(f"{url}/console#/inspection")
    ready(page, "/inspection")
    assert page.input_value("#draw-form input[name=county]") == county
    page.fill("#draw-form input[name=size]", "2")
    page.fill("#draw-form input[name=inspectors]", "2")
    page.click("#draw-form button[type=submit]")
    _said(page, "抽取")
    seed = page.inner_text('[data-testid="seed"]')
    assert seed == f"{county}:{dt.date.today():%Y-%m}"  # the default seed: county and month
    first = _rows(page)

    # Anyone can redraw it: the documented order, sha256(seed:case id), over the county's receiving cases.
    engine = make_sync_engine(people["engine_url"])
    with session_scope(engine) as session:
        population = session.scalars(select(Enrollment.id).where(Enrollment.region_code.startswith(county),
                                                                 Enrollment.status.in_(RECEIVING))).all()
    expected = sorted(population, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())[:2]
    assert len(population) > 2 and [i for i, _ in first] == expected
    # The inspectors: each case's first two of the county's roster (the users whose role reviews enrolments
    # everywhere in their region, granted on the county or above), in the order sha256(seed:case:username).
    with session_scope(engine) as session:
        reviewers = {line.split(",")[1].strip() for line in POLICY.read_text(encoding="utf-8").splitlines()
                     if [c.strip() for c in line.split(",")][2:] == ["enrollment", "review"]}
        roster = sorted({u for u, role, region in session.execute(select(CasbinRule.v0, CasbinRule.v1, CasbinRule.v2)
                                                                  .where(CasbinRule.ptype == "g"))
                         if role in reviewers and region and county.startswith(region)})
    assert set(OFFICERS) <= set(roster)
    for case, inspectors in first:
        assert inspectors.split("、") == sorted(
            roster, key=lambda u: hashlib.sha256(f"{seed}:{case}:{u}".encode()).hexdigest())[:2]
    shot(page, "inspection")

    _clear_toasts(page)
    page.click("#redraw")  # the same seed, the same cases and inspectors
    _said(page, "抽取")
    assert _rows(page) == first
    page.fill("#draw-form input[name=seed]", "2026年12月抽查")
    page.click("#draw-form button[type=submit]")
    page.wait_for_function("s => document.querySelector('[data-testid=\"seed\"]').textContent === s",
                           arg="2026年12月抽查")
    assert [i for i, _ in _rows(page)] == sorted(
        population, key=lambda i: hashlib.sha256(f"2026年12月抽查:{i}".encode()).hexdigest())[:2]
    with session_scope(engine) as session:
        draws = session.scalars(select(AuditLog).where(AuditLog.action == "inspection_sample",
                                                       AuditLog.actor == OFFICERS[0])).all()
        assert [d.detail["seed"] for d in draws] == [seed, seed, "2026年12月抽查"]
    engine.dispose()

    page.fill("#draw-form input[name=county]", "449999")  # no such county: the server's message, in the page
    page.click("#draw-form button[type=submit]")
    page.wait_for_selector('[data-testid="draw-error"]')
    assert "countyCode" in page.inner_text('[data-testid="draw-error"]')
    shot(page, "inspection-error")


def test_a_county_officer_recovers_aid_from_an_enrolments_payments(page, console_server, people):  # noqa: F811
    url, county = console_server.url, _county(people["engine_url"])
    _officers(people["engine_url"], county)
    engine = make_sync_engine(people["engine_url"])
    with session_scope(engine) as session:
        enrollment_id, household_id, paid = session.execute(
            select(Enrollment.id, Enrollment.household_id, func.sum(Payment.amount))
            .join(Payment, Payment.enrollment_id == Enrollment.id)
            .where(Enrollment.region_code.startswith(county), Enrollment.status == "ACTIVE")
            .group_by(Enrollment.id, Enrollment.household_id).order_by(Enrollment.id).limit(1)).one()
        before = session.scalar(select(func.count()).select_from(RecoveryOrder))
    gid = to_global_id("Enrollment", enrollment_id)
    log_in(page, url, OFFICERS[1])
    page.goto(f"{url}/console#/household?id={to_global_id('Household', household_id)}")
    ready(page, "/household")
    page.click(f'a[data-recover="{gid}"]')
    ready(page, "/recovery")
    assert page.inner_text('[data-testid="paid-total"]') == f"{Decimal(paid):,.2f}"
    assert page.locator('[data-testid="payments"] tr').count() >= 2  # a header and at least one payment

    page.fill("#issue-form input[name=amount]", str(Decimal(paid) + 1))  # more than was paid: refused, nothing written
    page.fill("#issue-form textarea[name=reason]", "隐瞒家庭成员务工收入骗取低保")
    page.click("#issue-form button[type=submit]")
    page.wait_for_selector('[data-testid="toast"].error')
    assert "amount" in page.inner_text('[data-testid="toast"].error')
    _clear_toasts(page)

    amount = min(Decimal(100), Decimal(paid))
    page.fill("#issue-form input[name=amount]", str(amount))
    page.click("#issue-form button[type=submit]")
    assert "已下达" in _said(page, "下达追回决定")
    with session_scope(engine) as session:
        order = session.scalars(select(RecoveryOrder).where(RecoveryOrder.enrollment_id == enrollment_id)
                                .order_by(RecoveryOrder.id.desc())).first()
        assert (order.amount, order.status, order.issued_by) == (amount, "ISSUED", OFFICERS[1])
    _status(page, order.id, "已下达")
    ready(page, "/recovery")
    row = page.locator(f'tr[data-order="{to_global_id("RecoveryOrder", order.id)}"]')
    row.locator("input.amount").fill("40")
    row.locator('button[data-act="record"]').click()
    assert "部分追回" in _said(page, "登记追回")
    _status(page, order.id, "部分追回")
    ready(page, "/recovery")

    # A second order, issued in error, withdrawn with the reason.
    _clear_toasts(page)
    page.fill("#issue-form input[name=amount]", "10")
    page.fill("#issue-form textarea[name=reason]", "误录")
    page.click("#issue-form button[type=submit]")
    _said(page, "下达追回决定")
    with session_scope(engine) as session:
        second = session.scalars(select(RecoveryOrder.id).where(RecoveryOrder.enrollment_id == enrollment_id)
                                 .order_by(RecoveryOrder.id.desc())).first()
    _status(page, second, "已下达")
    ready(page, "/recovery")
    row = page.locator(f'tr[data-order="{to_global_id("RecoveryOrder", second)}"]')
    row.locator("input.why").fill("复核发现录入错误")
    row.locator('button[data-act="cancel"]').click()
    assert "已撤销" in _said(page, "撤销")
    _status(page, second, "已撤销")
    ready(page, "/recovery")
    shot(page, "recovery")
    with session_scope(engine) as session:
        orders = session.scalars(select(RecoveryOrder).where(RecoveryOrder.enrollment_id == enrollment_id)
                                 .order_by(RecoveryOrder.id)).all()
        assert [(o.status, o.recovered) for o in orders[-2:]] == [("PARTIAL", Decimal("40.00")),
                                                                  ("CANCELLED", Decimal("0.00"))]
        assert session.scalar(select(func.count()).select_from(RecoveryOrder)) == before + 2
    engine.dispose()
