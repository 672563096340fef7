"""The console and GraphiQL are served whole by the server: every script, style and font from this origin, none
from a CDN (an intranet has none), and the console page is sent with a same-origin Content-Security-Policy."""

from __future__ import annotations

import re

import httpx

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.I)
LOCAL_ASSET = re.compile(r"""(?:src|href)\s*=\s*["'](/[^"']+)["']""")
IMPORT = re.compile(r"""from\s+["'](\./[^"']+)["']""")


def test_graphiql_loads_its_assets_from_this_server(live_server):
    page = httpx.get(f"{live_server.url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "GraphiQL" in page.text
    assert not EXTERNAL.search(page.text), "GraphiQL must not load anything from another origin"
    assets = LOCAL_ASSET.findall(page.text)
    assert {"/static/vendor/graphiql.min.js", "/static/vendor/react.production.min.js",
            "/static/vendor/react-dom.production.min.js", "/static/vendor/graphiql.min.css"} <= set(assets)
    for asset in assets:
        response = httpx.get(f"{live_server.url}{asset}")
        assert response.status_code == 200 and len(response.content) > 1000, asset
        assert "unpkg.com" not in response.text and "cdn.jsdelivr" not in response.text


def test_the_console_is_served_whole_from_this_origin(live_server):
    page = httpx.get(f"{live_server.url}/console")
    assert page.status_code == 200 and 'lang="zh-CN"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert not EXTERNAL.search(page.text)
    seen, todo = set(), [a for a in LOCAL_ASSET.findall(page.text)]
    while todo:  # the page's assets and every module they import
        asset = todo.pop()
        if asset in seen:
            continue
        seen.add(asset)
        response = httpx.get(f"{live_server.url}{asset}")
        assert response.status_code == 200, asset
        assert "@import url(http" not in response.text and "@font-face" not in response.text
        if asset.endswith(".js"):
            assert response.headers["content-type"].startswith(("text/javascript", "application/javascript"))
            base = asset.rsplit("/", 1)[0]
            todo += [f"{base}/{m[2:]}" for m in IMPORT.findall(response.text)]
    assert {"/console/assets/app.js", "/console/assets/api.js", "/console/assets/i18n.js",
            "/console/assets/style.css"} <= seen
    assert httpx.get(f"{live_server.url}/console/assets/../../graphql").status_code in (404, 405)  # no path escape
