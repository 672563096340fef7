"""Fixtures of the personal-data tests: a fresh database per test where a test tampers with or prunes it."""

from __future__ import annotations

import pytest

from aidgraph.core.storage.db import make_sync_engine
from tests.conftest import ENGINES, make_database


@pytest.fixture(params=ENGINES)
def fresh_engine(request, tmp_path_factory):
    """A fresh migrated database (regions loaded) for one test, on each engine."""
    engine = make_sync_engine(make_database(request.param, request, tmp_path_factory))
    yield engine
    engine.dispose()


class SystemActor:
    """The writer of test audit rows (what the CLI's system actor looks like to ``audit.record``)."""

    def __init__(self, username: str = "tester", remote_addr: str | None = "127.0.0.1"):
        self.username = username
        self.remote_addr = remote_addr
