"""DataLoaders keep the cost of a page constant: the number of SQL statements does not grow with page size."""

from __future__ import annotations

import datetime as dt

import pytest

from aidgraph.core.storage.db import StatementCounter
from aidgraph.core.graph.idnumber import make

TOWNSHIP = "440106011"
VILLAGE = "440106011012"  # 祥龙社区居委会

PAGE_WITH_MEMBERS = """
query Page($first: Int) {
  households(regionCode: "440106011", first: $first) {
    totalCount
    edges { node { id householdNumber memberCount categories warningLevel region { code name }
      head { id name idNumber }
      members { relationToHead person { id name idNumber age households { id } } }
      economics { perCapitaMonthlyIncome }
      enrollments { id status program { key } }
      alerts { id level } } }
  }
}
"""


@pytest.fixture(scope="module")
def thirty_households(live_server):
    for i in range(30):
        members = [{"name": f"户主{i}", "idNumber": make("440106", dt.date(1960 + i, 1, 1), 2 * i + 1),
                    "relationToHead": "SELF"},
                   {"name": f"配偶{i}", "idNumber": make("440106", dt.date(1961 + i, 1, 1), 2 * i + 2),
                    "relationToHead": "SPOUSE"}]
        result = live_server.data("RegisterHousehold", {"input": {"regionCode": VILLAGE, "members": members}})
        assert result["registerHousehold"]["errors"] == []


def count_statements(live_server, query: str, variables: dict) -> int:
    """Statements the request sends: the fewest of three runs, because the counter sees the whole engine and the
    server's search indexer polls the outbox on it in the background (an extra statement now and then)."""
    engine = live_server.components.engine.sync_engine
    counts = []
    for _ in range(3):
        with StatementCounter(engine) as counter:
            response = live_server.post(query, variables)
            assert response.status_code == 200 and "errors" not in response.json(), response.text
        counts.append(counter.count)
    return min(counts)


def test_statements_do_not_grow_with_page_size(live_server, thirty_households):
    # 15 households of this nested page is as much as the cost limit lets one request ask for (each member's
    # households list counts ten items per member): the statement count must be the same as for 3.
    small = count_statements(live_server, PAGE_WITH_MEMBERS, {"first": 3})
    large = count_statements(live_server, PAGE_WITH_MEMBERS, {"first": 15})
    assert large == small, f"{small} statements for 3 households, {large} for 15"
    # authentication 3, page 2, loaders 21 (economics with the province deductions and the rule inputs:
    # relationships, emergencies), the disclosure audit row and its seal into the hash chain 6, and on PostgreSQL
    # the question whether the request's transaction wrote anything (core/storage/db.close_session) 1
    assert large <= 33


def test_contract_household_list_is_constant_too(live_server, thirty_households):
    from tests.live import OPERATION_TEXT

    query = OPERATION_TEXT["HouseholdList"]
    small = count_statements(live_server, query, {"regionCode": TOWNSHIP, "first": 5})
    large = count_statements(live_server, query, {"regionCode": TOWNSHIP, "first": 30})
    assert large == small
