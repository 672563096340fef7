"""Baseline server for bench_api.py: the same JSON as the HouseholdDetail and HouseholdList operations, built
with SQLAlchemy Core statements and ``json.dumps`` behind a bare starlette route, with no GraphQL, no ORM
objects and no DataLoaders. The province's income deductions come from the same policy engine as the
platform's (the rules are not what this benchmark compares). Each request is authenticated by the platform's
own function (``AIDGRAPH_BASELINE_AUTH=0``: not at all). It answers as for an unrestricted caller (the
benchmark's province administrator in its own province): one region prefix where the platform applies the
caller's scope, no masking and no disclosure audit.

Run: ``python -m bench.baseline_api --port 8101`` with ``AIDGRAPH_DATABASE_URL`` set.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
from dataclasses import replace
from types import SimpleNamespace
from decimal import Decimal

import uvicorn
from sqlalchemy import and_, func, or_, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aidgraph.core.access.authn import Unauthenticated
from aidgraph.core.app.auth import authenticate_request
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import async_session_factory, make_async_engine
from aidgraph.core.graph.economics import economics_for
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.graph.idnumber import age_on
from aidgraph.core.storage.models import (OPEN_ALERT_STATUSES, WARNING_SEVERITY, AidChainEvent, Alert, Enrollment,
                                          Household, LowIncomeCategory, Membership, Person, Region)
from aidgraph.core.graph.reads import RECEIVING

settings = load_settings()
policy = PolicyEngine(settings)
CATEGORY_PROGRAMS = policy.catalogue().category_programs()
CATEGORY_ORDER = list(LowIncomeCategory.__members__)
engine = make_async_engine(settings.database_url)
sessions = async_session_factory(engine)


def gid(kind: str, i: int) -> str:
    return base64.b64encode(f"{kind}:{i}".encode()).decode()


def cursor(*parts) -> str:
    return base64.b64encode("|".join(str(p) for p in parts).encode()).decode()


def current(model, on: dt.date):
    return and_(model.valid_from <= on, or_(model.valid_to.is_(None), model.valid_to > on))


async def categories(conn, ids):
    rows = await conn.execute(select(Enrollment.household_id, Enrollment.program_key).where(
        Enrollment.household_id.in_(ids), Enrollment.status.in_(RECEIVING),
        Enrollment.program_key.in_(list(CATEGORY_PROGRAMS))).distinct())
    out: dict[int, list[str]] = {}
    for hid, key in rows.all():
        cats = out.setdefault(hid, [])
        if CATEGORY_PROGRAMS[key] not in cats:
            cats.append(CATEGORY_PROGRAMS[key])
    return {hid: sorted(cats, key=CATEGORY_ORDER.index) for hid, cats in out.items()}


async def levels(conn, ids):
    rows = await conn.execute(select(Alert.household_id, Alert.level).where(
        Alert.household_id.in_(ids), Alert.status.in_(OPEN_ALERT_STATUSES)))
    out: dict[int, str] = {}
    for hid, level in rows.all():
        if hid not in out or WARNING_SEVERITY[level] > WARNING_SEVERITY[out[hid]]:
            out[hid] = level
    return out


def utc(v: dt.datetime) -> str:
    """Timestamps as the API answers them: naive UTC from the database, printed with its zone."""
    return v.replace(tzinfo=dt.timezone.utc).isoformat()


def money(v):
    return float(v) if v is not None else None


async def household_detail(hid: int) -> dict:
    today = dt.date.today()
    async with sessions() as conn:
        h = (await conn.execute(select(Household.id, Household.household_number, Household.address,
                                       Household.region_code).where(Household.id == hid))).one_or_none()
        if h is None:
            return {"household": None}
        region = (await conn.execute(select(Region.code, Region.name, Region.level).where(
            Region.code == h.region_code))).one()
        members = (await conn.execute(
            select(Membership.relation_to_head, Membership.valid_from, Person.id, Person.name, Person.id_number,
                   Person.sex, Person.birth_date, Person.disability_level, Person.chronic_disease,
                   Person.employment_status, Person.labour_capacity)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.household_id == hid, current(Membership, today))
            .order_by(Membership.relation_to_head != "SELF", Membership.id))).all()
        econ = (await economics_for(conn, [hid]))[hid]
        deduction = (await policy.income_deductions(conn, [hid])).get(hid, 0.0)
        econ = replace(econ, monthly_deduction=Decimal(str(round(deduction, 2))))
        enrols = (await conn.execute(select(Enrollment.id, Enrollment.status, Enrollment.monthly_amount,
                                            Enrollment.start_date, Enrollment.end_date, Enrollment.program_key)
                                     .where(Enrollment.household_id == hid)
                                     .order_by(Enrollment.applied_at.desc(), Enrollment.id.desc()))).all()
        chain = (await conn.execute(select(AidChainEvent.at, AidChainEvent.kind, AidChainEvent.summary,
                                           AidChainEvent.program_key)
                                    .where(AidChainEvent.household_id == hid)
                                    .order_by(AidChainEvent.at.desc(), AidChainEvent.id.desc()).limit(51))).all()
        alerts = (await conn.execute(select(Alert.id, Alert.level, Alert.status, Alert.score, Alert.indicators,
                                            Alert.raised_at).where(Alert.household_id == hid)
                                     .order_by(Alert.raised_at.desc(), Alert.id.desc()))).all()
        cats = (await categories(conn, [hid])).get(hid, [])
        level = (await levels(conn, [hid])).get(hid)
    return {"household": {
        "id": gid("Household", h.id), "householdNumber": h.household_number, "address": h.address,
        "categories": cats, "warningLevel": level,
        "region": {"code": region.code, "name": region.name, "level": region.level},
        "members": [{"relationToHead": m.relation_to_head, "since": m.valid_from.isoformat(), "person": {
            "id": gid("Person", m.id), "name": m.name, "idNumber": m.id_number, "sex": m.sex,
            "birthDate": m.birth_date.isoformat(), "age": age_on(m.birth_date, today),
            "disabilityLevel": m.disability_level, "chronicDisease": m.chronic_disease,
            "employmentStatus": m.employment_status, "labourCapacity": m.labour_capacity}} for m in members],
        "economics": {"perCapitaMonthlyIncome": float(econ.per_capita_monthly_income),
                      "totalFinancialAssets": float(econ.total_financial_assets),
                      "assessedAt": utc(econ.assessed_at) if econ.assessed_at else None},
        "enrollments": [{"id": gid("Enrollment", e.id), "status": e.status, "monthlyAmount": money(e.monthly_amount),
                         "startDate": e.start_date.isoformat() if e.start_date else None,
                         "endDate": e.end_date.isoformat() if e.end_date else None,
                         "program": {"key": e.program_key}} for e in enrols],
        "aidChain": {"edges": [{"node": {"at": utc(c.at), "kind": c.kind, "summary": c.summary,
                                         "program": {"key": c.program_key} if c.program_key else None}}
                               for c in chain[:50]]},
        "alerts": [{"id": gid("Alert", a.id), "level": a.level, "status": a.status, "score": float(a.score),
                    "indicators": a.indicators, "raisedAt": utc(a.raised_at)} for a in alerts],
    }}


async def household_list(region_code: str, first: int, after: str | None) -> dict:
    today = dt.date.today()
    hi = region_code[:-1] + chr(ord(region_code[-1]) + 1)
    in_region = and_(Household.region_code >= region_code, Household.region_code < hi)
    after_id = int(base64.b64decode(after).decode()) if after else 0
    async with sessions() as conn:
        total = (await conn.execute(select(func.count()).select_from(Household).where(in_region))).scalar_one()
        rows = (await conn.execute(select(Household.id, Household.household_number, Household.region_code)
                                   .where(in_region, Household.id > after_id).order_by(Household.id)
                                   .limit(first + 1))).all()
        page = rows[:first]
        ids = [r.id for r in page]
        counts = dict((await conn.execute(select(Membership.household_id, func.count())
                                          .join(Person, Person.id == Membership.person_id).where(
            Membership.household_id.in_(ids), current(Membership, today),
            or_(Person.death_date.is_(None), Person.death_date > today)).group_by(Membership.household_id))).all())
        heads = {r.household_id: r for r in (await conn.execute(
            select(Membership.household_id, Person.id, Person.name, Person.id_number)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.household_id.in_(ids), Membership.relation_to_head == "SELF",
                   current(Membership, today)))).all()}
        names = dict((await conn.execute(select(Region.code, Region.name).where(
            Region.code.in_({r.region_code for r in page})))).all())
        cats = await categories(conn, ids)
        lv = await levels(conn, ids)
    edges = []
    for r in page:
        head = heads.get(r.id)
        edges.append({"cursor": cursor(r.id), "node": {
            "id": gid("Household", r.id), "householdNumber": r.household_number, "memberCount": counts.get(r.id, 0),
            "categories": cats.get(r.id, []), "warningLevel": lv.get(r.id),
            "region": {"code": r.region_code, "name": names[r.region_code]},
            "head": {"id": gid("Person", head.id), "name": head.name, "idNumber": head.id_number} if head else None}})
    return {"households": {"totalCount": total, "pageInfo": {"hasNextPage": len(rows) > first,
                                                             "endCursor": edges[-1]["cursor"] if edges else None},
                           "edges": edges}}


AUTHENTICATE = os.environ.get("AIDGRAPH_BASELINE_AUTH", "1") != "0"
"""Authenticate each request as the platform does (the same function: bearer token, revocation, user, grants;
like with like, as issue 15 allows); ``AIDGRAPH_BASELINE_AUTH=0`` answers without it."""
_components = SimpleNamespace(settings=settings, session_factory=sessions, identity_sessions=sessions)


async def endpoint(request: Request) -> Response:
    if AUTHENTICATE:
        try:
            await authenticate_request(request, _components)
        except Unauthenticated as e:
            return Response(json.dumps({"errors": [{"message": str(e)}]}), status_code=401,
                            media_type="application/json")
    body = await request.json()
    v = body.get("variables") or {}
    if body.get("operationName") == "HouseholdDetail":
        kind, _, raw = base64.b64decode(v["id"]).decode().partition(":")
        data = await household_detail(int(raw))
    else:
        data = await household_list(v["regionCode"], v.get("first") or 20, v.get("after"))
    return Response(json.dumps({"data": data}, ensure_ascii=False), media_type="application/json")


app = Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
