"""Disk full on the database's file system (issue 12, item 12), on both engines, where it can be simulated.

The database lives on a small tmpfs mounted for the test (SQLite: its file, WAL and all; PostgreSQL: the
tables the write path touches, moved to a tablespace on it). A live server takes acknowledged writes, then the
file system is filled to the last byte. Writes then fail with the STORAGE_FULL code (never the database's text,
never a half-written household) or, where the mutation's own rows still fitted in allocated pages but the audit
row of what its answer discloses did not, the answer is withheld (AUDIT_UNAVAILABLE with reason STORAGE_FULL:
written but unacknowledged, which the ledger allows). Nothing acknowledged before or during the fault is lost,
reads keep working, and when space returns the server takes writes again without a restart; re-sending the refused writes with
their keys writes each exactly once. Mounting needs root (CAP_SYS_ADMIN): elsewhere the test is skipped,
saying so; the fault is never imitated.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.app.server import default_components
from aidgraph.core.storage.db import make_sync_engine
from tests.conftest import ENGINES, make_database, server_settings
from tests.faults.ledger import Ledger, Write, check_database, register_input, send
from tests.live import run_live_server

SMALL_FS_MB = 40


@contextlib.contextmanager
def small_file_system(where: Path, megabytes: int):
    """A tmpfs of ``megabytes`` mounted at ``where`` (skips the test, with the reason, where that is refused)."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("disk full is not simulated: mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0777", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"disk full is not simulated: this machine refuses to mount a tmpfs ({done.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(where: Path) -> Path:
    """Write a file until the file system has no byte left; return it (delete it to give the space back)."""
    filler = where / "filler"
    chunk = b"\0" * (64 * 1024)
    with filler.open("wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        for size in (4096, 512, 1):  # the tail, down to the last byte
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break
    return filler


def database_on(kind: str, fs: Path, request, tmp_path_factory, stack: contextlib.ExitStack) -> str:
    """A migrated database whose written tables live on ``fs``."""
    url = make_database(kind, request, tmp_path_factory)
    if kind == "sqlite":
        source = Path(url.removeprefix("sqlite:///"))
        shutil.copy(source, fs / "aidgraph.db")
        return f"sqlite:///{fs / 'aidgraph.db'}"
    pg_server = request.getfixturevalue("pg_server")
    space = fs / "pg"
    space.mkdir()
    uid = Path(pg_server.pgdata).stat().st_uid  # the PostgreSQL server's own user must own the tablespace
    os.chown(space, uid, -1)
    name = "small_" + uuid.uuid4().hex[:8]
    admin = make_sync_engine(pg_server.get_uri("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE TABLESPACE {name} LOCATION '{space}'"))
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                   "AND tablename <> 'region'")).scalars().all()
        for table in tables:
            conn.execute(text(f'ALTER TABLE "{table}" SET TABLESPACE {name}'))
    engine.dispose()

    def drop() -> None:
        with admin.connect() as conn:
            database = make_url(url).database
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f"DROP TABLESPACE IF EXISTS {name}"))
        admin.dispose()

    stack.callback(drop)
    return url


@pytest.mark.parametrize("kind", ENGINES)
def test_disk_full_refuses_writes_clearly_loses_nothing_and_recovers(kind, tmp_path, request, tmp_path_factory):
    with contextlib.ExitStack() as stack:
        # Outside pytest's own directory (mode 0700): PostgreSQL's server user must reach the tablespace.
        mount_point = Path(tempfile.mkdtemp(prefix="aidgraph-small-fs-"))
        os.chmod(mount_point, 0o755)
        stack.callback(shutil.rmtree, mount_point, True)
        fs = stack.enter_context(small_file_system(mount_point, SMALL_FS_MB))
        db_url = database_on(kind, fs, request, tmp_path_factory, stack)
        settings = server_settings(db_url, state_dir=tmp_path / "state")
        engine = make_sync_engine(db_url)
        token = ensure_demo_user(engine, settings, username="full44", region_codes=("44",))
        engine.dispose()
        ledger = Ledger(marker=f"满盘{uuid.uuid4().hex[:8]}")
        live = stack.enter_context(run_live_server(default_components(settings)))
        client = stack.enter_context(httpx.Client())

        def write() -> Write:
            w = Write("RegisterHousehold", register_input(ledger.marker))
            ledger.add(w)
            send(client, live.url, token, w)
            return w

        assert all(write().acknowledged for _ in range(3))
        filler = fill(fs)
        refused = None
        for n in range(300):  # SQLite may still reuse WAL pages for a while; it runs out soon enough
            w = write()
            if not w.acknowledged:
                refused = w
                break
        assert refused is not None, "the full file system never refused a write"
        print(f"disk full ({kind}): refused after {n} more writes")
        assert refused.error is not None and "STORAGE_FULL" in refused.error, refused.error
        assert "No space" not in refused.error and "disk is full" not in refused.error  # no database text
        for _ in range(3):  # still full: each write is refused clearly, or (PostgreSQL: a page with room left, a
            again = write()  # fork that needed no new block) written and acknowledged; never anything else
            assert again.acknowledged or "STORAGE_FULL" in str(again.error), again.error
        body = client.post(f"{live.url}/graphql", json={"query": "{ me { username } }"},
                           headers={"Authorization": f"Bearer {token}"}).json()
        assert body.get("data", {}).get("me", {}).get("username") == "full44", body  # reads still answer
        check_database(db_url, ledger)  # nothing acknowledged is lost, nothing half-written

        filler.unlink()  # space returns: no restart needed
        assert write().acknowledged
        for w in ledger.unacknowledged():
            send(client, live.url, token, w)
            assert w.acknowledged, w.error
        counts = check_database(db_url, ledger, exactly_once=True)
        assert counts["households"] == len(ledger.writes)
