"""The outbox indexer, reindex and verify against osmem-server, on SQLite and PostgreSQL.

Includes the outage test: the search engine is stopped mid-run (SIGSTOP, then killed and restarted), writes
keep succeeding, the outbox grows, searches answer SEARCH_UNAVAILABLE, and the backlog drains on return.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
import signal
import socket
import time

import pluggy
import pytest
from osmem_server import OsmemServer
from sqlalchemy import delete, select, update

from aidgraph.core.policy import hookspecs
from aidgraph.core.storage.models import Alert, Outbox, OutboxEntity, Person
from aidgraph.core.graph import outbox
from aidgraph.core.storage.db import session_scope
from aidgraph.core.search import indexes
from aidgraph.core.search.client import SearchUnavailable, make_client
from aidgraph.core.search.indexer import BackgroundIndexer, IndexMissing, IndexOutdated, drain
from aidgraph.core.search.mapping import DEFAULT_ALIAS, SearchMappingError, build_layout
from aidgraph.core.search.documents import load_docs
from aidgraph.core.search.query import SearchRequest, search
from aidgraph.core.search.rebuild import reindex, verify
from aidgraph.core.search.runtime import SearchRuntime
from tests.search.conftest import actor_for, add_household, add_person


def get_doc(client, kind: str, entity_id: int) -> dict | None:
    found = client.get(index=DEFAULT_ALIAS, id=f"{kind}:{entity_id}", ignore=404)
    return found if found.get("found") else None


def pending(engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(Outbox.id).where(Outbox.processed_at.is_(None), Outbox.dead_at.is_(None))).all())


@pytest.fixture
def client(osmem_clone):
    c = make_client(osmem_clone.url, timeout=30)
    yield c
    c.close()


@pytest.fixture
def indexed(graph_engine, graph, client):
    """The module's database reindexed and its outbox drained (so tests start from an empty backlog)."""
    reindex(graph_engine, client)
    drain(graph_engine, client)
    assert pending(graph_engine) == 0
    return client


def test_drain_indexes_new_records_and_marks_rows_processed(graph_engine, indexed, system):
    with session_scope(graph_engine) as s:
        made = add_household(s, "440106003", "广州市天河区车陂路9号", ["钱多多", "孙小美"], alert="YELLOW")
        hid, pid = made["household"].id, made["persons"][0].id
    assert pending(graph_engine) == 4
    result = drain(graph_engine, indexed, refresh=True)
    assert result.rows == 4 and result.processed == 4 and not result.failed
    assert pending(graph_engine) == 0
    assert get_doc(indexed, "PERSON", pid)["_source"]["name"] == "钱多多"
    household = get_doc(indexed, "HOUSEHOLD", hid)
    assert household["_source"]["warning_level"] == "YELLOW"
    page = search(indexed, DEFAULT_ALIAS, build_layout(), system, SearchRequest(query="钱多多", kinds=("PERSON",)))
    assert [h.entity_id for h in page.hits] == [pid]
    again = drain(graph_engine, indexed)
    assert again.rows == 0


def test_external_versions_never_let_an_older_state_win(graph_engine, indexed):
    with session_scope(graph_engine) as s:
        person = add_person(s, "440106003", "周旧名")
        pid = person.id
    drain(graph_engine, indexed, refresh=True)
    with graph_engine.connect() as conn:
        stale = load_docs(conn, "PERSON", [pid])[pid]  # an indexer that read version 1 ...
    with session_scope(graph_engine) as s:
        s.execute(update(Person).where(Person.id == pid).values(name="周新名", version=Person.version + 1))
        outbox.emit(s, OutboxEntity.PERSON, pid, 2)
    drain(graph_engine, indexed, refresh=True)  # ... is overtaken by one that read version 2
    late = indexes.write(indexed, DEFAULT_ALIAS, [stale], refresh=True)
    assert late.conflicts == 1 and f"PERSON:{pid}" in late.ok and not late.failed
    doc = get_doc(indexed, "PERSON", pid)
    assert doc["_source"]["name"] == "周新名" and doc["_version"] == 2
    # An old outbox row replayed after the newer one changes nothing either (documents come from the database).
    with session_scope(graph_engine) as s:
        outbox.emit(s, OutboxEntity.PERSON, pid, 1)
    result = drain(graph_engine, indexed, refresh=True)
    assert result.processed == 1 and get_doc(indexed, "PERSON", pid)["_source"]["name"] == "周新名"


