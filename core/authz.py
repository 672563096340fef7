"""Authorization decisions: the one function every workflow step asks before it acts.

Scopes are decided once per request and cached on the :class:`~core.actor.Actor`; :func:`check` answers
from that cache, so a workflow never enforces per row. The Casbin enforcer (RBAC with domains, the domain a
region code) is what decides the scopes; see the authorization issue for the full policy model.
"""

from __future__ import annotations

from core.actor import Actor


def check(actor: Actor, action: str, region_code: str | None, object_type: str = "household") -> bool:
    """May ``actor`` take ``action`` on a record of ``object_type`` owned by ``region_code``?"""
    return actor.may(action, region_code, object_type)
