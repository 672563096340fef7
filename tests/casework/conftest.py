"""Fixtures of the casework tests: a small seeded province and users with roles, over a live server on both
engines (the module-scoped ``live_server`` of tests/conftest.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aidgraph.core.app.demo import ensure_demo_user
from tests.conftest import server_settings
from tests.monitoring.conftest import seed_world


@pytest.fixture(scope="module")
def world(sync_engine):
    return seed_world(sync_engine, "44", households=10, start=31)


def token_for(db_url, sync_engine, username, role, region):
    return ensure_demo_user(sync_engine, server_settings(db_url), username=username, role=role, region_code=region)


def count(engine, model, *where) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))
