"""What a role may not read is neither shown nor derivable (issue 12, items 1, 3, 4 and 5), over HTTP on both
engines, with the real province policy: a village assistant (村级协理员: masked records, no health, no
incomes) and an auditor (审计: masked records, the audit log, no incomes) against a province administrator.

- Item 1: every field a village assistant sees of a person is combined and the full ID number is searched for
  (birth dates in the hidden window, the check character): more than one candidate must remain.
- Item 3: indicators and aid-chain summaries naming diseases, audit rows with amounts, relationships to
  out-of-scope relatives: withheld by the one classification in aidgraph.core.graph.privacy.
- Item 4: ID and phone numbers typed into notes, in any format, masked without the sensitive right.
- Item 5: ID-number search audits are filed under a region.
"""

from __future__ import annotations

import datetime as dt

import pytest

from aidgraph.core.access import authz
from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.app.server import default_components
from aidgraph.core.graph import privacy
from aidgraph.core.graph.idnumber import make, parse
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import (AidChainEvent, Alert, AuditLog, EconomicItem, Household, Membership, Person,
                                          Relationship)
from tests.conftest import server_settings
from tests.live import run_live_server

VILLAGE = "440106011004"
FAR_VILLAGE = "440303001001"
BIRTH = dt.date(1987, 6, 14)
HEAD_ID = make("440106", BIRTH, 45)
FREE_ID = make("440106", dt.date(1990, 1, 1), 12)
NOTE = (f"核实: 联系 138 1234 5678 / ＋86 １３９－８７６５－４３２１, 身份证 {FREE_ID[:6]} {FREE_ID[6:14]} {FREE_ID[14:]}, "
        f"全角 {''.join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in FREE_ID)}")


@pytest.fixture(scope="module")
def world(db_url):
    engine = make_sync_engine(db_url)
    with session_scope(engine) as s:
        head = Person(id_number=HEAD_ID, name="陈明", sex=parse(HEAD_ID).sex, birth_date=BIRTH,
                      hukou_region_code="440106", region_code=VILLAGE, chronic_disease=True, phone="13812345678")
        kid_birth = dt.date(2015, 9, 1)
        far_kid = Person(id_number=make("440303", kid_birth, 77), name="陈小", sex="MALE", birth_date=kid_birth,
                         hukou_region_code="440303", region_code=FAR_VILLAGE)
        near = Person(id_number=make("440106", dt.date(1960, 2, 2), 33), name="陈老", sex="MALE",
                      birth_date=dt.date(1960, 2, 2), hukou_region_code="440106", region_code=VILLAGE)
        h = Household(household_number="HSEC000001", region_code=VILLAGE)
        s.add_all([head, far_kid, near, h])
        s.flush()
        s.add_all([
            Membership(household_id=h.id, person_id=head.id, relation_to_head="SELF", valid_from=dt.date(2020, 1, 1)),
            Membership(household_id=h.id, person_id=near.id, relation_to_head="PARENT", valid_from=dt.date(2020, 1, 1)),
            Relationship(from_person_id=head.id, to_person_id=far_kid.id, kind="PARENT", valid_from=kid_birth),
            Relationship(from_person_id=near.id, to_person_id=head.id, kind="PARENT", valid_from=BIRTH),
            Alert(household_id=h.id, person_id=head.id, region_code=VILLAGE, township_code=VILLAGE[:9], level="RED",
                  score=80, status="OPEN", indicators=["hospitalisation", "new_unemployment", "income_drop"],
                  month="2026-10"),
            AidChainEvent(household_id=h.id, kind="ALERT", summary="监测预警 RED: 住院, 新增失业"),
            AidChainEvent(household_id=h.id, kind="REFERRAL", summary="预警转办 (referred): " + NOTE),
            AidChainEvent(household_id=h.id, kind="PAYMENT", summary="医疗救助 medical aid 3200.00 yuan",
                          program_key="medical"),
            AidChainEvent(household_id=h.id, kind="MEMBERSHIP", summary="household registered with 2 member(s)"),
            AuditLog(actor="cw", action="update", object_type="economic_item", region_code=VILLAGE,
                     detail={"householdId": h.id, "kind": "WAGE", "amount": "2345.67"}),
            AuditLog(actor="cw", action="settle", object_type="medical_claim", object_id="9", region_code=VILLAGE,
                     detail={"category": "dibao", "aid": "1200.00", "secondary": "0"}),
            AuditLog(actor="cw", action="dispose_alert", object_type="alert", object_id="1", region_code=VILLAGE,
                     detail={"note": NOTE}),
            EconomicItem(household_id=h.id, person_id=head.id, kind="WAGE", source="tax", amount=2345.67,
                         period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 1, 31), recorded_by="cw"),
        ])
        ids = {"household": h.id, "head": head.id}
    settings = server_settings(db_url)
    tokens = {
        "admin": ensure_demo_user(engine, settings, username="sec-admin", region_codes=("44",)),
        "assistant": ensure_demo_user(engine, settings, username="sec-assistant", role="village_assistant",
                                      region_code=VILLAGE),
        "auditor": ensure_demo_user(engine, settings, username="sec-auditor", role="auditor", region_code="44"),
    }
    engine.dispose()
    authz.forget_authorizers()
    with run_live_server(default_components(settings)) as live:
        live.tokens = tokens
        live.ids = ids
        yield live
    authz.forget_authorizers()


