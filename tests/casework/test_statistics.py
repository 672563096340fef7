"""Monthly statistics per region and program against a live server on SQLite and PostgreSQL: every figure equals
a direct count of the same rows (computed here in Python from what the test wrote), scoped, and the CSV export
is audited."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import Alert, AuditLog, Enrollment, Payment, Referral
from tests.casework.conftest import token_for

MONTH, FIRST, NEXT = "2025-06", dt.date(2025, 6, 1), dt.date(2025, 7, 1)
STATS = """query S($r: String!, $m: String!, $p: String) { monthlyStatistics(regionCode: $r, month: $m, programKey: $p) {
    programs { regionCode programKey recipientHouseholds recipientPersons amount newCases endedCases }
    regions { regionCode alertsRaised alertsDisposed referralsOverdue } } }"""
EXPORT = """mutation E($r: String!, $m: String!) { exportMonthlyStatistics(regionCode: $r, month: $m) {
    csv errors { code field } } }"""


@pytest.fixture(scope="module")
def month_rows(world, sync_engine):
    """Enrolments, payments (this month and the one before), alerts and referrals over the seeded households."""
    households = list(world.households)
    programs = ["dibao", "tekun", "temporary"]
    written = {"enrollments": [], "payments": [], "alerts": [], "referrals": []}
    with Session(sync_engine) as s, s.begin():
        for i, h in enumerate(households):
            region = world.households[h]
            key = programs[i % 3]
            start = dt.date(2025, 6, 1 + i) if i % 2 == 0 else dt.date(2025, 3, 1)
            end = dt.date(2025, 6, 20) if i % 4 == 3 else None
            e_id = s.execute(insert(Enrollment).returning(Enrollment.id), {
                "household_id": h, "program_key": key, "province_code": "44", "region_code": region,
                "status": "ENDED" if end else "ACTIVE", "start_date": start, "end_date": end,
                "monthly_amount": Decimal(100 + i)}).scalar_one()
            written["enrollments"].append((region, key, start, end))
            for period in ("2025-05", MONTH) if i % 3 != 2 else ("2025-05",):
                s.execute(insert(Payment), {"enrollment_id": e_id, "household_id": h, "amount": Decimal(100 + i),
                                            "period": period})
                written["payments"].append((region, key, h, period, Decimal(100 + i)))
            if i % 2 == 1:
                raised = dt.datetime(2025, 6, 5 + i) if i < 8 else dt.datetime(2025, 5, 5)
                status = "DISMISSED" if i % 4 == 1 else "OPEN"
                s.execute(insert(Alert), {"household_id": h, "region_code": region, "township_code": region[:9],
                                          "level": "YELLOW", "score": 30, "status": status, "indicators": ["x"],
                                          "month": MONTH, "raised_at": raised, "updated_at": dt.datetime(2025, 6, 25)})
                written["alerts"].append((region, raised, status))
            s.execute(insert(Referral), {"household_id": h, "region_code": region, "department": "housing",
                                         "reason": "r", "documents": [], "due_date": dt.date(2025, 6, 10 + i),
                                         "status": "SENT" if i % 3 else "DONE", "source": "CASEWORKER",
                                         "sent_by": "t"})
            written["referrals"].append((region, dt.date(2025, 6, 10 + i), "SENT" if i % 3 else "DONE"))
    return written


def expected(rows, world, prefix: str, child: int):
    members = defaultdict(int)
    for p in world.persons:
        members[p.household_id] += 1
    programs: dict[tuple, dict] = defaultdict(lambda: defaultdict(float))
    for region, key, h, period, amount in rows["payments"]:
        if period == MONTH and region.startswith(prefix):
            r = programs[(region[:child], key)]
            r["recipientHouseholds"] += 1
            r["recipientPersons"] += members[h]
            r["amount"] += float(amount)
    for region, key, start, end in rows["enrollments"]:
        if not region.startswith(prefix):
            continue
        if FIRST <= start < NEXT:
            programs[(region[:child], key)]["newCases"] += 1
        if end and FIRST <= end < NEXT:
            programs[(region[:child], key)]["endedCases"] += 1
    regions: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for region, raised, status in rows["alerts"]:
        if region.startswith(prefix):
            if dt.datetime(2025, 6, 1) <= raised < dt.datetime(2025, 7, 1):
                regions[region[:child]]["alertsRaised"] += 1
            if status == "DISMISSED":
                regions[region[:child]]["alertsDisposed"] += 1
    for region, due, status in rows["referrals"]:
        if region.startswith(prefix) and status == "SENT" and due < NEXT:
            regions[region[:child]]["referralsOverdue"] += 1
    return programs, regions


def answered(data):
    fields = ("recipientHouseholds", "recipientPersons", "amount", "newCases", "endedCases")
    programs = {(r["regionCode"], r["programKey"]): {f: r[f] for f in fields if r[f]} for r in data["programs"]}
    regions = {r["regionCode"]: {f: r[f] for f in ("alertsRaised", "alertsDisposed", "referralsOverdue") if r[f]}
               for r in data["regions"]}
    return programs, regions


def plain(expected_programs, expected_regions):
    return ({k: {f: v for f, v in d.items() if v} for k, d in expected_programs.items()},
            {k: {f: v for f, v in d.items() if v} for k, d in expected_regions.items()})


def test_statistics_equal_a_direct_count_of_the_same_rows(live_server, world, month_rows, sync_engine):
    county = next(iter(world.households.values()))[:6]
    data = live_server.post(STATS, {"r": county, "m": MONTH}).json()["data"]["monthlyStatistics"]
    assert answered(data) == plain(*expected(month_rows, world, county, 9))
    assert data["programs"] and data["regions"]
    city = county[:4]
    by_county = live_server.post(STATS, {"r": city, "m": MONTH}).json()["data"]["monthlyStatistics"]
    assert answered(by_county) == plain(*expected(month_rows, world, city, 6))
    dibao = live_server.post(STATS, {"r": county, "m": MONTH, "p": "dibao"}).json()["data"]["monthlyStatistics"]
    assert {r["programKey"] for r in dibao["programs"]} == {"dibao"}
    bad = live_server.post(STATS, {"r": county, "m": "2025-13"}).json()
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION"


def test_a_township_sees_its_own_figures_and_exports_are_audited(live_server, world, month_rows, sync_engine, db_url):
    town = next(iter(world.households.values()))[:9]
    caseworker = token_for(db_url, sync_engine, "cw_stats", "township_caseworker", town)
    data = live_server.post(STATS, {"r": town[:6], "m": MONTH}, token=caseworker).json()["data"]["monthlyStatistics"]
    assert answered(data) == plain(*expected(month_rows, world, town, 9))
    # township caseworkers hold no export permission in the illustrative policy; the county officer does
    refused = live_server.post(EXPORT, {"r": town, "m": MONTH}, token=caseworker).json()["data"]
    assert refused["exportMonthlyStatistics"]["errors"][0]["code"] == "FORBIDDEN"
    officer = token_for(db_url, sync_engine, "county_stats", "county_officer", town[:6])
    exported = live_server.post(EXPORT, {"r": town[:6], "m": MONTH}, token=officer).json()["data"]
    text = exported["exportMonthlyStatistics"]["csv"]
    lines = list(csv.DictReader(io.StringIO(text)))
    programs, regions = expected(month_rows, world, town[:6], 9)
    assert {(r["region_code"], r["program_key"]) for r in lines if r["program_key"]} == {
        k for k, v in programs.items() if any(v.values())}
    total = sum(Decimal(r["amount"]) for r in lines if r["program_key"])
    assert total == sum(Decimal(str(v["amount"])) for v in programs.values())
    with Session(sync_engine) as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "export", AuditLog.object_type == "statistics",
                                               AuditLog.actor == "county_stats")).one()
        assert row.object_id == f"{town[:6]}:{MONTH}" and row.detail["rows"] == len(lines)
    xlsx = live_server.post("""mutation X($r: String!, $m: String!) { exportMonthlyStatistics(regionCode: $r,
        month: $m, format: "XLSX") { csv xlsxBase64 errors { code field } } }""", {"r": town[:6], "m": MONTH},
                            token=officer).json()["data"]["exportMonthlyStatistics"]
    import base64

    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(xlsx["xlsxBase64"])))
    cells = [[("" if v is None else v) for v in row] for row in book.active.iter_rows(values_only=True)]
    assert len(cells) == len(lines) + 1
    assert sum(Decimal(str(r[5])) for r in cells[1:] if r[2]) == total
    bad_format = live_server.post(EXPORT.replace("month: $m)", 'month: $m, format: "PDF")'),
                                  {"r": town[:6], "m": MONTH}, token=officer).json()["data"]
    assert bad_format["exportMonthlyStatistics"]["errors"][0]["field"] == "format"
    gansu = token_for(db_url, sync_engine, "admin62_stats", "province_admin", "62")
    outside = live_server.post(EXPORT, {"r": town[:6], "m": MONTH}, token=gansu).json()["data"]
    assert outside["exportMonthlyStatistics"]["errors"][0]["code"] == "FORBIDDEN"
    empty = live_server.post(STATS, {"r": town[:6], "m": MONTH}, token=gansu).json()["data"]["monthlyStatistics"]
    assert empty["programs"] == [] and empty["regions"] == []