def test_deleted_records_leave_the_index(graph_engine, indexed):
    with session_scope(graph_engine) as s:
        pid = add_person(s, "440106003", "吴将删").id
    drain(graph_engine, indexed, refresh=True)
    assert get_doc(indexed, "PERSON", pid) is not None
    with session_scope(graph_engine) as s:
        s.execute(delete(Person).where(Person.id == pid))
        outbox.emit(s, OutboxEntity.PERSON, pid, 2, deleted=True)
    result = drain(graph_engine, indexed, refresh=True)
    assert result.deleted == 1 and pending(graph_engine) == 0
    assert get_doc(indexed, "PERSON", pid) is None


def test_alert_change_rewrites_its_household(graph_engine, graph, indexed, system):
    hid, aid = graph.households["nantou"], graph.alerts["nantou"]
    before = get_doc(indexed, "HOUSEHOLD", hid)
    assert before["_source"]["warning_level"] == "ORANGE"
    with session_scope(graph_engine) as s:
        s.execute(update(Alert).where(Alert.id == aid).values(status="RESOLVED", version=Alert.version + 1))
        outbox.emit(s, OutboxEntity.ALERT, aid, 2)
    drain(graph_engine, indexed, refresh=True)
    after = get_doc(indexed, "HOUSEHOLD", hid)
    assert "warning_level" not in after["_source"] and after["_version"] == before["_version"] + 1
    assert get_doc(indexed, "ALERT", aid)["_source"]["status"] == "RESOLVED"
    with session_scope(graph_engine) as s:  # back as it was, for the other tests of the module
        s.execute(update(Alert).where(Alert.id == aid).values(status="OPEN", version=Alert.version + 1))
        outbox.emit(s, OutboxEntity.ALERT, aid, 3)
    drain(graph_engine, indexed, refresh=True)
    assert get_doc(indexed, "HOUSEHOLD", hid)["_source"]["warning_level"] == "ORANGE"


class ScorePlugin:
    """A search plugin adding one integer field to person documents; ids in ``refused`` get a bad value."""

    def __init__(self, value: int = 3):
        self.value = value
        self.refused: set[int] = set()

    @hookspecs.hookimpl
    def aidgraph_search_fields(self):
        return {"person": {"support_score": {"type": "integer"}}}

    @hookspecs.hookimpl
    def aidgraph_search_document(self, entity, record):
        if entity != "person":
            return None
        return {"support_score": "not a number" if record["id"] in self.refused else self.value}


def plugin_manager(*plugins) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for p in plugins:
        pm.register(p)
    return pm


def test_plugin_fields_reach_the_mapping_and_documents(graph_engine, graph, client, system):
    plugin = ScorePlugin()
    layout = build_layout(plugin_manager(plugin))
    assert layout.properties["support_score"] == {"type": "integer"} and "support_score" in layout.sensitive
    reindex(graph_engine, client, layout=layout)
    doc = get_doc(client, "PERSON", graph.persons["王五"])
    assert doc["_source"]["support_score"] == 3
    caseworker_page = search(client, DEFAULT_ALIAS, layout, system, SearchRequest(query="王五", kinds=("PERSON",)))
    assert caseworker_page.hits[0].source.get("support_score") == 3  # system actor may read sensitive fields

    class Clash:
        @hookspecs.hookimpl
        def aidgraph_search_fields(self):
            return {"household": {"support_score": {"type": "keyword"}}}

    with pytest.raises(SearchMappingError, match="support_score"):
        build_layout(plugin_manager(ScorePlugin(), Clash()))


def test_a_refused_document_stays_pending_and_is_retried(graph_engine, client):
    plugin = ScorePlugin()
    layout = build_layout(plugin_manager(plugin))
    reindex(graph_engine, client, layout=layout)
    drain(graph_engine, client, layout=layout)
    with session_scope(graph_engine) as s:
        good = add_person(s, "440106003", "郑可索引").id
        bad = add_person(s, "440106003", "冯被拒绝").id
    plugin.refused = {bad}  # the engine refuses this person's document (a mapping error, HTTP 400)
    result = drain(graph_engine, client, layout=layout, refresh=True)
    assert list(result.failed) == [f"PERSON:{bad}"] and result.failed[f"PERSON:{bad}"].startswith("400")
    assert get_doc(client, "PERSON", good) is not None
    assert pending(graph_engine) == 1  # the refused row is kept, not lost
    plugin.refused = set()
    plugin.value = 7
    result = drain(graph_engine, client, layout=layout, refresh=True)
    assert result.processed == 1 and pending(graph_engine) == 0
    assert get_doc(client, "PERSON", bad)["_source"]["support_score"] == 7


