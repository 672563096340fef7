"""Casbin policies and grants on both engines: loading, bad lines, domain-prefix matching, scope decisions,
and the one scope predicate (SQL ranges select exactly what the plain prefix check accepts)."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from aidgraph.core.access import authz
from aidgraph.core.policy.host import casbin_objects
from aidgraph.core.access import users
from aidgraph.core.access.actor import Actor, RoleGrant
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import AppUser, CasbinRule, Region
from aidgraph.core.access.scope import Scope
from aidgraph.core.search.mapping import REGION_LEVEL_FIELDS, region_levels
from tests.authz.conftest import CONFIGS


def p_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(CasbinRule).where(CasbinRule.ptype == "p")).scalar()


def test_policies_load_and_reload_is_idempotent(sync_engine, policies):
    assert set(policies) == {"35", "44", "62"}
    before = p_count(sync_engine)
    assert before == sum(policies.values())
    with session_scope(sync_engine) as session:
        authz.load_policies(session, CONFIGS, objects=authz.known_objects(casbin_objects()))
    assert p_count(sync_engine) == before


BAD_LINES = [
    ("p, nurse, household, read", "unknown role 'nurse'"),
    ("p, county_officer, household, fly", "unknown action 'fly'"),
    ("p, county_officer, spaceship, read", "unknown object type 'spaceship'"),
    ("p, county_officer, health, approve", "action 'approve' does not apply to object 'health'"),
    ("p, county_officer, household, read, 3501", "region '3501' is not a region code inside province 44"),
    ("p, county_officer, household", "expected 'p, role, object, action[, region]', found 3 columns"),
    ("g, alice, county_officer, 44", "expected a policy line starting with 'p'"),
    ("p, province_admin, household, read", "duplicate policy line"),
]


@pytest.mark.parametrize("line, message", BAD_LINES)
def test_a_bad_policy_line_names_file_and_line(tmp_path, line, message):
    folder = tmp_path / "44"
    folder.mkdir()
    path = folder / "policy.csv"
    good = (CONFIGS / "44" / "policy.csv").read_text(encoding="utf-8")
    path.write_text(good + line + "\n", encoding="utf-8")
    line_number = len(good.splitlines()) + 1
    with pytest.raises(authz.PolicyError) as exc:
        authz.parse_policy_file(path, "44", authz.known_objects(casbin_objects()))
    assert f"{path}, line {line_number}: " in str(exc.value)
    assert message in str(exc.value)


def test_a_bad_file_writes_nothing(tmp_path, sync_engine, policies):
    for code in ("44", "35"):
        shutil.copytree(CONFIGS / code, tmp_path / code)
    # 35 is fine and 44 breaks on its last line: neither province changes.
    (tmp_path / "44" / "policy.csv").open("a", encoding="utf-8").write("p, auditor, household, approve_everything\n")
    (tmp_path / "35" / "policy.csv").write_text("p, auditor, household, read\n", encoding="utf-8")
    before = p_count(sync_engine)
    with pytest.raises(authz.PolicyError, match="line"):
        with session_scope(sync_engine) as session:
            authz.load_policies(session, tmp_path, objects=authz.known_objects(casbin_objects()))
    assert p_count(sync_engine) == before


def test_plugin_objects_are_accepted_when_contributed(tmp_path):
    folder = tmp_path / "62"
    folder.mkdir()
    (folder / "policy.csv").write_text("p, county_officer, medical_claim, approve\n", encoding="utf-8")
    with pytest.raises(authz.PolicyError, match="unknown object type 'medical_claim'"):
        authz.parse_policy_file(folder / "policy.csv", "62", authz.known_objects())
    objects = authz.known_objects({"medical_claim": ["read", "approve"]})
    assert authz.parse_policy_file(folder / "policy.csv", "62", objects)[0].object_type == "medical_claim"


@pytest.fixture(scope="module")
def people(sync_engine, policies):
    grants = {
        "tianhe_officer": [RoleGrant("county_officer", "440106")],
        "guangzhou_caseworker": [RoleGrant("township_caseworker", "440106011")],
        "shantou_caseworker": [RoleGrant("township_caseworker", "440511001")],
        "fuzhou_caseworker": [RoleGrant("township_caseworker", "350102001")],
        "lanzhou_caseworker": [RoleGrant("township_caseworker", "620102001")],
        "two_places": [RoleGrant("village_assistant", "440106011004"), RoleGrant("auditor", "3501")],
        "analyst": [RoleGrant("department_analyst", "4401")],
    }
    with session_scope(sync_engine) as session:
        for name, g in grants.items():
            if users.get_user(session, name) is None:
                users.add_user(session, name, g)
    return grants


def test_grant_in_a_region_covers_the_regions_below_it(sync_engine, people):
    enforcer = authz.build_enforcer(sync_engine)
    assert enforcer.enforce("tianhe_officer", "440106011004", "household", "read")
    assert enforcer.enforce("tianhe_officer", "440106", "enrollment", "approve")
    assert not enforcer.enforce("tianhe_officer", "440105", "household", "read")
    assert not enforcer.enforce("tianhe_officer", "44", "household", "read")  # above the grant
    assert not enforcer.enforce("tianhe_officer", "440106011004", "audit", "audit_read")


def test_each_province_applies_its_own_policy(sync_engine, people):
    enforcer = authz.build_enforcer(sync_engine)
    # GD-2021: township approval in the Pearl River Delta (Guangzhou 4401), not in Shantou (4405).
    assert enforcer.enforce("guangzhou_caseworker", "440106011", "enrollment", "approve")
    assert not enforcer.enforce("shantou_caseworker", "440511001", "enrollment", "approve")
    # FJ-2021: every Fujian township approves; the Gansu policy gives townships no approval.
    assert enforcer.enforce("fuzhou_caseworker", "350102001", "enrollment", "approve")
    assert not enforcer.enforce("lanzhou_caseworker", "620102001", "enrollment", "approve")
    assert enforcer.enforce("lanzhou_caseworker", "620102001", "enrollment", "review")


def test_decide_makes_one_enforce_call_per_grant_and_caches(sync_engine, people):
    authorizer = authz.Authorizer(authz.build_enforcer(sync_engine))
    actor = authorizer.bind(Actor("two_places", "x", grants=tuple(people["two_places"])))
    before = authorizer.enforce_calls
    assert actor.scope("read", "household").prefixes == ("3501", "440106011004")
    assert actor.scope("read", "household").prefixes == ("3501", "440106011004")
    assert authorizer.enforce_calls - before == 2
    assert actor.scope("create", "household").prefixes == ("440106011004",)  # auditors write nothing
    assert actor.scope("audit_read", "audit").prefixes == ("3501",)
    assert actor.scope("read_sensitive", "person").empty
    assert authorizer.enforce_calls - before == 2 * 4
    assert authorizer.decisions == 2 * 4
    assert authz.check(actor, "read", "350102001001") and not authz.check(actor, "read", "350202001001")
    # The next request decides again from its own grants; Casbin's answers are memoised per policy.
    again = authorizer.bind(Actor("two_places", "x", grants=tuple(people["two_places"])))
    assert again.scope("read", "household").prefixes == ("3501", "440106011004")
    assert (authorizer.decisions, authorizer.enforce_calls - before) == (2 * 5, 2 * 4)
    authorizer.reload()
    assert authorizer.bind(Actor("two_places", "x", grants=tuple(people["two_places"]))).scope().prefixes == (
        "3501", "440106011004")
    assert authorizer.enforce_calls - before == 2 * 5


def test_department_analyst_sees_its_domain_only(sync_engine, people):
    authorizer = authz.Authorizer(authz.build_enforcer(sync_engine))
    actor = authorizer.bind(Actor("analyst", "x", grants=tuple(people["analyst"])))
    assert actor.scope("read", "person").prefixes == ("4401",)
    assert actor.scope("read", "health").prefixes == ("4401",)
    assert actor.scope("read", "enrollment:medical").prefixes == ("4401",)
    for action, object_type in [("read", "household"), ("read_sensitive", "person"), ("read", "income"),
                                ("read", "enrollment"), ("read", "alert"), ("read", "enrollment:housing")]:
        assert actor.scope(action, object_type).empty, (action, object_type)


def g_count(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(AppUser)).scalar(),
                conn.execute(select(func.count()).select_from(CasbinRule).where(CasbinRule.ptype == "g")).scalar())


@pytest.mark.parametrize("grants, message", [
    ([RoleGrant("nurse", "44")], "unknown role 'nurse'"),
    ([RoleGrant("county_officer", "440106999")], "region 440106999 does not exist"),
    ([RoleGrant("county_officer", "4401x")], "is not a region code"),
    ([RoleGrant("county_officer", "440106"), RoleGrant("county_officer", "11")], "no policy loaded for province 11"),
    ([], "at least one"),
])
def test_bad_grants_write_nothing(sync_engine, people, grants, message):
    before = g_count(sync_engine)
    with pytest.raises(users.UserError, match=message):
        with session_scope(sync_engine) as session:
            users.add_user(session, "newcomer", grants)
    assert g_count(sync_engine) == before


def test_user_lifecycle(sync_engine, people):
    with session_scope(sync_engine) as session:
        users.add_user(session, "temp", [RoleGrant("auditor", "62")], "临时")
        with pytest.raises(users.UserError, match="already exists"):
            users.add_user(session, "temp", [RoleGrant("auditor", "62")])
        assert users.grant(session, "temp", [RoleGrant("auditor", "62"), RoleGrant("auditor", "6201")]) == [
            RoleGrant("auditor", "6201")]
        assert users.revoke(session, "temp", [RoleGrant("auditor", "62")]) == 1
        users.set_active(session, "temp", False)
    with session_scope(sync_engine) as session:
        view = {v.username: v for v in users.list_users(session)}["temp"]
        assert (view.display_name, view.active, view.grants) == ("临时", False, (RoleGrant("auditor", "6201"),))
        users.delete_user(session, "temp")
    with session_scope(sync_engine) as session:
        assert users.get_user(session, "temp") is None
        assert users.grants_of(session, "temp") == ()


# --- the scope predicate over the real region table ------------------------------------------------------


@pytest.fixture(scope="module")
def codes(sync_engine):
    with sync_engine.connect() as c:
        return sorted(c.execute(select(Region.code).where(Region.code >= "4401", Region.code < "4402")).scalars())


def _admits(clause: dict, doc: dict) -> bool:
    """Evaluate the clauses Scope.opensearch_filter builds (match_all, terms, bool should / must_not) on a doc."""
    (kind, body), = clause.items()
    if kind == "match_all":
        return True
    if kind == "terms":
        (name, values), = body.items()
        return doc.get(name) in values
    assert kind == "bool" and set(body) <= {"should", "must_not", "minimum_should_match"}, clause
    if "must_not" in body:
        return not _admits(body["must_not"], doc)
    return any(_admits(c, doc) for c in body["should"])


@pytest.fixture(scope="module")
def check(sync_engine, codes):
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def prop(data):
        # Prefixes at every level, often neighbours (so ranges merge), sometimes outside the data.
        picked = data.draw(st.lists(st.sampled_from(codes), min_size=0, max_size=12))
        widths = data.draw(st.lists(st.sampled_from([2, 4, 6, 9, 12]), min_size=len(picked), max_size=len(picked)))
        prefixes = {c[:w] for c, w in zip(picked, widths) if w <= len(c)} | set(
            data.draw(st.lists(st.sampled_from(["35", "4403", "440199", "999999"]), max_size=2)))
        scope = Scope.of(prefixes)
        with sync_engine.connect() as c:
            selected = set(c.execute(select(Region.code).where(
                Region.code >= "4401", Region.code < "4402", scope.predicate(Region.code))).scalars())
        assert selected == {code for code in codes if scope.contains(code)}
        # The search filter admits exactly the same codes, read as the engine reads it from a document's fields.
        search_filter = scope.opensearch_filter(REGION_LEVEL_FIELDS)
        admitted = {code for code in codes if _admits(search_filter, {**region_levels(code), "region_code": code})}
        assert admitted == {code for code in codes if scope.contains(code)}

    return prop


def test_predicate_equals_prefix_check(check):
    check()


def test_neighbouring_regions_merge_into_one_range():
    guangzhou = ["440103", "440104", "440105", "440106", "440111", "440112", "440113", "440114", "440115",
                 "440117", "440118"]
    assert Scope.of(guangzhou).ranges() == [("440103", "440107"), ("440111", "440116"), ("440117", "440119")]
    assert Scope.of(["440199", "440200"]).ranges() == [("440199", "4402"), ("440200", "440201")]
    assert Scope.everything().contains("44") and Scope.nothing().empty