PERSON_FIELDS = ("id name idNumber sex birthDate age hukouRegionCode disabilityLevel disabilityCategory chronicDisease "
                 "majorDisease hospitalised employmentStatus labourCapacity studentStage phone deathDate "
                 "relationships { kind since until person { id } }")


def gql(world, who: str, query: str, variables: dict | None = None) -> dict:
    body = world.post(query, variables or {}, token=world.tokens[who]).json()
    assert "errors" not in body, body
    return body["data"]


def household(world, who: str) -> dict:
    from aidgraph.schema.relay import to_global_id

    q = ("query($id: ID!) { household(id: $id) { members { since person { %s } } "
         "aidChain(first: 50) { edges { node { kind summary } } } "
         "alerts { indicators disposition level score } economics { monthlyIncome } } }" % PERSON_FIELDS)
    return gql(world, who, q, {"id": to_global_id("Household", world.ids["household"])})["household"]


def candidates(person: dict, today: dt.date) -> list[str]:
    """Every ID number consistent with all the visible fields of ``person`` (the rebuild an attacker runs)."""
    masked = person["idNumber"]
    prefix, suffix = masked[:6], masked[-4:]
    found = []
    day = dt.date(today.year - person["age"] - 1, 1, 1)
    while day <= today:
        if person["birthDate"] is not None and day.isoformat() != person["birthDate"]:
            day += dt.timedelta(days=1)
            continue
        from aidgraph.core.graph.idnumber import age_on

        if age_on(day, today) == person["age"]:
            number = prefix + day.strftime("%Y%m%d") + suffix
            try:
                rid = parse(number, today=today)
            except Exception:
                rid = None
            if rid is not None and rid.sex == person["sex"]:
                found.append(number)
        day += dt.timedelta(days=1)
    return found


def test_masked_id_cannot_be_rebuilt_from_visible_fields(world):
    today = dt.date.today()
    admin = household(world, "admin")["members"]
    assistant = household(world, "assistant")["members"]
    full = next(m["person"] for m in admin if m["person"]["name"] == "陈明")
    seen = next(m["person"] for m in assistant if m["person"]["name"] == "陈明")
    assert full["idNumber"] == HEAD_ID and full["birthDate"] == BIRTH.isoformat()
    assert candidates(full, today) == [HEAD_ID]          # the attack works when the date is shown...
    assert seen["idNumber"] != HEAD_ID and "*" in seen["idNumber"]
    options = candidates(seen, today)
    assert HEAD_ID in options and len(options) > 10      # ...and leaves many candidates when it is not
    # Another visible date must not give it back: the PARENT edge from 陈老 dates the head's birth.
    near = next(m["person"] for m in assistant if m["person"]["name"] == "陈老")
    assert all(e["since"] != BIRTH.isoformat() or e["person"] is None for e in near["relationships"]) or \
        seen["birthDate"] is None
    assert seen["birthDate"] is None


def test_relationships_to_out_of_scope_relatives_are_not_shown(world):
    assistant = household(world, "assistant")["members"]
    head = next(m["person"] for m in assistant if m["person"]["name"] == "陈明")
    assert [e["kind"] for e in head["relationships"]] == ["PARENT"]  # 陈老 (in scope), not the far-away child
    admin = household(world, "admin")["members"]
    head_admin = next(m["person"] for m in admin if m["person"]["name"] == "陈明")
    assert sorted(e["kind"] for e in head_admin["relationships"]) == ["CHILD", "PARENT"]


