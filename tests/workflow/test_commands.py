"""``aidgraph reviews run`` and ``aidgraph payments run`` as an operator runs them (the installed command, in a
subprocess, on SQLite and PostgreSQL): what they change, and that a second run changes nothing.

The 渐退期 of GD-2021 ("在其家庭成员人均收入超过当地低保标准后给予6个月渐退期") is paid for six months after the
review that starts it, and then ended by the review run."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import Enrollment, Payment
from tests.workflow.builders import (
    FUZHOU,
    GUANGZHOU,
    activate,
    add_deposit,
    add_household,
    add_income,
    counts,
)

STARTED = dt.date(2025, 6, 1)
REVIEWED = dt.date(2026, 6, 2)
EMPLOYED = {"age": 40, "employment_status": "EMPLOYED", "labour_capacity": "FULL"}
CHILD = {"age": 10, "relation_to_head": "CHILD"}
AIDGRAPH = str(Path(sys.executable).parent / "aidgraph")


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str = ""


def cli(db_url: str, *args: str, installed: bool = False) -> Ran:
    """Run the command: the installed ``aidgraph`` in a subprocess, or the same typer app in this process (the
    machine is shared; a subprocess pays the imports again)."""
    env = {"AIDGRAPH_DATABASE_URL": db_url, "COLUMNS": "200"}
    if installed:
        done = subprocess.run([AIDGRAPH, *args], env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=300, check=False)
        return Ran(done.returncode, done.stdout, done.stderr)
    from typer.testing import CliRunner

    from aidgraph.core.app.cli import app

    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.output)


def figures(output: str) -> dict[str, int]:
    return {
        name: int(value) for name, value in re.findall(r"(due|unchanged|re-priced|gradual exit|ended|not reviewed|"
                                                       r"gradual exits over and ended) (\d+)", output)}


@pytest.fixture(scope="module")
def enrolments(sync_engine, db_url):
    policy = PolicyEngine(Settings())
    made = {}
    for name, region, later_wage, pension in (("kept", GUANGZHOU, 1000, 0), ("exiting", GUANGZHOU, 4000, 0),
                                              ("ended", GUANGZHOU, 1000, 3000), ("fujian", FUZHOU, 4000, 0)):
        hid, pids = add_household(sync_engine, region, [EMPLOYED, CHILD])
        add_income(sync_engine, hid, pids[0], "WAGE", 1000, STARTED)
        add_deposit(sync_engine, hid, 2000, STARTED - dt.timedelta(days=10))
        made[name] = activate(db_url, policy, hid, "dibao", STARTED)
        add_income(sync_engine, hid, pids[0], "WAGE", later_wage, REVIEWED)
        if pension:
            add_income(sync_engine, hid, pids[0], "PENSION", pension, REVIEWED)
    return made


def status(sync_engine, eid: int) -> tuple[str, dt.date | None, dt.date | None]:
    with session_scope(sync_engine) as s:
        e = s.get(Enrollment, eid)
        return e.status, e.gradual_exit_until, e.next_review_date


def test_reviews_run_is_rerunnable(sync_engine, db_url, enrolments):
    first = cli(db_url, "reviews", "run", "--province", "44", "--as-of", str(REVIEWED), installed=True)
    assert first.returncode == 0, first.stdout + first.stderr
    assert figures(first.stdout) == {"due": 3, "unchanged": 1, "re-priced": 0, "gradual exit": 1, "ended": 1,
                                     "not reviewed": 0, "gradual exits over and ended": 0}, first.stdout
    assert status(sync_engine, enrolments["kept"]) == ("ACTIVE", None, dt.date(2026, 12, 2))
    assert status(sync_engine, enrolments["exiting"]) == ("GRADUAL_EXIT", dt.date(2026, 12, 2), None)
    assert status(sync_engine, enrolments["ended"])[0] == "ENDED"
    assert status(sync_engine, enrolments["fujian"])[0] == "ACTIVE"  # --province 44 leaves Fujian alone
    before = counts(sync_engine)
    again = cli(db_url, "reviews", "run", "--province", "44", "--as-of", str(REVIEWED))
    assert again.returncode == 0, again.stdout + again.stderr
    assert figures(again.stdout)["due"] == 0
    assert counts(sync_engine) == before


def test_payments_run_is_rerunnable_and_pays_six_months_of_gradual_exit(sync_engine, db_url, enrolments):
    kept, exiting = enrolments["kept"], enrolments["exiting"]
    for month in ("2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12", "2027-01"):
        done = cli(db_url, "payments", "run", "--month", month, "--province", "44")
        assert done.returncode == 0, done.stdout + done.stderr
        expected = 2 if month < "2027-01" else 1  # the exit is paid for the six months from July to December
        assert f"{expected} new payment(s)" in done.stdout, done.stdout
    before = counts(sync_engine)
    again = cli(db_url, "payments", "run", "--month", "2026-09", "--province", "44", installed=True)
    assert again.returncode == 0 and "0 new payment(s)" in again.stdout, again.stdout
    bad = cli(db_url, "payments", "run", "--month", "2026-13")
    assert bad.returncode == 2 and "YYYY-MM" in bad.stdout
    assert counts(sync_engine) == before
    with session_scope(sync_engine) as s:
        periods = lambda eid: sorted(s.execute(select(Payment.period).where(
            Payment.enrollment_id == eid, Payment.period >= "2026-07")).scalars())
        assert periods(exiting) == ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
        assert len(periods(kept)) == 7
        amounts = set(s.execute(select(Payment.amount).where(Payment.enrollment_id == exiting)).scalars())
        assert amounts == {s.get(Enrollment, exiting).monthly_amount}  # the benefit unchanged during the exit
        assert s.execute(select(Payment.id).where(Payment.enrollment_id == enrolments["fujian"],
                                                  Payment.period >= "2026-07")).first() is None


def test_reviews_run_ends_gradual_exits_that_are_over(sync_engine, db_url, enrolments):
    early = cli(db_url, "reviews", "run", "--province", "44", "--as-of", "2026-12-01")
    assert early.returncode == 0 and figures(early.stdout)["gradual exits over and ended"] == 0, early.stdout
    assert status(sync_engine, enrolments["exiting"])[0] == "GRADUAL_EXIT"
    over = cli(db_url, "reviews", "run", "--province", "44", "--as-of", "2026-12-02")
    assert over.returncode == 0, over.stdout + over.stderr
    assert figures(over.stdout)["gradual exits over and ended"] == 1, over.stdout
    assert status(sync_engine, enrolments["exiting"])[0] == "ENDED"
    before = counts(sync_engine)
    again = cli(db_url, "reviews", "run", "--province", "44", "--as-of", "2026-12-02")
    assert figures(again.stdout)["due"] == 0 and figures(again.stdout)["gradual exits over and ended"] == 0
    assert counts(sync_engine) == before


def test_bad_options_are_refused(db_url):
    assert cli(db_url, "reviews", "run", "--province", "4").returncode == 2
    assert cli(db_url, "reviews", "run", "--as-of", "2026-02-30").returncode == 2
    future = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert cli(db_url, "reviews", "run", "--as-of", future).returncode == 2
