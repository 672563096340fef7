"""The embedded default: osmem-server from the wheel on loopback, found by the CLI, stopped on exit."""

from __future__ import annotations

import os

from aidgraph.core.storage.config import load_settings
from aidgraph.core.search.client import embedded_state_file, make_client, resolve_url
from aidgraph.core.search.embedded import EmbeddedSearch


def test_embedded_engine_starts_on_loopback_and_is_found_then_stopped(tmp_path):
    settings = load_settings({"AIDGRAPH_STATE_DIR": str(tmp_path),
                              "AIDGRAPH_DATABASE_URL": f"sqlite:///{tmp_path / 'aidgraph.db'}"})
    assert resolve_url(settings) is None
    with EmbeddedSearch.start(settings) as embedded:
        assert embedded.url.startswith("http://127.0.0.1:")
        assert make_client(embedded.url).info()["version"]["distribution"] == "opensearch"
        assert resolve_url(settings) == embedded.url  # what `aidgraph index` uses without a configured URL
        assert resolve_url(settings.with_(opensearch_url="https://search.example:9200")) == "https://search.example:9200"
        assert embedded_state_file(settings) == tmp_path / "aidgraph.db.search.json"  # beside its database
        # Another installation (another database, the same state directory) never finds this engine.
        other = settings.with_(database_url=f"sqlite:///{tmp_path / 'other' / 'aidgraph.db'}")
        assert resolve_url(other) is None
        postgres = settings.with_(database_url="postgresql+psycopg://u:secret@db:5432/aidgraph")
        assert embedded_state_file(postgres).parent == tmp_path and "secret" not in embedded_state_file(postgres).name
        assert embedded_state_file(postgres) != embedded_state_file(postgres.with_(
            database_url="postgresql+psycopg://u:secret@db:5432/other"))
        pid = embedded.pid
    assert not embedded_state_file(settings).exists()
    assert embedded.server.process.poll() is not None
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive or embedded.server.process.returncode is not None
    assert resolve_url(settings) is None