def test_a_document_refused_too_often_becomes_a_dead_letter(graph_engine, client, db_url, monkeypatch):
    """After max_attempts refused passes the row stops being retried: not pending, listed with the engine's
    reason (CLI and readiness), never purged; --retry-dead-letters queues it again once the cause is fixed."""
    from typer.testing import CliRunner

    from aidgraph.core.app.cli import app
    from aidgraph.core.search.indexer import dead_letter_count, dead_letters, purge_processed

    plugin = ScorePlugin()
    layout = build_layout(plugin_manager(plugin))
    reindex(graph_engine, client, layout=layout)
    drain(graph_engine, client, layout=layout)
    with session_scope(graph_engine) as s:
        bad = add_person(s, "440106003", "褚总被拒").id
    plugin.refused = {bad}
    results = [drain(graph_engine, client, layout=layout, refresh=True, max_attempts=3) for _ in range(3)]
    assert [r.dead_letters for r in results] == [0, 0, 1] and pending(graph_engine) == 0
    [(_, entity, entity_id, attempts, error, dead_at)] = dead_letters(graph_engine)
    assert (entity, entity_id, attempts) == ("PERSON", bad, 3) and error.startswith("400") and dead_at is not None
    assert drain(graph_engine, client, layout=layout, max_attempts=3).rows == 0  # no longer retried
    purge_processed(graph_engine, dt.timedelta(0))
    assert dead_letter_count(graph_engine) == 1  # a dead letter is kept until someone looks at it

    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", db_url)
    listed = CliRunner().invoke(app, ["index", "--dead-letters"])
    assert listed.exit_code == 0 and f"person {bad}" in listed.output and "1 dead letter(s)" in listed.output
    plugin.refused = set()  # the cause is fixed
    retried = CliRunner().invoke(app, ["index", "--retry-dead-letters"])
    assert retried.exit_code == 0 and "1 dead letter(s) queued again" in retried.output
    assert pending(graph_engine) == 1
    assert drain(graph_engine, client, layout=layout, refresh=True).processed == 1
    assert dead_letter_count(graph_engine) == 0 and get_doc(client, "PERSON", bad) is not None


def test_verify_finds_and_repairs_every_kind_of_difference(graph_engine, graph, indexed):
    pid = graph.persons["王五"]
    hid = graph.households["yuancun"]
    indexed.delete(index=DEFAULT_ALIAS, id=f"PERSON:{pid}", refresh=True)  # missing
    indexed.index(index=DEFAULT_ALIAS, id="PERSON:999999", body={"kind": "PERSON", "entity_id": 999999,
                  "uid": "PERSON:999999", "region_code": "440106001"}, refresh=True)  # extra
    doc = get_doc(indexed, "HOUSEHOLD", hid)
    indexed.index(index=DEFAULT_ALIAS, id=f"HOUSEHOLD:{hid}", body=doc["_source"], version=doc["_version"] + 5,
                  version_type="external", refresh=True)  # ahead of the database
    with session_scope(graph_engine) as s:  # stale: changed without an outbox row (a lost event)
        s.execute(update(Person).where(Person.id == graph.persons["张丽"]).values(version=Person.version + 1))
    found = verify(graph_engine, indexed, repair=False)
    assert (found.kinds["PERSON"].missing, found.kinds["PERSON"].extra, found.kinds["PERSON"].stale) == (1, 1, 1)
    assert found.kinds["HOUSEHOLD"].ahead == 1 and found.differences == 4
    repaired = verify(graph_engine, indexed)
    assert repaired.differences == 4 and sum(k.repaired for k in repaired.kinds.values()) == 4
    assert repaired.reindexed is not None  # a document ahead of the database needs a new index
    assert verify(graph_engine, indexed, repair=False).differences == 0
    # Lost events (no deletes in the index) are repaired in place: no new index.
    with session_scope(graph_engine) as s:
        s.execute(update(Person).where(Person.id == graph.persons["张丽"]).values(version=Person.version + 1))
        lost = add_person(s, "440106003", "丢事件").id
        s.execute(delete(Outbox).where(Outbox.entity_id == lost, Outbox.entity == "PERSON"))
    in_place = verify(graph_engine, indexed)
    assert in_place.reindexed is None and in_place.kinds["PERSON"].repaired == 2
    assert (in_place.kinds["PERSON"].missing, in_place.kinds["PERSON"].stale) == (1, 1)
    assert verify(graph_engine, indexed, repair=False).differences == 0
    assert get_doc(indexed, "PERSON", 999999) is None and get_doc(indexed, "PERSON", pid) is not None


