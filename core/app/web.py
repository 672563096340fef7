"""The browser side served by the same server: the console at ``/console`` and an offline GraphiQL.

Why it exists: provinces run aidgraph on intranets where a public CDN is unreachable, so every script, style and
font the browser needs ships in the package (``core/app/console/`` for the console, ``core/app/static/vendor/``
for GraphiQL and React, copied from the npm registry with their licences; no build step: the console is plain
JavaScript modules). The console talks only to the public GraphQL API and ``/auth/*``, so scope, masking and
audit are exactly what every frontend gets. Pages are sent with a Content-Security-Policy that allows this
origin only.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
CONSOLE_DIR = HERE / "console"
STATIC_DIR = HERE / "static"

CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
               "form-action 'self'")


@lru_cache(maxsize=1)
def graphiql_html() -> str:
    """GraphiQL's page: React, ReactDOM and GraphiQL from ``/static/vendor``; the session cookie and its CSRF
    header are sent along, so a person logged in to the console can use it without pasting a token."""
    return """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>aidgraph GraphiQL</title>
  <style>body{height:100%;margin:0;width:100%;overflow:hidden}#graphiql{height:100vh;display:flex}</style>
  <link rel="stylesheet" href="/static/vendor/graphiql.min.css">
  <script src="/static/vendor/react.production.min.js"></script>
  <script src="/static/vendor/react-dom.production.min.js"></script>
</head>
<body>
  <div id="graphiql">Loading…</div>
  <script src="/static/vendor/graphiql.min.js"></script>
  <script src="/static/graphiql-init.js"></script>
</body>
</html>
"""


def console_routes() -> list:
    async def console(_request: Request) -> Response:
        return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": CONSOLE_CSP, "X-Content-Type-Options": "nosniff",
                                     "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})

    async def console_slash(_request: Request) -> Response:
        return RedirectResponse("/console", status_code=308)

    return [Route("/console", console, methods=["GET"]),
            Route("/console/", console_slash, methods=["GET"]),
            Mount("/console/assets", StaticFiles(directory=CONSOLE_DIR / "assets"), name="console-assets"),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")]


__all__ = ["console_routes", "graphiql_html", "HTMLResponse"]
