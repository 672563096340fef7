"""Fixtures of the rule tests: the same real plugin manager, policy engine and writable province configs as the
plugin tests (one definition, imported)."""

from tests.plugins.conftest import configs, copy_settings, engine, pm  # noqa: F401 - pytest fixtures
