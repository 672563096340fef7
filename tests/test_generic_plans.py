"""The plans PostgreSQL keeps for the page loaders' prepared statements read what a page needs, not a region.

A pooled connection keeps the statements the driver prepared (``db.close_session`` ends read-only requests with
COMMIT), and after five executions PostgreSQL may run a statement with a *generic* plan, made without the
parameter values. For the scope predicate's region range such a plan cannot know how many households the range
holds. The member count of a HouseholdList page once got a plan that read every household of the range (20,239
rows sorted, 5 ms, for a page of 50), and so did the households of a page's persons when they were joined to
their memberships in one statement (``reads.households_of_persons`` now reads them by key, through
``households_statement``). This test runs each household-keyed loader's statement with a forced generic plan
on a seeded province and counts the household rows the plan reads.
"""

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.dialects import postgresql

from aidgraph.core.access.scope import Scope
from aidgraph.core.graph import reads
from tests.conftest import seeded_province

HOUSEHOLDS = 3000


@pytest.fixture(scope="module")
def seeded(request, tmp_path_factory):
    url, ids = seeded_province("postgres", request, tmp_path_factory, HOUSEHOLDS, analyze=True)
    return url, ids[:50]


def _household_rows_read(url: str, statement) -> int:
    """Run ``statement`` as a prepared statement under a forced generic plan; the household rows its plan read."""
    compiled = statement.compile(dialect=postgresql.psycopg.dialect(),
                                 compile_kwargs={"render_postcompile": True})
    names: list[str] = []

    def number(match: re.Match) -> str:
        names.append(match.group(1))
        return f"${len(names)}"

    text = re.sub(r"%\((\w+)\)s", number, compiled.string)
    values = [compiled.params[n] for n in names]
    params = sql.SQL(", ").join(sql.Literal(v) for v in values)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(sql.SQL("PREPARE page_loader AS {}").format(sql.SQL(text)))  # type: ignore[arg-type]
        plan = conn.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page_loader({})").format(params)
                            ).fetchone()[0][0]["Plan"]

    def household_rows(node: dict) -> int:
        own = node["Actual Rows"] * node["Actual Loops"] if node.get("Relation Name") == "household" else 0
        return int(own + sum(household_rows(child) for child in node.get("Plans", ())))

    return household_rows(plan)


@pytest.mark.parametrize("loader", [reads.member_counts_statement, reads.members_statement,
                                    reads.households_statement])
def test_a_page_loader_reads_the_pages_households_under_a_generic_plan(seeded, loader):
    url, keys = seeded
    assert len(keys) == 50
    read = _household_rows_read(url, loader(Scope.of(["44"]), keys))
    assert read <= len(keys), f"the generic plan read {read} household rows for {len(keys)} keys"
