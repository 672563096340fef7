"""A live aidgraph server on a loopback port, run by uvicorn in a thread, and a small HTTP client for it.

Contract tests talk to it over real HTTP with httpx, sending the frontends' operations document unchanged.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from aidgraph.core.app.server import AppComponents, create_app

OPERATIONS = (Path(__file__).parent / "contract" / "operations.graphql").read_text(encoding="utf-8")


def _split_operations(source: str) -> dict[str, str]:
    """Each operation's own text, sliced from the document unchanged (the operations use no fragments)."""
    from graphql import parse

    return {d.name.value: source[d.loc.start:d.loc.end] for d in parse(source).definitions}


OPERATION_TEXT = _split_operations(OPERATIONS)


def wait_for(predicate, timeout: float = 60.0, step: float = 0.1):
    """Poll ``predicate`` until it returns something truthy or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def _ephemeral_ports_start() -> int:
    """The first port of the kernel's ephemeral range, from which every outgoing connection takes its own port."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A loopback port nothing listens on now, for a server another process will bind.

    Between this call and that bind the port is nobody's, so it is picked at random below the ephemeral range:
    a port the kernel handed out (``bind`` to port 0) can be taken meanwhile as the source port of any of the
    suite's client connections, which is how a server of a parallel run once failed with "address already in
    use". A server run in this process takes a socket bound here instead (:func:`listening_socket`)."""
    start = _ephemeral_ports_start()
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.randrange(10000, start) if start > 10000 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free loopback port found below the ephemeral range")


def listening_socket() -> socket.socket:
    """A socket bound to a loopback port and kept: the server given it listens there, and no other process can
    take the port before it does."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class LiveServer:
    url: str
    components: AppComponents
    token: str | None = None
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    def post(self, query: str, variables: dict | None = None, operation_name: str | None = None,
             token: str | None = ..., headers: dict | None = None) -> httpx.Response:
        h = dict(headers or {})
        tok = self.token if token is ... else token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        body = {"query": query, "variables": variables or {}}
        if operation_name:
            body["operationName"] = operation_name
        return self.client.post(f"{self.url}/graphql", json=body, headers=h)

    def op(self, name: str, variables: dict | None = None, token: str | None = ...) -> dict:
        """Run one operation of the contract document; return the JSON body (asserting HTTP 200)."""
        response = self.post(OPERATION_TEXT[name], variables, name, token=token)
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, name: str, variables: dict | None = None, token: str | None = ...) -> dict:
        """Run one contract operation and return ``data``, failing on any GraphQL error."""
        body = self.op(name, variables, token)
        assert "errors" not in body, body["errors"]
        return body["data"]


@contextlib.contextmanager
def run_live_server(components: AppComponents) -> Iterator[LiveServer]:
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(components), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            sock.close()
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    live = LiveServer(url=f"http://127.0.0.1:{port}", components=components)
    try:
        yield live
    finally:
        live.client.close()
        server.should_exit = True
        thread.join(timeout=30)