def test_reindex_swaps_the_alias_and_catches_up_with_changes(graph_engine, graph, client):
    first = reindex(graph_engine, client)
    assert indexes.indices_of(client, DEFAULT_ALIAS) == [first.index]
    assert first.counts["PERSON"] >= 52 and first.counts["HOUSEHOLD"] >= 5
    second = reindex(graph_engine, client)
    assert indexes.indices_of(client, DEFAULT_ALIAS) == [second.index] and second.replaced == [first.index]
    assert not client.indices.exists(index=first.index)
    assert client.count(index=DEFAULT_ALIAS)["count"] == second.documents
    # A change committed after the rebuild read the table but processed by another indexer before the swap
    # is applied again by the catch-up.
    with session_scope(graph_engine) as s:
        pid = add_person(s, "440106003", "何追上").id
    drain(graph_engine, client)  # written to the old index, row processed
    from aidgraph.core.search.rebuild import catch_up
    import datetime as dt

    fresh = indexes.create_index(client, DEFAULT_ALIAS, build_layout())
    indexes.swap_alias(client, DEFAULT_ALIAS, fresh)
    assert get_doc(client, "PERSON", pid) is None
    applied = catch_up(graph_engine, client, DEFAULT_ALIAS, build_layout(), high_water=0,
                       since=dt.datetime.now() - dt.timedelta(hours=1))
    assert applied >= 1 and get_doc(client, "PERSON", pid) is not None


def test_follow_drains_until_stopped(graph_engine, indexed):
    import threading

    from aidgraph.core.search.indexer import follow

    stop = threading.Event()
    passes = []
    thread = threading.Thread(target=follow, args=(graph_engine, indexed, DEFAULT_ALIAS, build_layout()),
                              kwargs={"interval": 0.1, "stop": stop, "on_pass": lambda r, e: passes.append((r, e))})
    thread.start()
    try:
        with session_scope(graph_engine) as s:
            pid = add_person(s, "440106003", "跟随者").id
        assert _wait(lambda: pending(graph_engine) == 0 and get_doc(indexed, "PERSON", pid) is not None)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and any(r is not None and r.processed for r, _ in passes)


def test_drain_on_a_missing_alias_asks_for_a_rebuild(graph_engine, client):
    with session_scope(graph_engine) as s:
        add_person(s, "440106003", "缺索引")
    with pytest.raises(IndexMissing):
        drain(graph_engine, client)
    assert pending(graph_engine) >= 1
    assert not client.indices.exists(index=DEFAULT_ALIAS)  # never auto-created with a dynamic mapping


