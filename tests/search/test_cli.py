"""``aidgraph reindex`` and ``aidgraph index`` (once and ``--verify``) against an osmem-server clone."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from aidgraph.core.app.cli import app
from aidgraph.core.search import indexes
from aidgraph.core.search.client import make_client
from aidgraph.core.search.mapping import DEFAULT_ALIAS
from aidgraph.core.search.rebuild import ForeignIndexError
from aidgraph.core.search.runtime import open_search
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.identity import database_identity
from tests.conftest import make_database, server_settings
from tests.search.conftest import add_person


@pytest.fixture
def env(osmem_clone, db_url, graph, tmp_path, monkeypatch):
    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", db_url)
    monkeypatch.setenv("AIDGRAPH_OPENSEARCH_URL", osmem_clone.url)
    monkeypatch.setenv("AIDGRAPH_STATE_DIR", str(tmp_path))
    return osmem_clone


def test_reindex_index_and_verify_commands(env, graph, graph_engine):
    runner = CliRunner()
    result = runner.invoke(app, ["reindex", "--batch-size", "20"])
    assert result.exit_code == 0, result.output
    assert "docs/s" in result.output and "aidgraph ->" in result.output
    client = make_client(env.url)
    total = client.count(index=DEFAULT_ALIAS)["count"]
    with session_scope(graph_engine) as s:
        pid = add_person(s, "440106003", "命令行").id
    result = runner.invoke(app, ["index"])
    assert result.exit_code == 0, result.output
    assert "still pending 0" in " ".join(result.output.split())
    client.indices.refresh(index=DEFAULT_ALIAS)
    assert client.count(index=DEFAULT_ALIAS)["count"] == total + 1
    client.delete(index=DEFAULT_ALIAS, id=f"PERSON:{graph.persons['王五']}", refresh=True)
    result = runner.invoke(app, ["index", "--verify", "--no-repair"])
    assert result.exit_code == 1 and "person" in result.output
    result = runner.invoke(app, ["index", "--verify"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["index", "--verify", "--no-repair"])
    assert result.exit_code == 0, result.output
    assert client.get(index=DEFAULT_ALIAS, id=f"PERSON:{pid}")["found"]


def test_commands_without_an_engine_say_so(db_url, graph_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", db_url)
    monkeypatch.delenv("AIDGRAPH_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("AIDGRAPH_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["index"])
    assert result.exit_code == 2 and "AIDGRAPH_OPENSEARCH_URL" in result.output
    monkeypatch.setenv("AIDGRAPH_OPENSEARCH_URL", "http://127.0.0.1:9")
    with session_scope(graph_engine) as s:
        add_person(s, "440106003", "无引擎")
    result = CliRunner().invoke(app, ["index"])
    assert result.exit_code == 3 and "unavailable" in result.output and "outbox is kept" in result.output
    result = CliRunner().invoke(app, ["reindex"])
    assert result.exit_code == 3 and "unavailable" in result.output


def test_an_index_built_from_another_database_is_never_touched(env, graph, graph_engine, db_url, request,
                                                               tmp_path_factory, monkeypatch):
    """Issue 12 item 11: a CLI pointed at another installation's engine (a shared state directory, a wrong
    AIDGRAPH_OPENSEARCH_URL) refuses to verify, repair, drain into or rebuild its index; and no repair deletes
    more than AIDGRAPH_SEARCH_REPAIR_MAX_DELETE_PERCENT of an index without --force."""
    runner = CliRunner()
    assert runner.invoke(app, ["reindex"]).exit_code == 0
    client = make_client(env.url)
    client.indices.refresh(index=DEFAULT_ALIAS)
    total = client.count(index=DEFAULT_ALIAS)["count"]
    [(index_name, owner)] = indexes.owners_of(client, DEFAULT_ALIAS).items()
    assert owner == database_identity(graph_engine)

    other_url = make_database("sqlite" if db_url.startswith("sqlite") else "postgres", request, tmp_path_factory)
    other = make_sync_engine(other_url)
    with other.begin() as conn:  # another installation: its own identity (a test database copies a template's)
        conn.execute(text("UPDATE installation SET database_id = :id"), {"id": str(uuid.uuid4())})
    other_id = database_identity(other)
    other.dispose()
    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", other_url)
    for args in (["index", "--verify"], ["index", "--verify", "--no-repair"], ["index"], ["reindex"]):
        result = runner.invoke(app, args)
        said = " ".join(result.output.split())
        assert result.exit_code == 2 and f"built from database {owner}, not from this one ({other_id})" in said, \
            (args, result.output)
    client.indices.refresh(index=DEFAULT_ALIAS)
    assert client.count(index=DEFAULT_ALIAS)["count"] == total
    assert list(indexes.owners_of(client, DEFAULT_ALIAS)) == [index_name]

    # Back on the right database: documents of rows it does not have, above the share, are not deleted unasked.
    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", db_url)
    monkeypatch.setenv("AIDGRAPH_SEARCH_REPAIR_MAX_DELETE_PERCENT", "10")
    hit = client.search(index=DEFAULT_ALIAS, body={"query": {"term": {"kind": "PERSON"}}, "size": 1})["hits"]["hits"][0]
    ghosts = total // 9 + 1  # more than a tenth of the index they join
    for n in range(ghosts):
        source = {**hit["_source"], "entity_id": 900_000 + n}
        client.index(index=DEFAULT_ALIAS, id=f"PERSON:{900_000 + n}", body=source, version=1, version_type="external")
    client.indices.refresh(index=DEFAULT_ALIAS)
    refused = runner.invoke(app, ["index", "--verify"])
    assert refused.exit_code == 2 and f"would delete {ghosts} of the index's {total + ghosts}" in " ".join(
        refused.output.split()), refused.output
    client.indices.refresh(index=DEFAULT_ALIAS)
    assert client.count(index=DEFAULT_ALIAS)["count"] == total + ghosts
    forced = runner.invoke(app, ["index", "--verify", "--force"])
    assert forced.exit_code == 0, forced.output
    client.indices.refresh(index=DEFAULT_ALIAS)
    assert client.count(index=DEFAULT_ALIAS)["count"] == total


def test_a_server_never_serves_or_feeds_another_databases_index(env, graph, graph_engine, db_url, request,
                                                                tmp_path_factory):
    """With a configured cluster whose alias holds another installation's index, the server's search does not
    start (it serves without search and logs why) instead of answering from, or draining into, that index."""
    assert CliRunner().invoke(app, ["reindex"]).exit_code == 0
    other_url = make_database("sqlite" if db_url.startswith("sqlite") else "postgres", request, tmp_path_factory)
    other = make_sync_engine(other_url)
    with other.begin() as conn:
        conn.execute(text("UPDATE installation SET database_id = :id"), {"id": str(uuid.uuid4())})
    other.dispose()
    with pytest.raises(ForeignIndexError, match="was built from database"):
        open_search(server_settings(other_url, opensearch_url=env.url), background=False)
    mine = open_search(server_settings(db_url, opensearch_url=env.url), background=False)
    mine.close()
