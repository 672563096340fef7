"""Connections to the search engine (opensearch-py only) and the one error that says it is unavailable.

The same code talks to the bundled osmem-server and to a real OpenSearch cluster; only the URL and the
credentials differ (user, password, TLS verification and CA bundle from :class:`aidgraph.core.storage.config.Settings`).
Search requests fail fast (short timeout, no retries) so a caseworker sees "search unavailable" instead of
a hung page; the indexer uses a longer timeout for bulk requests and retries on its own schedule.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from opensearchpy import OpenSearch
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionError as OSConnectionError,
    ConnectionTimeout,
    NotFoundError,
    TransportError,
)

from aidgraph.core.storage.config import Settings

SEARCH_TIMEOUT = 5.0
"""Seconds a search request may take before the answer is SEARCH_UNAVAILABLE."""
BULK_TIMEOUT = 120.0


class SearchUnavailable(Exception):
    """The search engine is down, timed out, or answered with an error; nothing is written or lost by it."""

    code = "SEARCH_UNAVAILABLE"


def database_url_key(database_url: str) -> str:
    """A short stable name of a database URL (without the password; a SQLite file by its absolute path): where
    the embedded engine's state file of that database is found, and recorded in it so that a CLI run against
    another URL never uses the engine. (What ties an index to its database is the installation id,
    :mod:`aidgraph.core.storage.identity`, which reindex and verify check.)"""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        url = url.set(database=str(Path(str(url.database)).resolve()))
    shown = url.set(password=None).render_as_string(hide_password=False)
    return hashlib.sha256(shown.encode("utf-8")).hexdigest()[:16]


def embedded_state_file(settings: Settings) -> Path:
    """Where the server records the address of the embedded search engine it started (for the CLI): beside a
    SQLite database file (``aidgraph.db.search.json``), else in the state directory under the database's
    URL. Two installations never share it, and a CLI run against one database never finds another's."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(str(url.database))
        return db.with_name(db.name + ".search.json")
    return Path(settings.state_dir) / f"embedded-search-{database_url_key(settings.database_url)}.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve_url(settings: Settings) -> str | None:
    """The configured cluster, else the embedded engine of a running ``aidgraph serve`` of this database, else
    None."""
    if settings.opensearch_url:
        return settings.opensearch_url
    path = embedded_state_file(settings)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("database") != database_url_key(settings.database_url):
        return None  # written by an engine of another database (or by a version that did not say)
    if state.get("url") and _pid_alive(int(state.get("server_pid", 0) or 0)):
        return state["url"]
    return None


def make_client(url: str, settings: Settings | None = None, *, timeout: float = SEARCH_TIMEOUT,
                max_retries: int = 0) -> OpenSearch:
    """A client for ``url``; credentials and TLS options come from ``settings`` when given."""
    kwargs: dict = {"hosts": [url], "timeout": timeout, "max_retries": max_retries, "retry_on_timeout": False}
    if settings is not None:
        if settings.opensearch_user:
            kwargs["http_auth"] = (settings.opensearch_user, settings.opensearch_password or "")
        if url.startswith("https"):
            kwargs["use_ssl"] = True
            kwargs["verify_certs"] = settings.opensearch_verify_certs
            if settings.opensearch_ca_certs:
                kwargs["ca_certs"] = settings.opensearch_ca_certs
            if not settings.opensearch_verify_certs:
                kwargs["ssl_show_warn"] = False
    return OpenSearch(**kwargs)


def unavailable_from(error: Exception) -> SearchUnavailable:
    """Turn a client exception into the one unavailable error, with a message that says what happened."""
    if isinstance(error, SearchUnavailable):
        return error
    if isinstance(error, ConnectionTimeout):
        return SearchUnavailable("search engine timed out")
    if isinstance(error, OSConnectionError):
        return SearchUnavailable("search engine cannot be reached")
    if isinstance(error, NotFoundError):
        return SearchUnavailable("search index is not built yet")
    if isinstance(error, (AuthenticationException, AuthorizationException)):
        return SearchUnavailable("search engine refused the platform's credentials")
    if isinstance(error, TransportError):
        return SearchUnavailable(f"search engine answered with an error ({error.status_code})")
    return SearchUnavailable(f"search engine failed: {type(error).__name__}")


CLIENT_ERRORS = (TransportError, ConnectionError, OSError)
"""Exceptions a search engine call can raise (opensearch-py's TransportError covers its connection errors)."""