def test_an_index_built_for_an_earlier_layout_is_rebuilt_and_not_searched_meanwhile(graph_engine, client, db_url):
    """An index whose mapping lacks a field of this release (here the province level the scope filter uses)
    would refuse every new document (strict mapping) and answer a province's searches with nothing: the drain
    refuses it, verify reports it, and the server's indexer rebuilds it while searches say SEARCH_UNAVAILABLE."""
    layout = build_layout()
    earlier = dataclasses.replace(layout, properties={k: v for k, v in layout.properties.items()
                                                       if k != "region_province"})
    indexes.swap_alias(client, DEFAULT_ALIAS, indexes.create_index(client, DEFAULT_ALIAS, earlier))
    with session_scope(graph_engine) as s:
        pid = add_person(s, "440106003", "旧版索引").id
    with pytest.raises(IndexOutdated, match="lacks region_province"):
        drain(graph_engine, client, layout=layout)
    assert pending(graph_engine) >= 1  # nothing marked processed, nothing dead-lettered
    checked = verify(graph_engine, client, layout=layout, repair=False)
    assert list(checked.outdated.values()) == [["region_province"]] and checked.differences

    release = threading.Event()

    def slow_rebuild():
        assert release.wait(30)
        return reindex(graph_engine, client, layout=layout)

    indexer = BackgroundIndexer(graph_engine, client, DEFAULT_ALIAS, layout, interval=0.1, refresh=True,
                                rebuild=slow_rebuild)
    runtime = SearchRuntime(url="", alias=DEFAULT_ALIAS, layout=layout, client=client, bulk_client=client,
                            engine=graph_engine, indexer=indexer)
    admin44 = actor_for(db_url, "province_admin", "44")
    worker = threading.Thread(target=indexer.run_once)
    worker.start()
    try:
        assert _wait(lambda: indexer.outdated is not None, timeout=10)
        with pytest.raises(SearchUnavailable, match="being rebuilt"):
            runtime.search(admin44, SearchRequest(query="旧版索引"))
    finally:
        release.set()
        worker.join(30)
    assert indexer.rebuilds == 1 and indexer.outdated is None
    assert "region_province" in client.indices.get_mapping(index=DEFAULT_ALIAS).popitem()[1]["mappings"]["properties"]
    assert [h.entity_id for h in runtime.search(admin44, SearchRequest(query="旧版索引")).hits] == [pid]
    assert not verify(graph_engine, client, layout=layout, repair=False).differences


def _free_addr() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def _wait(predicate, timeout: float = 30.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_search_engine_outage_writes_succeed_backlog_drains(graph_engine, graph, system):
    """Stop the engine mid-run (SIGSTOP: it hangs, requests time out), keep writing, resume; then kill it and
    start an empty one on the same port: the indexer rebuilds from the database and drains the backlog."""
    addr = _free_addr()
    server = OsmemServer.start(freeze=False, japanese=False, addr=addr)
    bulk = make_client(server.url, timeout=2)
    fast = make_client(server.url, timeout=1)
    layout = build_layout()
    reindex(graph_engine, bulk, layout=layout)
    indexer = BackgroundIndexer(graph_engine, bulk, DEFAULT_ALIAS, layout, interval=0.2, max_backoff=0.5,
                                refresh=True, rebuild=lambda: reindex(graph_engine, bulk, layout=layout)).start()
    try:
        assert _wait(lambda: pending(graph_engine) == 0)
        os.kill(server.pid, signal.SIGSTOP)
        try:
            names = [f"停机{i}" for i in range(5)]
            with session_scope(graph_engine) as s:  # writes succeed while the engine hangs
                ids = [add_person(s, "440106003", n).id for n in names]
            assert pending(graph_engine) == 5
            with pytest.raises(SearchUnavailable):
                search(fast, DEFAULT_ALIAS, layout, system, SearchRequest(query="停机"))
            assert _wait(lambda: indexer.last_error is not None, timeout=15)
            assert pending(graph_engine) == 5  # nothing marked, nothing lost
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert _wait(lambda: pending(graph_engine) == 0), indexer.last_error
        page = search(fast, DEFAULT_ALIAS, layout, system, SearchRequest(query="停机", kinds=("PERSON",)))
        assert sorted(h.entity_id for h in page.hits) == sorted(ids)

        server.close()  # down for good: connection refused
        server.process.stdout.close()
        with session_scope(graph_engine) as s:
            late = add_person(s, "440106003", "重启后").id
        with pytest.raises(SearchUnavailable):
            search(fast, DEFAULT_ALIAS, layout, system, SearchRequest(query="重启后"))
        assert pending(graph_engine) == 1
        server = OsmemServer.start(freeze=False, japanese=False, addr=addr)  # back, empty
        assert _wait(lambda: pending(graph_engine) == 0 and indexer.rebuilds >= 1), indexer.last_error

        def found_late() -> bool:
            try:
                hits = search(fast, DEFAULT_ALIAS, layout, system, SearchRequest(query="重启后")).hits
            except SearchUnavailable:
                return False
            return [h.entity_id for h in hits] == [late]

        assert _wait(found_late, timeout=10)
        assert search(fast, DEFAULT_ALIAS, layout, system, SearchRequest(query="张三丰", kinds=("PERSON",))).total >= 1
    finally:
        indexer.stop()
        server.close()
        server.process.stdout.close()
