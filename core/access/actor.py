"""Who is asking: the actor and the data scopes decided for one request.

Every request context carries an :class:`Actor`. Scopes are decided once per request per action (by
:mod:`aidgraph.core.access.authz`) and cached on the actor, so no data path ever asks Casbin per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aidgraph.core.access.scope import Scope
from aidgraph.core.storage.rls import scope_setting

ACTIONS = (
    "read", "read_sensitive", "create", "update", "apply", "review", "approve", "disburse",
    "dispose_alert", "search", "export", "audit_read", "run", "save_scenario",
    "export_households", "export_alerts", "export_gaps", "export_audit",
)
"""``run``: run a policy simulation (政策模拟, object ``simulation``): reads no record, writes none; it also reads
the saved scenarios (政策模拟方案) of the regions where it is granted. ``save_scenario`` (object ``simulation``): keep
a simulation as a named scenario (writes the scenario and its audit entry only).
``export_<kind>`` (object ``export``): download that list as a file (aidgraph.core.graph.exports)."""


@dataclass(frozen=True)
class RoleGrant:
    """A role held in one region (the Casbin domain)."""

    role: str
    region_code: str


@dataclass
class Actor:
    username: str
    display_name: str
    grants: tuple[RoleGrant, ...] = ()
    remote_addr: str | None = None
    system: bool = False
    """System jobs (CLI batch work, the development user) see everything and are audited under their name."""
    _scopes: dict[tuple[str, str], Scope] = field(default_factory=dict, repr=False)
    _decide: object = field(default=None, repr=False)

    @property
    def roles(self) -> list[str]:
        return sorted({g.role for g in self.grants})

    def scope(self, action: str = "read", object_type: str = "household") -> Scope:
        """The region prefixes where this actor may take ``action`` on ``object_type`` (decided once, cached)."""
        key = (action, object_type)
        if key not in self._scopes:
            if self.system:
                self._scopes[key] = Scope.everything()
            elif self._decide is None:
                self._scopes[key] = Scope.nothing()
            else:
                self._scopes[key] = self._decide(self, action, object_type)  # type: ignore[operator]
        return self._scopes[key]

    def row_scope(self) -> str:
        """The value of the row-level security setting for this actor's transactions (core/storage/rls.py): the
        region envelope, i.e. the regions of its grants. Every scope Casbin decides for it is a subset (a grant
        that allows an action contributes its own region, nothing else), so the policies never hide a row the
        application's predicate admits; unrestricted for system actors, nothing without grants."""
        if self.system:
            return scope_setting(None)
        return scope_setting(Scope.of(g.region_code for g in self.grants).prefixes)

    def may(self, action: str, region_code: str | None, object_type: str = "household") -> bool:
        return self.scope(action, object_type).contains(region_code)

    def peer(self, username: str, display_name: str, grants: tuple[RoleGrant, ...]) -> Actor:
        """Another user judged by this actor's authorizer: what a roster may do (the inspectors a county can
        draw), decided by the same Casbin policy as the caller's own rights."""
        return Actor(username=username, display_name=display_name, grants=grants, _decide=self._decide)


def system_actor(name: str = "system") -> Actor:
    return Actor(username=name, display_name=name, system=True)

