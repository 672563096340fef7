"""Fixtures of the authorization tests: policies loaded from the real province files, users with grants."""

from __future__ import annotations

import pytest

from aidgraph.core.policy.host import casbin_objects
from aidgraph.core.access import authz
from aidgraph.core.storage.config import builtin_province_configs, load_settings
from aidgraph.core.storage.db import session_scope

CONFIGS = builtin_province_configs()


def auth_settings(db_url: str, tmp_path, **changes):
    """Settings with a generated development secret kept in a temporary state directory."""
    values = {"database_url": db_url, "env": "test", "state_dir": tmp_path / "state", "province_configs_dir": CONFIGS}
    return load_settings({}).with_(**{**values, **changes})


@pytest.fixture(scope="module")
def policies(sync_engine):
    """The three provinces' policies loaded into casbin_rule (core objects only: no plugin needed)."""
    with session_scope(sync_engine) as session:
        counts = authz.load_policies(session, CONFIGS, objects=authz.known_objects(casbin_objects()))
    authz.forget_authorizers()
    return counts
