"""Authorization: Casbin decides, once per request, where an actor may do what; the data layer filters.

The model (``core/authz_model.conf``) is RBAC with domains, the domain being an NBS region code:
- policies (``p, role, province, object, action``) come from ``province_configs/<code>/policy.csv`` and
  apply only inside that province, so one province's rules never reach another's records;
- grants (``g, username, role, region``) are written by ``aidgraph users add``; a grant in a region covers
  every region below it (a code-prefix domain match: ``4401`` covers ``440106011``).

Both live in the ``casbin_rule`` table (created by migration; the casbin-sqlalchemy-adapter reads it).

A request never asks Casbin per row. :meth:`Authorizer.decide` turns the actor's grants into a
:class:`~aidgraph.core.access.scope.Scope` (a set of region prefixes) with one decision per grant, and the actor caches
that scope per (action, object type) for the request; Casbin's answers are memoised per (role, region,
object, action) until the policy is reloaded. :func:`check` answers single-record questions from
the cache. Field groups that are sensitive (health 健康状况, disability 残疾, income 收入与财产) are object
types of their own with the ``read`` action, so an entitled role can be granted them without the full ID
numbers (``read_sensitive`` on ``person``) and the reverse.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import casbin
from casbin import persist
from sqlalchemy import Engine, and_, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from aidgraph.core.access.actor import ACTIONS, Actor, RoleGrant
from aidgraph.core.storage.models import CasbinRule, Region
from aidgraph.core.access.scope import Scope, _successor, is_level_code
from aidgraph.core.storage.db import make_sync_engine

MODEL_PATH = Path(__file__).with_name("authz_model.conf")
POLICY_FILE = "policy.csv"

ROLES = (
    "province_admin",
    "city_officer",
    "county_officer",
    "township_caseworker",
    "village_assistant",
    "department_analyst",
    "auditor",
)
"""Roles every province's policy may use (省级管理员, 市级/县级经办, 乡镇经办, 村级协理员, 部门分析员, 审计员)."""

_EXPORT_ACTIONS = frozenset(a for a in ACTIONS if a.startswith("export_"))
_SIMULATION_ACTIONS = frozenset({"run", "save_scenario"})
"""政策模拟: run a simulation (and read the saved scenarios), save one as a scenario."""
CORE_OBJECTS: dict[str, frozenset[str]] = {
    "household": frozenset(ACTIONS) - {"audit_read"} - _SIMULATION_ACTIONS - _EXPORT_ACTIONS,
    "person": frozenset(ACTIONS) - {"audit_read"} - _SIMULATION_ACTIONS - _EXPORT_ACTIONS,
    "enrollment": frozenset(ACTIONS) - {"audit_read"} - _SIMULATION_ACTIONS - _EXPORT_ACTIONS,
    "alert": frozenset(ACTIONS) - {"audit_read"} - _SIMULATION_ACTIONS - _EXPORT_ACTIONS,
    "payment": frozenset({"read", "create", "disburse", "export"}),
    "health": frozenset({"read"}),
    "disability": frozenset({"read"}),
    "income": frozenset({"read"}),
    "audit": frozenset({"audit_read", "export"}),
    "simulation": _SIMULATION_ACTIONS,
    "export": frozenset({"export_households", "export_alerts", "export_gaps", "export_audit"}),
}
"""Object types of the core and the actions that make sense on each; plugins add theirs by hook."""

PARTITIONED_OBJECTS = {"enrollment": "aid domain", "referral": "department"}
"""Objects that a policy line may grant one part of, as ``<object>:<part>`` with the object's actions:
``enrollment:<aid domain>`` (one domain's cases: 部门只看本部门数据) and ``referral:<department key>`` (the referrals sent to one
receiving department: a medical insurance analyst answers the medical insurance bureau's, and reads no other
department's reasons)."""


class PolicyError(ValueError):
    """A policy file or grant is wrong; the message names the file and line (or the role and region)."""


def _within(request_domain: str, policy_domain: str) -> bool:
    return str(request_domain).startswith(str(policy_domain))


def known_objects(extra: Mapping[str, Iterable[str]] | None = None) -> dict[str, frozenset[str]]:
    """Core objects plus those contributed by plugins (``aidgraph_casbin_objects``), actions merged."""
    objects = dict(CORE_OBJECTS)
    for name, actions in (extra or {}).items():
        objects[name] = objects.get(name, frozenset()) | frozenset(actions)
    return objects


