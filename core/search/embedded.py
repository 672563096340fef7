"""The embedded default search engine: the ``osmem-server`` binary from its wheel, on a loopback port, kept alive.

With no ``AIDGRAPH_OPENSEARCH_URL`` the server starts one of these, indexes the database into it (it is in
memory, so every start is a full reindex) and stops it on exit. The binary is told our process id and exits
with us even if we die without cleaning up.

The engine belongs to one database. Its address is written to a state file bound to that database (beside a
SQLite file, or named after the database's URL in the state directory for PostgreSQL), so that
``aidgraph index`` and ``aidgraph reindex`` run from another shell reach the engine of the server of *their*
database and never another installation's. The port is tied to the database too: a later start, or a restart,
asks for the port the state file names first (a free one if it is taken).

If the engine dies (killed, crashed, out of memory), :class:`EngineSupervisor` notices (the process is our
child: its exit is a fact, not a guess from a timeout), starts a new one on the same port and hands it to the
server, whose indexer then finds the alias missing and rebuilds the index from the database. Restarts are
bounded: a doubling delay between attempts and at most ``max_restarts`` in ``window`` seconds, every attempt
logged, so a broken binary gives up instead of spinning. A stopped (SIGSTOP) engine is alive: it is not
restarted; requests to it time out and the indexer backs off until it resumes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from osmem_server import OsmemError, OsmemServer

from aidgraph.core.storage.config import Settings
from aidgraph.core.search.client import database_url_key, embedded_state_file

log = logging.getLogger("aidgraph.search.embedded")


def _recorded_addr(state_file: Path | None) -> str | None:
    """The loopback address a previous engine of this database used, from its state file."""
    if state_file is None:
        return None
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        parts = urlsplit(str(state["url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if parts.hostname != "127.0.0.1" or not parts.port:
        return None
    return f"127.0.0.1:{parts.port}"


def _start_server(addr: str | None, startup_timeout: float) -> OsmemServer:
    """Start osmem-server on ``addr`` when given and free, else on a free loopback port."""
    if addr is not None:
        try:
            return OsmemServer.start(freeze=False, japanese=False, addr=addr, startup_timeout=startup_timeout)
        except OsmemError as e:
            log.warning("embedded search engine could not take %s (%s); using a free port", addr, e)
    return OsmemServer.start(freeze=False, japanese=False, addr="127.0.0.1:0", startup_timeout=startup_timeout)


class EmbeddedSearch:
    """A running osmem-server owned by this process."""

    def __init__(self, server: OsmemServer, state_file: Path | None = None, database: str | None = None,
                 startup_timeout: float = 30.0):
        self.server = server
        self.state_file = state_file
        self.database = database
        self.startup_timeout = startup_timeout

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def exit_code(self) -> int | None:
        """None while the engine runs; its exit status (negative: the signal) once it has died."""
        return self.server.process.poll()

    @classmethod
    def start(cls, settings: Settings | None = None, *, addr: str | None = None,
              startup_timeout: float = 30.0) -> "EmbeddedSearch":
        """Start the bundled engine on loopback: on ``addr`` if given, else on the port this database's engine
        used before (from its state file) when free, else on a free port."""
        state_file = embedded_state_file(settings) if settings is not None else None
        database = database_url_key(settings.database_url) if settings is not None else None
        server = _start_server(addr or _recorded_addr(state_file), startup_timeout)
        embedded = cls(server, state_file, database, startup_timeout)
        embedded._write_state()
        return embedded

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps({"url": self.server.url, "pid": self.server.pid,
                                                   "server_pid": os.getpid(), "database": self.database}),
                                       encoding="utf-8")
        except OSError as e:  # the CLI then needs AIDGRAPH_OPENSEARCH_URL; the server works regardless
            log.warning("could not write the search engine's state file %s: %s", self.state_file, e)

    def restart(self) -> str:
        """Start a new (empty) engine in place of a dead one, on the same port if it is free, and record it in the
        state file; returns its URL. Raises :class:`osmem_server.OsmemError` when it cannot start."""
        self._reap()
        old = urlsplit(self.server.url)
        self.server = _start_server(f"127.0.0.1:{old.port}" if old.port else None, self.startup_timeout)
        self._write_state()
        return self.server.url

    def _reap(self) -> None:
        process = self.server.process
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdout, process.stdin):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass

    def stop(self) -> None:
        self.server.close()
        if self.server.process.stdout is not None:
            self.server.process.stdout.close()  # the launcher leaves its readiness pipe open
        if self.state_file is not None:
            try:
                state = json.loads(self.state_file.read_text(encoding="utf-8"))
                if state.get("server_pid") == os.getpid():
                    self.state_file.unlink()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> "EmbeddedSearch":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class EngineSupervisor:
    """A daemon thread that restarts the embedded engine when its process has exited.

    Checks every ``check_interval`` seconds. Before the n-th attempt of the current ``window`` it waits
    ``first_delay * 2**(n-2)`` seconds (the first attempt is immediate), at most ``max_delay``; after
    ``max_restarts`` attempts within ``window`` seconds it gives up (``state`` becomes ``"failed"``) and search
    stays unavailable until the server restarts. ``on_restart(url)`` is called with the new engine's URL.
    """

    def __init__(self, embedded: EmbeddedSearch, on_restart: Callable[[str], None], *,
                 check_interval: float = 0.5, first_delay: float = 1.0, max_delay: float = 30.0,
                 max_restarts: int = 5, window: float = 600.0):
        self.embedded = embedded
        self.on_restart = on_restart
        self.check_interval = check_interval
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.max_restarts = max_restarts
        self.window = window
        self.state = "running"
        """``running``, ``restarting`` (the engine is dead, attempts under way) or ``failed`` (gave up)."""
        self.restarts = 0
        """Successful restarts since the server started."""
        self.attempts: deque[float] = deque()
        """Monotonic times of the attempts within the window."""
        self.last_restart_seconds: float | None = None
        """From noticing the death to the new engine answering, for the last restart."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aidgraph-search-supervisor", daemon=True)

    def start(self) -> "EngineSupervisor":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.check_interval):
            code = self.embedded.exit_code
            if code is None:
                continue
            noticed = time.monotonic()
            self.state = "restarting"
            log.error("embedded search engine (pid %s) exited with status %s: restarting it; searches answer "
                      "SEARCH_UNAVAILABLE meanwhile", self.embedded.pid, code)
            if not self._restart_with_backoff():
                return
            self.last_restart_seconds = time.monotonic() - noticed

    def _restart_with_backoff(self) -> bool:
        while not self._stop.is_set():
            now = time.monotonic()
            while self.attempts and now - self.attempts[0] > self.window:
                self.attempts.popleft()
            if len(self.attempts) >= self.max_restarts:
                self.state = "failed"
                log.error("embedded search engine: gave up after %s restart attempts within %.0f s; search stays "
                          "unavailable until the server is restarted", len(self.attempts), self.window)
                return False
            if self.attempts:
                delay = min(self.first_delay * 2 ** (len(self.attempts) - 1), self.max_delay)
                if self._stop.wait(delay):
                    return False
            self.attempts.append(time.monotonic())
            try:
                url = self.embedded.restart()
            except (OsmemError, OSError) as e:
                log.error("embedded search engine: restart attempt %s of %s failed: %s", len(self.attempts),
                          self.max_restarts, e)
                continue
            self.restarts += 1
            self.state = "running"
            log.warning("embedded search engine restarted at %s (pid %s, attempt %s of %s); the index is rebuilt "
                        "from the database", url, self.embedded.pid, len(self.attempts), self.max_restarts)
            try:
                self.on_restart(url)
            except Exception:  # noqa: BLE001 - the supervisor must survive its callback
                log.exception("embedded search engine: handing the new engine to the server failed")
            return True
        return False
