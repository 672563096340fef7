"""Fixtures of the plugin tests: the real plugin manager and policy engine over the shipped province configs,
and writable copies of province_configs/ for the bad-input tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aidgraph.core.storage.config import builtin_province_configs, Settings
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.policy.host import build_plugin_manager

CONFIGS = builtin_province_configs()


@pytest.fixture(scope="session")
def pm():
    return build_plugin_manager()


@pytest.fixture(scope="session")
def engine(pm):
    return PolicyEngine(Settings(), pm)


@pytest.fixture
def configs(tmp_path) -> Path:
    """A writable copy of province_configs/."""
    target = tmp_path / "province_configs"
    shutil.copytree(CONFIGS, target)
    return target


@pytest.fixture
def copy_settings(configs) -> Settings:
    return Settings(province_configs_dir=configs)