def test_health_and_income_classes_withheld_everywhere(world):
    admin = household(world, "admin")
    assistant = household(world, "assistant")
    assert admin["alerts"][0]["indicators"] == ["hospitalisation", "new_unemployment", "income_drop"]
    assert assistant["alerts"][0]["indicators"] == ["new_unemployment"]
    assert assistant["alerts"][0]["level"] == "RED"
    summaries = [e["node"]["summary"] for e in assistant["aidChain"]["edges"]]
    admin_summaries = [e["node"]["summary"] for e in admin["aidChain"]["edges"]]
    assert any("住院" in s for s in admin_summaries) and any("3200" in s for s in admin_summaries)
    for s in summaries:
        assert "住院" not in s and "3200" not in s and "medical" not in s
    assert "household registered with 2 member(s)" in summaries
    assert assistant["economics"]["monthlyIncome"] is None
    for m in assistant["members"]:
        assert m["person"]["chronicDisease"] is None


def test_free_text_numbers_masked_in_every_format(world):
    admin = [e["node"]["summary"] for e in household(world, "admin")["aidChain"]["edges"]]
    assistant = [e["node"]["summary"] for e in household(world, "assistant")["aidChain"]["edges"]]
    referral_admin = next(s for s in admin if s.startswith("预警转办"))
    referral = next(s for s in assistant if s.startswith("预警转办"))
    assert "138 1234 5678" in referral_admin
    digits = "".join(c for c in referral.translate({0xFF10 + i: str(i) for i in range(10)}) if c.isdigit())
    for secret in ("13812345678", "13987654321", FREE_ID[6:14]):
        assert secret not in digits, referral
    assert "138****5678" in referral and "139****4321" in referral and FREE_ID[:6] + "********" in referral


@pytest.mark.parametrize("text, secret", [
    ("tel 13812345678", "13812345678"), ("tel 138-1234-5678", "12345678"), ("tel 138 1234 5678", "1234 5"),
    ("tel +86 138.1234.5678", "1234.5"), ("１３８１２３４５６７８", "１２３４５"),
    ("id 440106199001011234", "19900101"), ("id 440106-1990-0101-1234", "1990-0101"),
    ("id ４４０１０６１９９００１０１１２３Ｘ", "１９９００１０１"), ("id 440106 19900101 123x", "19900101"),
    ("old id 440106900101123", "900101"), ("座机 020-87654321", "8765"), ("座机 (020) 8765 4321", "8765 "),
    ("两个 13812345678 440106199001011234", "19900101"),
])
def test_mask_free_text_formats(text, secret):
    masked = privacy.mask_free_text(text)
    assert secret not in masked, masked
    assert masked != text


def test_mask_free_text_keeps_dates_and_amounts():
    text = "2024-01-05 核实, 补助 1500 元, 户号 H440106011004000001"
    assert privacy.mask_free_text(text) == text


def test_audit_rows_withhold_amounts_and_mask_notes(world):
    q = "{ auditLog(first: 100) { edges { node { action objectType detail } } } }"
    rows = [e["node"] for e in gql(world, "auditor", q)["auditLog"]["edges"]]
    econ = next(r for r in rows if r["objectType"] == "economic_item")
    assert econ["detail"]["amount"] == privacy.WITHHELD and econ["detail"]["kind"] == privacy.WITHHELD  # 工资
    assert isinstance(econ["detail"]["householdId"], int)
    claim = next(r for r in rows if r["objectType"] == "medical_claim")
    assert claim["detail"]["aid"] == privacy.WITHHELD
    note = next(r for r in rows if r["action"] == "dispose_alert")["detail"]["note"]
    assert "1234 5678" not in note and "138****5678" in note
    admin_rows = [e["node"] for e in gql(world, "admin", q)["auditLog"]["edges"]]
    assert next(r for r in admin_rows if r["objectType"] == "economic_item"
                and r["detail"].get("kind") == "WAGE")["detail"]["amount"] == "2345.67"


def test_audit_reads_are_filed_under_a_region(world, db_url):
    gql(world, "auditor", "{ auditLog(first: 1) { totalCount } }")
    engine = make_sync_engine(db_url)
    from sqlalchemy import select

    with session_scope(engine) as s:
        rows = s.execute(select(AuditLog.region_code).where(AuditLog.actor == "sec-auditor")).scalars().all()
    engine.dispose()
    assert rows and None not in rows and set(rows) == {"44"}


