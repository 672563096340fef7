"""Exports over HTTP and the CLI on both engines: scope, masking as the API masks, watermark, audit rows."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from aidgraph.core.access import authn, authz, users
from aidgraph.core.app import exports as app_exports
from aidgraph.core.access.actor import RoleGrant
from aidgraph.core.graph.idnumber import make, mask, mask_phone
from aidgraph.core.policy.host import casbin_objects
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.storage.models import AuditLog, Household
from tests.authz.conftest import CONFIGS

VILLAGE = "440106011004"
COUNTY = "440106"
VILLAGE_35 = "350102001001"
REGISTER = """mutation($input: RegisterHouseholdInput!) { registerHousehold(input: $input) {
  household { id } errors { field message code } } }"""
DETAIL = """query($id: ID!) { household(id: $id) { members { person { idNumber phone } } } }"""


@pytest.fixture(scope="module")
def server(live_server, sync_engine):
    with session_scope(sync_engine) as s:
        authz.load_policies(s, CONFIGS, objects=authz.known_objects(casbin_objects()))
        for name, grants in {"county": [RoleGrant("county_officer", COUNTY)],
                             "va": [RoleGrant("village_assistant", VILLAGE)],
                             "aud44": [RoleGrant("auditor", "44")],
                             "analyst": [RoleGrant("department_analyst", "44")],
                             "admin35": [RoleGrant("province_admin", "35")]}.items():
            users.add_user(s, name, grants)
        # A role that may list and export households but not read full ID numbers or phones: the export must
        # mask them exactly as the API does for the same user.
        s.execute(text("INSERT INTO casbin_rule (ptype, v0, v1, v2, v3) VALUES "
                       "('p', 'department_analyst', '44', 'household', 'read'), "
                       "('p', 'department_analyst', '44', 'export', 'export_households')"))
    authz.forget_authorizers()
    return live_server


def token(sync_engine, server, name):
    with session_scope(sync_engine) as s:
        return authn.issue_token(server.components.settings, users.get_user(s, name))


@pytest.fixture(scope="module")
def households(server, sync_engine):
    made = []
    for i, (village, tok) in enumerate([(VILLAGE, ...), (VILLAGE, ...), ("440106010001", ...),
                                        (VILLAGE_35, token(sync_engine, server, "admin35"))]):
        head = make(village[:6], dt.date(1970 + i, 3, 4), 40 + i)
        r = server.post(REGISTER, {"input": {"regionCode": village, "address": f"幸福路{i}号", "members": [
            {"name": f"钱{i}", "idNumber": head, "relationToHead": "SELF", "phone": f"1390000{i:04d}"}]}}, token=tok)
        data = r.json()["data"]["registerHousehold"]
        assert data["errors"] == [], data
        made.append({"id": data["household"]["id"], "head": head, "phone": f"1390000{i:04d}", "region": village})
    return made


def get(server, kind, tok, **params):
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return server.client.get(f"{server.url}/exports/{kind}", params=params, headers=headers)


def parse_csv(body: bytes) -> tuple[list[str], list[str], list[list[str]], list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM"
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    return rows[0], rows[1], rows[2:-1], rows[-1]


def audit_rows(engine, action="export"):
    with engine.connect() as c:
        return c.execute(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()


def test_csv_household_list_in_scope_full_values_watermarked_and_audited(server, sync_engine, households):
    tok = token(sync_engine, server, "county")
    before = len(audit_rows(sync_engine))
    r = get(server, "households", tok, regionCode=COUNTY)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    mark, header, rows, end = parse_csv(r.content)
    assert mark[0] == "# aidgraph export" and "county" in mark[1] and mark[2].startswith("at ")
    assert header[0] == "ID" and "户主身份证号 head ID number" in header
    with sync_engine.connect() as c:
        expected = c.execute(select(func.count()).select_from(Household)
                             .where(Household.region_code.like(COUNTY + "%"))).scalar_one()
    assert len(rows) == expected and end == ["# aidgraph export end", f"{expected} rows", "county", mark[2][3:]]
    id_col, phone_col = header.index("户主身份证号 head ID number"), header.index("电话 phone")
    mine = {h["head"]: h for h in households if h["region"].startswith(COUNTY)}
    exported = {row[id_col]: row for row in rows}
    assert set(mine) <= set(exported)  # a county officer sees full ID numbers and phones
    assert all(exported[k][phone_col] == h["phone"] for k, h in mine.items())
    new = audit_rows(sync_engine)[before:]
    assert len(new) == 1
    a = new[0]
    assert (a.actor, a.object_type, a.region_code, a.remote_addr) == ("county", "export", COUNTY, "127.0.0.1")
    assert a.detail["kind"] == "households" and a.detail["rows"] == expected and a.detail["format"] == "csv"
    assert a.detail["filter"] == {"regionCode": COUNTY}
    assert a.detail["disclosed"]["idNumber"] >= len(mine) and a.seq is not None


def test_xlsx_masks_as_the_api_masks(server, sync_engine, households):
    openpyxl = pytest.importorskip("openpyxl")
    tok = token(sync_engine, server, "analyst")
    r = get(server, "households", tok, regionCode="44", format="xlsx")
    assert r.status_code == 200, r.text
    book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    rows = [list(row) for row in book.active.iter_rows(values_only=True)]
    assert rows[0][0] == "# aidgraph export" and "analyst" in rows[0][1]
    header, body = rows[1], rows[2:-1]
    id_col, phone_col = header.index("户主身份证号 head ID number"), header.index("电话 phone")
    by_id = {h["id"]: h for h in households}
    for h in households[:3]:
        api = server.post(DETAIL, {"id": h["id"]}, token=tok).json()["data"]["household"]["members"][0]["person"]
        assert api["idNumber"] == mask(h["head"]) and api["phone"] == mask_phone(h["phone"])
        assert [api["idNumber"], api["phone"]] in [[row[id_col], row[phone_col]] for row in body]
    assert not any(h["head"] in (row[id_col] or "") for row in body for h in by_id.values())
    a = audit_rows(sync_engine)[-1]
    assert a.actor == "analyst" and a.detail["format"] == "xlsx" and a.detail["disclosed"] == {}
    assert a.detail["rows"] == len(body)


def test_filter_outside_scope_is_403_and_writes_nothing(server, sync_engine, households):
    county, va = token(sync_engine, server, "county"), token(sync_engine, server, "va")
    with sync_engine.connect() as c:
        before = c.execute(select(func.count()).select_from(AuditLog)).scalar_one()
    for kind, tok, params, status, code in [
        ("households", county, {"regionCode": "44"}, 403, "FORBIDDEN"),
        ("households", county, {"regionCode": "350102"}, 403, "FORBIDDEN"),
        ("households", va, {"regionCode": VILLAGE}, 403, "FORBIDDEN"),
        ("audit", county, {"regionCode": COUNTY}, 403, "FORBIDDEN"),
        ("households", None, {"regionCode": COUNTY}, 401, "UNAUTHENTICATED"),
        ("nonesuch", county, {"regionCode": COUNTY}, 404, "NOT_FOUND"),
        ("households", county, {"regionCode": COUNTY, "format": "pdf"}, 400, "VALIDATION"),
        ("households", county, {"regionCode": "4401x"}, 400, "VALIDATION"),
        ("households", county, {"regionCode": COUNTY, "warningLevel": "PURPLE"}, 400, "VALIDATION"),
        ("alerts", county, {"regionCode": COUNTY, "color": "RED"}, 400, "VALIDATION"),
    ]:
        r = get(server, kind, tok, **params)
        assert r.status_code == status, (kind, params, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["errors"][0]["code"] == code
    with sync_engine.connect() as c:
        assert c.execute(select(func.count()).select_from(AuditLog)).scalar_one() == before


def test_auditors_export_the_audit_log_of_their_regions(server, sync_engine, households):
    tok = token(sync_engine, server, "aud44")
    r = get(server, "audit", tok, regionCode="44", since=dt.date.today().isoformat())
    assert r.status_code == 200, r.text
    _mark, header, rows, _end = parse_csv(r.content)
    regions = {row[header.index("区划代码 region code")] for row in rows}
    assert regions and all(code.startswith("44") for code in regions)
    with sync_engine.connect() as c:
        in_44 = c.execute(select(func.count()).select_from(AuditLog).where(AuditLog.region_code.like("44%"))).scalar()
    assert len(rows) == in_44 - 1  # everything in 44 up to the export itself, whose row is written after
    assert audit_rows(sync_engine)[-1].actor == "aud44"


def test_gap_and_alert_exports(server, sync_engine, households, monkeypatch):
    tok = server.token  # the province administrator
    monkeypatch.setattr(app_exports, "GAP_PAGE", 2)  # several pages of kept decisions, resumed after the last
    r = get(server, "gaps", tok, regionCode="44")
    assert r.status_code == 200, r.text
    _m, header, rows, _e = parse_csv(r.content)
    gaps = server.post("query($r: String!) { eligibilityGaps(regionCode: $r, first: 1) { totalCount } }",
                       {"r": "44"}).json()["data"]["eligibilityGaps"]["totalCount"]
    assert len(rows) == gaps > 2 and header[3] == "项目 program"

    async def recompute():  # the engine's own answer over the whole province, no kept decisions
        engine = make_async_engine(server.components.settings.database_url)
        try:
            async with async_session_factory(engine)() as session:
                return (await server.components.policy_engine.gaps(session, region_code="44",
                                                                   on=dt.date.today()))[1]
        finally:
            await engine.dispose()

    expected = asyncio.run(recompute())
    assert [(int(row[0]), row[3]) for row in rows] == list(zip(expected["household_id"], expected["program"]))
    amounts = [float(row[5]) if row[5] else None for row in rows]
    assert amounts == expected["monthly_amount"].to_list()
    assert all(row[4] for row in rows)  # the stored reasons, shown to the administrator
    r = get(server, "alerts", tok, regionCode=COUNTY, status="OPEN")
    assert r.status_code == 200, r.text
    assert audit_rows(sync_engine)[-1].detail["filter"] == {"regionCode": COUNTY, "status": "OPEN"}


def test_cli_export_as_a_user(server, sync_engine, households, tmp_path):
    from aidgraph.core.app.cli import app

    env = {"AIDGRAPH_DATABASE_URL": server.components.settings.database_url}
    out = tmp_path / "h.csv"
    r = CliRunner().invoke(app, ["export", "households", "--as", "county", "--region", COUNTY, "-o", str(out)], env=env)
    assert r.exit_code == 0, r.output
    _m, _h, rows, _e = parse_csv(out.read_bytes())
    a = audit_rows(sync_engine)[-1]
    assert (a.actor, a.remote_addr, a.detail["rows"]) == ("county", "cli", len(rows))
    refused = tmp_path / "no.csv"
    r = CliRunner().invoke(app, ["export", "households", "--as", "county", "--region", "44", "-o", str(refused)],
                           env=env)
    assert r.exit_code == 1 and "refused (403)" in r.output and not refused.exists()
    assert audit_rows(sync_engine)[-1].id == a.id