# --- policy files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyLine:
    role: str
    domain: str
    object_type: str
    action: str

    def as_row(self) -> dict:
        return {"ptype": "p", "v0": self.role, "v1": self.domain, "v2": self.object_type, "v3": self.action}


def parse_policy_file(path: Path, province_code: str,
                      objects: Mapping[str, frozenset[str]] | None = None) -> list[PolicyLine]:
    """Read ``p, role, object, action[, region]`` lines; the region defaults to the province.

    Every problem raises :class:`PolicyError` naming the file and the line: an unknown role, object or
    action, an action that makes no sense on the object, a region outside the province, a wrong column count.
    """
    objects = known_objects() if objects is None else objects
    if not (province_code.isdigit() and len(province_code) == 2):
        raise PolicyError(f"{path}: the folder name {province_code!r} is not a 2-digit province code")
    lines: list[PolicyLine] = []
    seen: set[PolicyLine] = set()
    with path.open(encoding="utf-8", newline="") as f:
        for number, row in enumerate(csv.reader(f, skipinitialspace=True), start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue

            def bad(message: str) -> PolicyError:
                return PolicyError(f"{path}, line {number}: {message}")

            if cells[0] != "p":
                raise bad(f"expected a policy line starting with 'p', found {cells[0]!r} "
                          "(user grants are not kept in policy files: use `aidgraph users add`)")
            if len(cells) not in (4, 5):
                raise bad(f"expected 'p, role, object, action[, region]', found {len(cells)} columns")
            _, role, object_type, action = cells[:4]
            domain = cells[4] if len(cells) == 5 and cells[4] else province_code
            if role not in ROLES:
                raise bad(f"unknown role {role!r} (known: {', '.join(ROLES)})")
            if action not in ACTIONS:
                raise bad(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
            base, colon, part = object_type.partition(":")
            if colon and base in PARTITIONED_OBJECTS and base in objects:
                if not part.replace("_", "").isalnum():
                    raise bad(f"bad {PARTITIONED_OBJECTS[base]} in object {object_type!r}")
                allowed = objects[base]
            elif object_type in objects:
                allowed = objects[object_type]
            else:
                raise bad(f"unknown object type {object_type!r} (known: {', '.join(sorted(objects))}, " + ", ".join(
                    f"{name}:<{what}>" for name, what in PARTITIONED_OBJECTS.items()) + ")")
            if action not in allowed:
                raise bad(f"action {action!r} does not apply to object {object_type!r}")
            if not is_level_code(domain) or not domain.startswith(province_code):
                raise bad(f"region {domain!r} is not a region code inside province {province_code}")
            line = PolicyLine(role, domain, object_type, action)
            if line in seen:
                raise bad(f"duplicate policy line {role}, {object_type}, {action}, {domain}")
            seen.add(line)
            lines.append(line)
    if not lines:
        raise PolicyError(f"{path}: no policy lines")
    return lines


def policy_files(configs_dir: Path, provinces: Iterable[str] | None = None) -> dict[str, Path]:
    """``{province code: policy.csv}`` for every province folder that has one (or those asked for)."""
    wanted = set(provinces) if provinces is not None else None
    found: dict[str, Path] = {}
    for folder in sorted(p for p in Path(configs_dir).iterdir() if p.is_dir()):
        if wanted is not None and folder.name not in wanted:
            continue
        path = folder / POLICY_FILE
        if path.exists():
            found[folder.name] = path
    if wanted is not None and wanted - set(found):
        missing = ", ".join(sorted(wanted - set(found)))
        raise PolicyError(f"no {POLICY_FILE} for province {missing} under {configs_dir}")
    return found


def _under(column, prefix: str):
    return and_(column >= prefix, column < _successor(prefix))


def load_policies(session: Session, configs_dir: Path, provinces: Iterable[str] | None = None,
                  objects: Mapping[str, frozenset[str]] | None = None) -> dict[str, int]:
    """Replace each province's policy lines in ``casbin_rule`` with its file's (set-at-a-time, re-runnable).

    ``objects``: the objects and actions policy lines may name; the core's own by default, and the caller
    adds what plugins declare (``known_objects(casbin_objects())`` from the policy floor).

    Every file is parsed before anything is written, so one bad line anywhere writes nothing. The caller's
    transaction makes the replacement atomic; grants (``g`` lines) are untouched.
    """
    objects = known_objects() if objects is None else objects
    parsed = {code: parse_policy_file(path, code, objects) for code, path in policy_files(configs_dir, provinces).items()}
    if not parsed:
        raise PolicyError(f"no province folder with a {POLICY_FILE} under {configs_dir}")
    for code, lines in parsed.items():
        session.execute(delete(CasbinRule).where(CasbinRule.ptype == "p", _under(CasbinRule.v1, code)))
        session.execute(insert(CasbinRule), [line.as_row() for line in lines])
    return {code: len(lines) for code, lines in parsed.items()}


def policy_provinces(session: Session) -> set[str]:
    """Provinces that have policy lines loaded."""
    rows = session.execute(select(func.substr(CasbinRule.v1, 1, 2)).where(CasbinRule.ptype == "p").distinct())
    return {r[0] for r in rows}


# --- grants -------------------------------------------------------------------------------------------


def validate_grants(session: Session, grants: Iterable[RoleGrant]) -> list[RoleGrant]:
    """Check every (role, region): a known role, a region that exists, a province with a policy loaded."""
    grants = list(grants)
    problems: list[str] = []
    codes = {g.region_code for g in grants}
    existing = set(session.scalars(select(Region.code).where(Region.code.in_(codes)))) if codes else set()
    provinces = policy_provinces(session)
    for g in grants:
        if g.role not in ROLES:
            problems.append(f"unknown role {g.role!r} (known: {', '.join(ROLES)})")
        if not is_level_code(g.region_code):
            problems.append(f"region {g.region_code!r} is not a region code (2, 4, 6, 9 or 12 digits)")
        elif g.region_code not in existing:
            problems.append(f"region {g.region_code} does not exist")
        elif g.region_code[:2] not in provinces:
            problems.append(f"no policy loaded for province {g.region_code[:2]} (run `aidgraph policy load`)")
    if problems:
        raise PolicyError("; ".join(problems))
    return grants


def grant_rows(username: str, grants: Iterable[RoleGrant]) -> list[dict]:
    return [{"ptype": "g", "v0": username, "v1": g.role, "v2": g.region_code} for g in grants]


def grants_query(username: str):
    """The statement that reads one user's grants (run by sync and async sessions alike)."""
    return (select(CasbinRule.v1, CasbinRule.v2)
            .where(CasbinRule.ptype == "g", CasbinRule.v0 == username)
            .order_by(CasbinRule.v2, CasbinRule.v1))


def policy_version_query():
    """A cheap fingerprint of the loaded policy lines, to notice a `policy load` by another process."""
    return select(func.count(CasbinRule.id), func.max(CasbinRule.id), func.min(CasbinRule.id)).where(
        CasbinRule.ptype == "p")


# --- the enforcer -----------------------------------------------------------------------------------------


class RuleAdapter(persist.Adapter):
    """pycasbin's adapter interface over ``casbin_rule`` (the table comes from migration), read-only: policy
    lines are written by :func:`load_policies` in the caller's transaction, never through the enforcer. It
    replaces casbin-sqlalchemy-adapter, whose releases still require the unmaintained ``casbin`` name."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def load_policy(self, model) -> None:
        with Session(self.engine) as session:
            for row in session.execute(select(CasbinRule).order_by(CasbinRule.id)).scalars():
                persist.load_policy_line(str(row), model)


def build_enforcer(engine: Engine) -> casbin.Enforcer:
    """A Casbin enforcer (pycasbin) over ``casbin_rule`` through :class:`RuleAdapter`."""
    enforcer = casbin.Enforcer(str(MODEL_PATH), RuleAdapter(engine))
    enforcer.add_function("within", _within)
    enforcer.add_named_domain_matching_func("g", _within)
    enforcer.build_role_links()
    return enforcer


MEMO_LIMIT = 100_000


@dataclass
class Authorizer:
    """The process's enforcer, with counters the tests and the benchmark read.

    ``decisions`` counts (grant, action, object type) questions, at most one per grant for each (action,
    object type) a request touches; ``enforce_calls`` counts the Casbin evaluations behind them. Casbin's
    answer for (role, region, object, action) depends on the policy alone, so it is memoised until the policy
    is reloaded: pycasbin evaluates the matcher against every policy line (about a millisecond per call),
    which a request should not pay for each of its scopes.
    """

    enforcer: casbin.Enforcer
    enforce_calls: int = 0
    decisions: int = 0
    policy_version: tuple | None = None
    checked_at: float = field(default_factory=time.monotonic)
    _memo: dict = field(default_factory=dict, repr=False)
    _scopes: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enforce(self, subject: str, region_code: str, object_type: str, action: str) -> bool:
        """One Casbin evaluation, uncached."""
        with self._lock:
            self.enforce_calls += 1
            return bool(self.enforcer.enforce(subject, region_code, object_type, action))

    def allows(self, role: str, region_code: str, object_type: str, action: str) -> bool:
        """Does the policy let ``role`` granted in ``region_code`` take ``action`` on ``object_type`` there?"""
        key = (role, region_code, object_type, action)
        with self._lock:
            self.decisions += 1
            answer = self._memo.get(key)
        if answer is None:
            answer = self.enforce(role, region_code, object_type, action)
            with self._lock:
                if len(self._memo) >= MEMO_LIMIT:
                    self._memo.clear()
                self._memo[key] = answer
        return answer

    def decide(self, actor: Actor, action: str, object_type: str) -> Scope:
        """The actor's scope for ``action`` on ``object_type``: one decision per grant, never per record.

        The subject is the granted role in the grant's region: the grant itself was read from the database
        for this request, so a revoked grant or a deactivated user takes effect at once.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        prefixes = tuple(g.region_code for g in actor.grants if self.allows(g.role, g.region_code, object_type, action))
        scope = self._scopes.get(prefixes)
        if scope is None:  # the same grants give the same scope: normalise once per distinct prefix set
            scope = Scope.of(prefixes)
            with self._lock:
                if len(self._scopes) >= MEMO_LIMIT:
                    self._scopes.clear()
                self._scopes[prefixes] = scope
        return scope

    def reload(self) -> None:
        with self._lock:
            self.enforcer.load_policy()
            self.enforcer.build_role_links()
            self._memo.clear()

    def bind(self, actor: Actor) -> Actor:
        """Make ``actor`` decide its scopes with this authorizer."""
        actor._decide = self.decide
        return actor


_authorizers: dict[str, Authorizer] = {}
_authorizers_lock = threading.Lock()
POLICY_RECHECK_SECONDS = 5.0
"""How often a long-running server looks for a policy reload by another process (one tiny query)."""


def authorizer_for(database_url: str) -> Authorizer:
    """The process-wide authorizer of one database (built on first use)."""
    with _authorizers_lock:
        if database_url not in _authorizers:
            engine = make_sync_engine(database_url)
            try:
                _authorizers[database_url] = Authorizer(build_enforcer(engine))
            finally:
                engine.dispose()
        return _authorizers[database_url]


def forget_authorizers() -> None:
    """Drop cached enforcers (tests that recreate databases)."""
    with _authorizers_lock:
        _authorizers.clear()



def partitioned_predicate(actor: Actor, object_type: str, region_column, part_column,
                          parts: Mapping[str, Iterable[str]], action: str = "read"):
    """Rows of a partitioned object (:data:`PARTITIONED_OBJECTS`) the actor may take ``action`` on: every row in
    its ``<object>`` scope, plus the rows whose ``part_column`` is one of ``parts[part]`` in its
    ``<object>:<part>`` scope. One SQL predicate, decided once per request like every scope."""
    clauses = [actor.scope(action, object_type).predicate(region_column)]
    for part, values in parts.items():
        scope = actor.scope(action, f"{object_type}:{part}")
        values = list(values)
        if not scope.empty and values:
            clauses.append(and_(part_column.in_(values), scope.predicate(region_column)))
    return clauses[0] if len(clauses) == 1 else or_(*clauses)


def may_partitioned(actor: Actor, action: str, region_code: str | None, object_type: str, part: str) -> bool:
    """One row of a partitioned object: the whole object's grant, or the grant of the row's part."""
    return actor.may(action, region_code, object_type) or actor.may(action, region_code, f"{object_type}:{part}")


def enrollment_read_predicate(actor: Actor, region_column, program_key_column,
                              programs_by_domain: Mapping[str, Iterable[str]], action: str = "read"):
    """Cases the actor may see: all programs in its ``enrollment`` scope, plus one aid domain's programs in its
    ``enrollment:<domain>`` scope (department analysts). Decided once per request like every scope."""
    return partitioned_predicate(actor, "enrollment", region_column, program_key_column, programs_by_domain, action)


def check(actor: Actor, action: str, region_code: str | None, object_type: str = "household") -> bool:
    """May ``actor`` take ``action`` on a record of ``object_type`` owned by ``region_code``?"""
    return actor.may(action, region_code, object_type)
