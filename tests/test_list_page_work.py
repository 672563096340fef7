"""The list page's statement does the work of its page, not of its region, on SQLite as on PostgreSQL.

HouseholdList reads a page's keys, each household's head, member count and warning level in one statement
(``reads.household_list_page``). SQLite evaluates a correlated subquery of a select list *before* the
``ORDER BY ... LIMIT`` it sits under; when the head lookup was a column beside the keys, it ran once for every
household of the listed region (2,125 for a city of the 20,000-household benchmark: 7.0 ms for a page of 50,
against 0.44 ms now). The test counts the virtual-machine instructions SQLite executes for the statement
(``set_progress_handler``), for the first page of a province of 2,000 households and for the last page, where
only the page's households are left after the cursor: the first page may cost a little more (the keys of the
whole region are still sorted), but not in proportion to the region.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.dialects import sqlite as sqlite_dialect

from aidgraph.core.access.scope import Scope
from aidgraph.core.graph import reads
from tests.conftest import seeded_province

HOUSEHOLDS = 2000
PAGE = 50


@pytest.fixture(scope="module")
def seeded(request, tmp_path_factory):
    url, ids = seeded_province("sqlite", request, tmp_path_factory, HOUSEHOLDS)
    return url.removeprefix("sqlite:///"), ids


def _page_statement(after_id: int | None) -> str:
    scope = Scope.of(["44"])
    _count, page = reads.household_list_statements(scope, scope, scope, "44", [], PAGE, after_id)
    return str(page.compile(dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}))


def _instructions(path: str, statement: str) -> tuple[int, int]:
    """(virtual-machine instructions in thousands, rows) of one run of ``statement``."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    with sqlite3.connect(path) as conn:
        conn.set_progress_handler(tick, 1000)
        rows = conn.execute(statement).fetchall()
    return steps, len(rows)


def test_the_list_page_statement_does_the_work_of_its_page_not_of_its_region(seeded):
    path, ids = seeded
    assert len(ids) == HOUSEHOLDS
    first, first_rows = _instructions(path, _page_statement(None))
    last, last_rows = _instructions(path, _page_statement(ids[-(PAGE + 1) - 1]))
    assert first_rows == last_rows == PAGE + 1
    assert first <= 3 * max(last, 1), (f"the first page took {first}k instructions, the last {last}k: the first "
                                       f"did work for each of the region's {HOUSEHOLDS} households")
