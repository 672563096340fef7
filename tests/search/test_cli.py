"""``aidgraph reindex`` and ``aidgraph index`` (once and ``--verify``) against an osmem-server clone."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aidgraph.core.app.cli import app
from aidgraph.core.storage.db import session_scope
from aidgraph.core.search.client import make_client
from aidgraph.core.search.mapping import DEFAULT_ALIAS
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
