"""The embedded default search engine: the ``osmem-server`` binary from its wheel, on a loopback port.

With no ``AIDGRAPH_OPENSEARCH_URL`` the server starts one of these, indexes the database into it (it is in
memory, so every start is a full reindex) and stops it on exit. The binary is told our process id and exits
with us even if we die without cleaning up. The address is written to the state directory so that
``aidgraph index`` and ``aidgraph reindex`` run from another shell reach the engine of the running server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from osmem_server import OsmemServer

from aidgraph.core.storage.config import Settings
from aidgraph.core.search.client import embedded_state_file


class EmbeddedSearch:
    """A running osmem-server owned by this process."""

    def __init__(self, server: OsmemServer, state_file: Path | None = None):
        self.server = server
        self.state_file = state_file

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        return self.server.pid

    @classmethod
    def start(cls, settings: Settings | None = None, *, addr: str = "127.0.0.1:0",
              startup_timeout: float = 30.0) -> "EmbeddedSearch":
        """Start the bundled engine on loopback (``addr`` port 0: a free port)."""
        server = OsmemServer.start(freeze=False, japanese=False, addr=addr, startup_timeout=startup_timeout)
        state_file = None
        if settings is not None:
            state_file = embedded_state_file(settings)
            try:
                state_file.parent.mkdir(parents=True, exist_ok=True)
                state_file.write_text(json.dumps({"url": server.url, "pid": server.pid, "server_pid": os.getpid()}),
                                      encoding="utf-8")
            except OSError:
                state_file = None  # the CLI then needs AIDGRAPH_OPENSEARCH_URL; the server works regardless
        return cls(server, state_file)

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