def test_actor_region():
    from aidgraph.core.access.actor import Actor, RoleGrant

    a = Actor("a", "a", grants=(RoleGrant("x", "440106011"), RoleGrant("y", "440106012004")))
    assert privacy.actor_region(a) == "440106"
    assert privacy.actor_region(Actor("b", "b", grants=(RoleGrant("x", "44"), RoleGrant("y", "35")))) == "35"
    assert privacy.actor_region(Actor("c", "c")) is None


def test_eligibility_verdict_needs_the_income_right(world):
    from aidgraph.schema.relay import to_global_id

    q = "query($id: ID!) { eligibility(householdId: $id) { eligible reasons monthlyAmount program { key } } }"
    v = {"id": to_global_id("Household", world.ids["household"])}
    admin = gql(world, "admin", q, v)["eligibility"]
    assistant = gql(world, "assistant", q, v)["eligibility"]
    assert admin and all(r["eligible"] in (True, False) for r in admin)
    assert assistant and all(r["eligible"] is None and r["reasons"] == [] for r in assistant)


def test_id_number_search_audit_is_filed_under_a_region(world, db_url):
    from sqlalchemy import select

    body = world.post("query($q: String!) { search(query: $q, first: 5) { totalCount } }", {"q": HEAD_ID},
                      token=world.tokens["admin"]).json()
    if body.get("errors"):  # the embedded engine did not start on this machine: nothing to audit
        pytest.skip(f"search unavailable: {body['errors'][0]['message']}")
    engine = make_sync_engine(db_url)
    with session_scope(engine) as s:
        rows = s.execute(select(AuditLog.region_code, AuditLog.object_id).where(
            AuditLog.action == "search_id_number", AuditLog.actor == "sec-admin")).all()
    engine.dispose()
    assert rows and all(region is not None for region, _ in rows)
    # The person found is filed under their own region (their auditors read it), otherwise the searcher's.
    assert all(region == (VILLAGE if oid else "44") for region, oid in rows), rows


PERSON_ID_QUERY = "query($id: ID!) { household(id: $id) { members { person { idNumber } } } }"


def test_concurrent_disclosures_are_each_audited_in_the_chain(world, db_url):
    """Twenty requests at once, each shown a full ID number: the group-commit writer files one audit row per
    request (all committed before each response), and the hash chain still verifies."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func, select

    from aidgraph.core.graph import audit
    from aidgraph.schema.relay import to_global_id

    engine = make_sync_engine(db_url)

    def disclosed() -> int:
        with session_scope(engine) as s:
            return s.scalar(select(func.count()).select_from(AuditLog).where(
                AuditLog.actor == "sec-admin", AuditLog.object_id == str(world.ids["head"]),
                AuditLog.action == "read_sensitive"))

    before = disclosed()
    variables = {"id": to_global_id("Household", world.ids["household"])}
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: gql(world, "admin", PERSON_ID_QUERY, variables), range(20)))
    assert all(HEAD_ID in [m["person"]["idNumber"] for m in a["household"]["members"]] for a in answers)
    assert disclosed() == before + 20
    with session_scope(engine) as s:
        assert audit.verify(s).ok
    engine.dispose()


def test_no_data_leaves_when_its_audit_row_cannot_be_written(world, db_url):
    """The audit log refuses inserts (a trigger standing in for a full disk or a revoked grant): the request
    that would disclose a full ID number gets AUDIT_UNAVAILABLE and no data; once the log accepts rows again the
    same request is answered and audited."""
    from aidgraph.schema.relay import to_global_id

    engine = make_sync_engine(db_url)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.exec_driver_sql("CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
                                 "RAISE EXCEPTION 'audit log unavailable'; END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                                 "FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
        else:
            conn.exec_driver_sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                                 "BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END")
    variables = {"id": to_global_id("Household", world.ids["household"])}
    try:
        body = world.post(PERSON_ID_QUERY, variables, token=world.tokens["admin"]).json()
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"
        assert HEAD_ID not in str(body)
        masked = world.post(PERSON_ID_QUERY, variables, token=world.tokens["assistant"]).json()
        assert "errors" not in masked  # nothing disclosed, nothing to audit: answered
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse_audit" + (" ON audit_log" if postgres else ""))
            if postgres:
                conn.exec_driver_sql("DROP FUNCTION refuse_audit()")
        engine.dispose()
    answer = gql(world, "admin", PERSON_ID_QUERY, variables)["household"]["members"]
    assert HEAD_ID in [m["person"]["idNumber"] for m in answer]
