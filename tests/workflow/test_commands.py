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


@dataclass
class Step:
    """One command of the operator's sequence: what it printed, the three statuses and the row counts after it."""
    ran: Ran
    statuses: dict[str, tuple[str, dt.date | None, dt.date | None]]
    counts: dict


@pytest.fixture(scope="module")
def operator_year(sync_engine, db_url, enrolments) -> dict[str, Step]:
    """The commands an operator runs from the June 2026 review to the end of the gradual exit, in order, on this
    module's own database. Each test reads the steps it checks, so no test depends on another having run."""
    steps: dict[str, Step] = {}

    def run(name: str, *args: str, installed: bool = False) -> None:
        ran = cli(db_url, *args, installed=installed)
        steps[name] = Step(ran, {k: status(sync_engine, v) for k, v in enrolments.items()}, counts(sync_engine))

    run("review", "reviews", "run", "--province", "44", "--as-of", str(REVIEWED), installed=True)
    run("review again", "reviews", "run", "--province", "44", "--as-of", str(REVIEWED))
    for month in ("2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12", "2027-01"):
        run(f"pay {month}", "payments", "run", "--month", month, "--province", "44")
    run("pay 2026-09 again", "payments", "run", "--month", "2026-09", "--province", "44", installed=True)
    run("pay bad month", "payments", "run", "--month", "2026-13")
    run("review 2026-12-01", "reviews", "run", "--province", "44", "--as-of", "2026-12-01")
    run("review 2026-12-02", "reviews", "run", "--province", "44", "--as-of", "2026-12-02")
    run("review 2026-12-02 again", "reviews", "run", "--province", "44", "--as-of", "2026-12-02")
    return steps


def test_reviews_run_is_rerunnable(operator_year):
    first = operator_year["review"]
    assert first.ran.returncode == 0, first.ran.stdout + first.ran.stderr
    assert figures(first.ran.stdout) == {"due": 3, "unchanged": 1, "re-priced": 0, "gradual exit": 1, "ended": 1,
                                         "not reviewed": 0, "gradual exits over and ended": 0}, first.ran.stdout
    assert first.statuses["kept"] == ("ACTIVE", None, dt.date(2026, 12, 2))
    assert first.statuses["exiting"] == ("GRADUAL_EXIT", dt.date(2026, 12, 2), None)
    assert first.statuses["ended"][0] == "ENDED"
    assert first.statuses["fujian"][0] == "ACTIVE"  # --province 44 leaves Fujian alone
    again = operator_year["review again"]
    assert again.ran.returncode == 0, again.ran.stdout + again.ran.stderr
    assert figures(again.ran.stdout)["due"] == 0
    assert again.counts == first.counts


def test_payments_run_is_rerunnable_and_pays_six_months_of_gradual_exit(sync_engine, operator_year, enrolments):
    kept, exiting = enrolments["kept"], enrolments["exiting"]
    for month in ("2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12", "2027-01"):
        done = operator_year[f"pay {month}"].ran
        assert done.returncode == 0, done.stdout + done.stderr
        expected = 2 if month < "2027-01" else 1  # the exit is paid for the six months from July to December
        assert f"{expected} new payment(s)" in done.stdout, done.stdout
    again = operator_year["pay 2026-09 again"]
    assert again.ran.returncode == 0 and "0 new payment(s)" in again.ran.stdout, again.ran.stdout
    assert again.counts == operator_year["pay 2027-01"].counts
    bad = operator_year["pay bad month"]
    assert bad.ran.returncode == 2 and "YYYY-MM" in bad.ran.stdout
    assert bad.counts == again.counts
    with session_scope(sync_engine) as s:
        periods = lambda eid: sorted(s.execute(select(Payment.period).where(
            Payment.enrollment_id == eid, Payment.period >= "2026-07")).scalars())
        assert periods(exiting) == ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
        assert len(periods(kept)) == 7
        amounts = set(s.execute(select(Payment.amount).where(Payment.enrollment_id == exiting)).scalars())
        assert amounts == {s.get(Enrollment, exiting).monthly_amount}  # the benefit unchanged during the exit
        assert s.execute(select(Payment.id).where(Payment.enrollment_id == enrolments["fujian"],
                                                  Payment.period >= "2026-07")).first() is None


def test_reviews_run_ends_gradual_exits_that_are_over(operator_year):
    early = operator_year["review 2026-12-01"]
    assert early.ran.returncode == 0 and figures(early.ran.stdout)["gradual exits over and ended"] == 0, early.ran.stdout
    assert early.statuses["exiting"][0] == "GRADUAL_EXIT"
    over = operator_year["review 2026-12-02"]
    assert over.ran.returncode == 0, over.ran.stdout + over.ran.stderr
    assert figures(over.ran.stdout)["gradual exits over and ended"] == 1, over.ran.stdout
    assert over.statuses["exiting"][0] == "ENDED"
    again = operator_year["review 2026-12-02 again"]
    assert figures(again.ran.stdout)["due"] == 0 and figures(again.ran.stdout)["gradual exits over and ended"] == 0
    assert again.counts == over.counts


def test_bad_options_are_refused(db_url):
    assert cli(db_url, "reviews", "run", "--province", "4").returncode == 2
    assert cli(db_url, "reviews", "run", "--as-of", "2026-02-30").returncode == 2
    future = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert cli(db_url, "reviews", "run", "--as-of", future).returncode == 2
