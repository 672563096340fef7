"""Exports over HTTP: ``GET /exports/<kind>?regionCode=...&format=csv|xlsx&<filters>`` with the bearer token.

The file is streamed as it is produced (:func:`aidgraph.core.graph.exports.stream`); everything that can refuse
an export (authentication, the ``export_<kind>`` Casbin action, the data scope, the filters) is checked before
the first byte, and a refusal is a JSON error (401, 403, 400 or 404) with nothing written. This module also
registers the eligibility-gaps kind (政策找人), which needs the policy engine, a floor above the graph.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aidgraph.core.access.authn import Unauthenticated, actor_for_request
from aidgraph.core.graph import exports, privacy
from aidgraph.core.graph.exports import ExportJob, ExportKind, ExportRefused
from aidgraph.core.policy.engine import default_engine

FORMAT_PARAM = "format"
REGION_PARAM = "regionCode"


async def _gap_rows(job: ExportJob, session) -> AsyncIterator[list[list]]:
    policy = job.services.get("policy")
    if policy is None:
        policy = default_engine()
    _total, frame = await policy.gaps(session, region_code=job.region_code, scope=job.scope,
                                      program=job.filters.get("program"), on=dt.date.today())
    shown = privacy.income_covers(job.context, job.scope)  # reasons and amounts name incomes, as in the API
    if frame.is_empty():
        return
    for start in range(0, frame.height, exports.PAGE):
        part = frame.slice(start, exports.PAGE)
        page = []
        for r in part.iter_rows(named=True):
            if shown:
                privacy.note_disclosure(job.context, "household", r["household_id"], r["region_code"],
                                        "eligibilityReasons")
            page.append([r["household_id"], r["household_number"], r["region_code"], r["program"],
                         r["reasons"] if shown else None, r["monthly_amount"] if shown else None])
        yield page


GAPS = exports.register(ExportKind(
    "gaps", "政策找人 eligible but not enrolled",
    (("household_id", "ID"), ("household_number", "户编号 household number"), ("region_code", "区划代码 region code"),
     ("program", "项目 program"), ("reasons", "理由 reasons"), ("monthly_amount", "月救助金额 monthly amount")),
    "read", "household", _gap_rows, ("program",)))


def _error(e: ExportRefused) -> JSONResponse:
    return JSONResponse(e.as_json(), status_code=e.status)


def export_route(components) -> Route:
    async def export(request: Request) -> Response:
        try:
            actor = await actor_for_request(request, components.settings, components.session_factory)
        except Unauthenticated as e:
            return JSONResponse({"errors": [{"message": str(e), "field": None, "code": "UNAUTHENTICATED"}]},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        params = dict(request.query_params)
        region = params.pop(REGION_PARAM, None)
        fmt = params.pop(FORMAT_PARAM, "csv")
        try:
            job = exports.prepare(actor, request.path_params["kind"], region, params, fmt,
                                  {**components.services, "policy": components.policy_engine},
                                  category_programs=components.programs.category_programs())
        except ExportRefused as e:
            return _error(e)
        name = job.filename()
        return StreamingResponse(exports.stream(job, components.session_factory), media_type=exports.FORMATS[fmt],
                                 headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                                          "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    return Route("/exports/{kind}", export, methods=["GET"])
