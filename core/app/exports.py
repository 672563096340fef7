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
from aidgraph.core.policy import decisions
from aidgraph.core.policy.engine import default_engine
from aidgraph.core.storage.db import async_session_factory
from aidgraph.core.app.sessions import identity_sessions, request_sessions

FORMAT_PARAM = "format"
REGION_PARAM = "regionCode"
GAP_PAGE = exports.PAGE
"""Gaps read per statement when exporting."""


async def _gap_rows(job: ExportJob, session) -> AsyncIterator[list[list]]:
    """The gaps from the kept decisions (:mod:`aidgraph.core.policy.decisions`), page by page in household order
    with their stored reasons, as EligibilityGaps pages them: memory stays one page whatever the region's size
    (it used to recompute the whole region into one frame). A write between two pages shows in the later ones,
    as when paging through the API."""
    policy = job.services.get("policy")
    if policy is None:
        policy = default_engine()
    # the export's database; a refresh needs its own transaction, with the request's row-level scope
    factory = async_session_factory(session.bind, dict(session.info))
    shown = privacy.income_covers(job.context, job.scope)  # reasons and amounts name incomes, as in the API
    after: tuple[int, str] | None = None
    while True:
        _total, frame = await decisions.gaps(factory, policy, region_code=job.region_code, scope=job.scope,
                                             program=job.filters.get("program"), on=dt.date.today(),
                                             limit=GAP_PAGE, after=after)
        page = []
        for r in frame.iter_rows(named=True):
            if shown:
                privacy.note_disclosure(job.context, "household", r["household_id"], r["region_code"],
                                        "eligibilityReasons")
            page.append([r["household_id"], r["household_number"], r["region_code"], r["program"],
                         r["reasons"] if shown else None, r["monthly_amount"] if shown else None])
        if page:
            yield page
        if frame.height < GAP_PAGE:
            return
        after = (int(frame["household_id"][-1]), str(frame["program"][-1]))


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
            actor = await actor_for_request(request, components.settings, identity_sessions(components))
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
        return StreamingResponse(exports.stream(job, request_sessions(components, actor)), media_type=exports.FORMATS[fmt],
                                 headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                                          "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    return Route("/exports/{kind}", export, methods=["GET"])
