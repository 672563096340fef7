"""Demo and fixture accounts: a user with a role in some regions, its province's policies, and a token.

In the app floor because loading a province's Casbin policies needs the objects every plugin declares
(:func:`aidgraph.core.policy.host.casbin_objects`), which the access floor cannot know.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine

from aidgraph.core.access import authz, users
from aidgraph.core.access.actor import RoleGrant
from aidgraph.core.access.authn import DEMO_USERNAME, issue_token
from aidgraph.core.policy.host import casbin_objects
from aidgraph.core.storage.config import Settings, load_settings
from aidgraph.core.storage.db import session_scope


def ensure_demo_user(engine: Engine, settings: Settings | None = None, username: str = DEMO_USERNAME,
                     region_codes: Iterable[str] = ("44",), ttl: str | None = None,
                     role: str = "province_admin", region_code: str | None = None) -> str:
    """A user holding ``role`` (a province administrator by default) in each region, policies loaded if
    missing, and a fresh token for it. The demo and the test fixtures call this; re-running is harmless."""
    settings = settings or load_settings()
    if region_code is not None:
        region_codes = (region_code,)
    codes = [region_codes] if isinstance(region_codes, str) else list(region_codes)
    grants = [RoleGrant(role, code) for code in codes]
    with session_scope(engine) as session:
        loaded = authz.policy_provinces(session)
        missing = sorted({code[:2] for code in codes} - loaded)
        if missing:
            authz.load_policies(session, settings.province_configs_dir, missing,
                                  authz.known_objects(casbin_objects(settings)))
        user = users.get_user(session, username)
        if user is None:
            user = users.add_user(session, username, grants, display_name="Demo administrator")
        else:
            user.active = True
            users.grant(session, username, grants)
        session.flush()
        return issue_token(settings, user, ttl)
