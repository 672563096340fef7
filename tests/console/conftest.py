"""Fixtures of the browser tests: the demo province (``aidgraph demo --no-serve``) served live, people with
passwords, and Debian's Chromium driven by Playwright (the system browser: ``playwright install`` is never run).

Screenshots of every screen go to ``tests/console/screenshots/`` (ignored by git), with ``timings.json``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from aidgraph.core.access import passwords, users
from aidgraph.core.access.actor import RoleGrant
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import Alert, Household, Membership, Person
from tests.conftest import make_database, server_settings

CHROMIUM = os.environ.get("AIDGRAPH_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "console-test-密码-2026"


def pytest_configure(config):
    SCREENSHOTS.mkdir(exist_ok=True)


@pytest.fixture(scope="module")
def browser():
    """Module scope: Playwright's sync API keeps an event loop running in this thread while it lives, which
    would break any later test (on the same worker) that calls asyncio.run; it stops with the module."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def demo_db(request, tmp_path_factory) -> str:
    """A SQLite database holding the demo province as ``aidgraph demo`` leaves it (smaller: 800 households)."""
    from aidgraph.core.app.cli import app

    url = make_database("sqlite", request, tmp_path_factory)
    state = tmp_path_factory.mktemp("demo-state")
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--province", "44", "--households", "800"],
                                env={"AIDGRAPH_DATABASE_URL": url, "AIDGRAPH_STATE_DIR": str(state)})
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "console: http://127.0.0.1:8000/console" in output and "login: demo-admin / " in output
    demo_password = (state / "demo_password").read_text().strip()
    assert f"login: demo-admin / {demo_password}" in output
    return url


@pytest.fixture(scope="module")
def console_server(demo_db):
    from aidgraph.core.app.server import default_components
    from tests.live import run_live_server

    with run_live_server(default_components(server_settings(demo_db))) as live:
        yield live


GAPS = "query($r: String!) { eligibilityGaps(regionCode: $r, first: 1) { totalCount } }"


@pytest.fixture(scope="module")
def people(demo_db, console_server):
    """The demo administrator's password, a township caseworker in a township with open alerts and households
    the rules find eligible but not enrolled (asked of the live API), and an auditor of that township's county
    (who sees ID numbers masked)."""
    from aidgraph.core.app.demo import ensure_demo_user

    engine = make_sync_engine(demo_db)
    token = ensure_demo_user(engine, server_settings(demo_db), username="demo-admin", region_codes=("44",))
    with session_scope(engine) as session:
        candidates = [code for code, _n in session.execute(
            select(Alert.township_code, func.count()).where(Alert.status == "OPEN").group_by(Alert.township_code)
            .order_by(func.count().desc(), Alert.township_code).limit(20))]
    township = next(code for code in candidates if console_server.post(GAPS, {"r": code}, token=token)
                    .json()["data"]["eligibilityGaps"]["totalCount"] > 0)
    with session_scope(engine) as session:
        for username, grant in (("tw.caseworker", RoleGrant("township_caseworker", township)),
                                ("county.auditor", RoleGrant("auditor", township[:6]))):
            user = users.add_user(session, username, [grant], {"tw.caseworker": "镇社工", "county.auditor": "县审计员"}[username])
            passwords.set_password(session, user, PASSWORD)
        passwords.set_password(session, users.get_user(session, "demo-admin"), PASSWORD)
    engine.dispose()
    return {"township": township, "engine_url": demo_db}


def full_id_numbers(url: str, household_ids: list[int]) -> list[str]:
    engine = make_sync_engine(url)
    with session_scope(engine) as session:
        rows = session.scalars(select(Person.id_number).join(Membership, Membership.person_id == Person.id)
                               .where(Membership.household_id.in_(household_ids))).all()
    engine.dispose()
    return list(rows)


def household_outside(url: str, township: str) -> int:
    engine = make_sync_engine(url)
    with session_scope(engine) as session:
        hid = session.scalar(select(Household.id).where(~Household.region_code.startswith(township[:6]))
                             .order_by(Household.id))
    engine.dispose()
    return hid


def record_timing(name: str, seconds: float) -> None:
    path = SCREENSHOTS / "timings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = round(seconds, 3)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
