"""Runtime settings, read from the environment once at the boundary (CLI, server, tests).

Every setting has an embedded default so that a fresh checkout runs with no configuration: a SQLite
file in the working directory and the bundled OpenSearch-compatible server. Production deployments set
``AIDGRAPH_DATABASE_URL``, ``AIDGRAPH_OPENSEARCH_URL``, ``AIDGRAPH_ENV=production`` and
``AIDGRAPH_SECRET_KEY``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any


def builtin_province_configs() -> Path:
    """The province configurations shipped with aidgraph (package data ``aidgraph/province_configs``).

    Found through :mod:`importlib.resources`, so the same code serves a checkout, an editable install and a
    wheel; ``AIDGRAPH_PROVINCE_CONFIGS`` points a deployment at its own folder instead.
    """
    return Path(str(resources.files("aidgraph") / "province_configs"))


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "aidgraph"


@dataclass(frozen=True)
class Settings:
    """Deployment settings. Build with :func:`load_settings`; override fields with ``replace``."""

    database_url: str = "sqlite:///aidgraph.db"
    opensearch_url: str | None = None
    opensearch_user: str | None = None
    opensearch_password: str | None = None
    opensearch_verify_certs: bool = True
    opensearch_ca_certs: str | None = None
    env: str = "development"
    secret_key: str | None = None
    state_dir: Path = field(default_factory=_default_state_dir)
    province_configs_dir: Path = field(default_factory=builtin_province_configs)
    max_page_size: int = 100
    default_page_size: int = 20
    max_query_depth: int = 12
    max_query_aliases: int = 20
    max_query_tokens: int = 3000
    max_query_cost: int = 5000
    """GraphQL limits (schema/hardening.py); cost counts each field, times ``first`` for paged fields."""
    max_repeated_fields: int = 20
    """How often one response name may occur in one selection set (fragments expanded): the validation rule
    that merges overlapping fields is quadratic in it (schema/hardening.py)."""
    max_request_bytes: int = 1_000_000
    """Request bodies above this are refused with HTTP 400 before they are read in full (core/app/server.py)."""
    document_cache_bytes: int = 32 * 1024 * 1024
    """Budget of the parsed/validated operation cache, in bytes of operation text (schema/hardening.py)."""
    outbox_keep_hours: int = 24
    """Processed search-outbox rows older than this are purged by the indexer (``AIDGRAPH_OUTBOX_KEEP_HOURS``;
    ``aidgraph index --purge`` on demand); pending rows are never purged."""
    partition_check_minutes: int = 360
    """How often the server makes the months ahead of the partitioned history tables, and gives rows stranded in
    a default partition their month (PostgreSQL; ``AIDGRAPH_PARTITION_CHECK_MINUTES``; core/app/maintenance.py)."""
    outbox_max_attempts: int = 5
    """Passes a document the search engine refuses is retried before its outbox row becomes a dead letter
    (``AIDGRAPH_OUTBOX_MAX_ATTEMPTS``; ``aidgraph index --dead-letters`` lists them)."""
    search_repair_max_delete_percent: int = 10
    """``aidgraph index --verify`` refuses a repair that would delete more than this share of the index's
    documents without ``--force`` (``AIDGRAPH_SEARCH_REPAIR_MAX_DELETE_PERCENT``)."""
    search_max_restarts: int = 5
    """Restarts of a dead embedded search engine tried within ten minutes before the server gives up and serves
    without search (``AIDGRAPH_SEARCH_MAX_RESTARTS``; core/search/embedded.py)."""
    otel_endpoint: str | None = None
    """Where GraphQL operations are traced (OTLP/HTTP traces URL; core/app/tracing.py): ``AIDGRAPH_OTEL_ENDPOINT``,
    else the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (+ ``/v1/traces``);
    None (the default, or ``OTEL_SDK_DISABLED=true``): tracing off."""
    row_level_security: bool = True
    """On PostgreSQL, the server's connections run as the application role ``aidgraph_app`` and every request
    transaction sets the caller's region scope, which the row-level security policies of migration 0018 enforce
    (core/storage/rls.py); ``AIDGRAPH_ROW_LEVEL_SECURITY=0`` runs requests as the login role, unbound by them
    (the benchmark's comparison). SQLite has no row-level security."""
    compiled_operations: bool = True
    """Answer the contract's HouseholdList and HouseholdDetail through their compiled plans (schema/compiled.py);
    ``AIDGRAPH_COMPILED_OPERATIONS=0`` sends every operation through the general GraphQL executor."""

    oidc_issuer: str | None = None
    """OpenID Connect login (``/auth/oidc/*``, core/app/oidc.py) against this issuer (``AIDGRAPH_OIDC_ISSUER``);
    unset: no OIDC login. With it: ``AIDGRAPH_OIDC_CLIENT_ID``, ``AIDGRAPH_OIDC_CLIENT_SECRET``, optionally
    ``AIDGRAPH_OIDC_REDIRECT_URI`` (default: this server's ``/auth/oidc/callback`` as the request reached it) and
    ``AIDGRAPH_OIDC_USERNAME_CLAIM`` (the ID token claim holding the aidgraph username; default
    ``preferred_username``)."""
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = None
    oidc_username_claim: str = "preferred_username"

    @property
    def production(self) -> bool:
        return self.env == "production"

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from the environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    settings = Settings()
    changes: dict[str, Any] = {}
    if env.get("AIDGRAPH_DATABASE_URL"):
        changes["database_url"] = env["AIDGRAPH_DATABASE_URL"]
    if env.get("AIDGRAPH_OPENSEARCH_URL"):
        changes["opensearch_url"] = env["AIDGRAPH_OPENSEARCH_URL"]
    if env.get("AIDGRAPH_OPENSEARCH_USER"):
        changes["opensearch_user"] = env["AIDGRAPH_OPENSEARCH_USER"]
    if env.get("AIDGRAPH_OPENSEARCH_PASSWORD"):
        changes["opensearch_password"] = env["AIDGRAPH_OPENSEARCH_PASSWORD"]
    if env.get("AIDGRAPH_OPENSEARCH_VERIFY_CERTS"):
        changes["opensearch_verify_certs"] = env["AIDGRAPH_OPENSEARCH_VERIFY_CERTS"].lower() not in ("0", "false", "no")
    if env.get("AIDGRAPH_OPENSEARCH_CA_CERTS"):
        changes["opensearch_ca_certs"] = env["AIDGRAPH_OPENSEARCH_CA_CERTS"]
    if env.get("AIDGRAPH_ENV"):
        value = env["AIDGRAPH_ENV"].strip().lower()
        if value not in ("development", "production", "test"):
            raise ValueError(f"AIDGRAPH_ENV must be development, production or test, not {value!r}")
        changes["env"] = value
    if env.get("AIDGRAPH_SECRET_KEY"):
        changes["secret_key"] = env["AIDGRAPH_SECRET_KEY"]
    if env.get("AIDGRAPH_STATE_DIR"):
        changes["state_dir"] = Path(env["AIDGRAPH_STATE_DIR"])
    if env.get("AIDGRAPH_COMPILED_OPERATIONS"):
        changes["compiled_operations"] = env["AIDGRAPH_COMPILED_OPERATIONS"].strip().lower() not in ("0", "false", "no")
    otel = env.get("AIDGRAPH_OTEL_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not otel and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        otel = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"  # the OTLP/HTTP exporter's rule
    if otel and env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true":
        changes["otel_endpoint"] = otel
    if env.get("AIDGRAPH_ROW_LEVEL_SECURITY"):
        changes["row_level_security"] = env["AIDGRAPH_ROW_LEVEL_SECURITY"].strip().lower() not in ("0", "false", "no")
    if env.get("AIDGRAPH_PROVINCE_CONFIGS"):
        changes["province_configs_dir"] = Path(env["AIDGRAPH_PROVINCE_CONFIGS"])
    for name in ("oidc_issuer", "oidc_client_id", "oidc_client_secret", "oidc_redirect_uri", "oidc_username_claim"):
        if env.get("AIDGRAPH_" + name.upper()):
            changes[name] = env["AIDGRAPH_" + name.upper()].strip()
    if changes.get("oidc_issuer") and not (changes.get("oidc_client_id") and changes.get("oidc_client_secret")):
        raise ValueError("AIDGRAPH_OIDC_ISSUER needs AIDGRAPH_OIDC_CLIENT_ID and AIDGRAPH_OIDC_CLIENT_SECRET")
    for name in ("max_query_depth", "max_query_aliases", "max_query_tokens", "max_query_cost", "max_repeated_fields",
                 "max_request_bytes", "document_cache_bytes", "outbox_keep_hours", "partition_check_minutes",
                 "outbox_max_attempts", "search_repair_max_delete_percent", "search_max_restarts"):
        raw = env.get("AIDGRAPH_" + name.upper())
        if raw:
            if not raw.strip().isdigit() or int(raw) < 1:
                raise ValueError(f"AIDGRAPH_{name.upper()} must be a positive whole number, not {raw!r}")
            changes[name] = int(raw)
    return replace(settings, **changes)
