"""Concrete indices behind the search alias: create one, find the live one, swap atomically, write in bulk.

Searches and the outbox indexer address the alias only. A rebuild writes a new concrete index
(``<alias>-<UTC timestamp>``) and moves the alias to it in one ``_aliases`` request, so searches never see a
half-built index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError

from aidgraph.core.search.documents import Doc
from aidgraph.core.search.mapping import SearchLayout


def new_index_name(alias: str) -> str:
    return f"{alias}-{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S%f}"


OWNER_META = "aidgraph_database"
"""The key of the index mapping's ``_meta`` that names the database the index was built from."""


def create_index(client: OpenSearch, alias: str, layout: SearchLayout, *, bulk_load: bool = False,
                 owner: str | None = None) -> str:
    """Create a new concrete index for ``alias`` (not yet behind it); ``bulk_load`` turns refresh off;
    ``owner`` (the database's identity) is stamped in the mapping's ``_meta``."""
    name = new_index_name(alias)
    body = layout.index_body()
    if bulk_load:
        body["settings"]["index"]["refresh_interval"] = "-1"
    if owner is not None:
        body.setdefault("mappings", {}).setdefault("_meta", {})[OWNER_META] = owner
    client.indices.create(index=name, body=body)
    return name


def mappings_of(client: OpenSearch, names: list[str]) -> dict[str, dict]:
    """{concrete index: its mapping (``properties``, ``_meta``)}, in one request."""
    if not names:
        return {}
    mappings = client.indices.get_mapping(index=",".join(names))
    return {name: (mappings.get(name, {}).get("mappings") or {}) for name in names}


def owners_of(client: OpenSearch, alias: str) -> dict[str, str | None]:
    """{concrete index behind ``alias``: the database identity stamped on it, or None (built before stamps)}."""
    return {name: (mapping.get("_meta") or {}).get(OWNER_META)
            for name, mapping in mappings_of(client, indices_of(client, alias)).items()}


def finish_bulk_load(client: OpenSearch, name: str) -> None:
    client.indices.put_settings(index=name, body={"index": {"refresh_interval": "1s"}})
    client.indices.refresh(index=name)


def indices_of(client: OpenSearch, alias: str) -> list[str]:
    """Concrete indices the alias points at (empty when the alias does not exist)."""
    try:
        return sorted(client.indices.get_alias(name=alias).keys())
    except NotFoundError:
        return []


def layout_gaps(client: OpenSearch, names: list[str], layout: SearchLayout) -> dict[str, list[str]]:
    """{concrete index: the layout's fields its mapping lacks}, for the indices that lack any.

    An index built by an earlier release (or before a plugin added its fields) cannot take this release's
    documents (its mapping is ``strict``) and does not answer this release's filters: it must be rebuilt."""
    gaps = {}
    for name, mapping in mappings_of(client, names).items():
        have = mapping.get("properties") or {}
        missing = sorted(f for f in layout.properties if f not in have)
        if missing:
            gaps[name] = missing
    return gaps


def swap_alias(client: OpenSearch, alias: str, new_index: str) -> list[str]:
    """Point ``alias`` at ``new_index`` only, in one request; returns the indices it left."""
    old = [i for i in indices_of(client, alias) if i != new_index]
    actions = [{"remove": {"index": i, "alias": alias}} for i in old]
    actions.append({"add": {"index": new_index, "alias": alias}})
    client.indices.update_aliases(body={"actions": actions})
    return old



@dataclass
class BulkOutcome:
    """Per document id: written (or already newer), or failed with the engine's reason."""

    ok: set[str] = field(default_factory=set)
    conflicts: int = 0
    conflicted: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    indexed: int = 0
    deleted: int = 0


def write(client: OpenSearch, index: str, docs: Iterable[Doc], delete_ids: Iterable[str] = (), *,
          chunk_size: int = 2000, refresh: bool = False, version_type: str = "external") -> BulkOutcome:
    """Index ``docs`` with external versions and delete ``delete_ids``, checking every item's result.

    A version conflict means the index already holds this or a newer version: success. A delete of a missing
    document is success. Anything else is a failure, reported per id for the caller to retry; connection
    errors raise (nothing is marked done). ``version_type="external_gte"`` is only for documents known to be
    absent, whose delete tombstone may still hold the same version (OpenSearch keeps it for
    ``index.gc_deletes``).
    """
    actions = [{"_op_type": "index", "_index": index, "_id": d.id, "_version": d.version,
                "_version_type": version_type, "_source": d.source} for d in docs]
    actions += [{"_op_type": "delete", "_index": index, "_id": i} for i in delete_ids]
    outcome = BulkOutcome()
    if not actions:
        return outcome
    for ok, item in helpers.streaming_bulk(client, actions, chunk_size=chunk_size, max_chunk_bytes=50 * 1024 * 1024,
                                           raise_on_error=False, raise_on_exception=True, max_retries=0,
                                           refresh="true" if refresh else "false"):
        op, result = next(iter(item.items()))
        doc_key = result.get("_id")
        status = result.get("status", 0)
        if ok or (op == "delete" and status == 404):
            outcome.ok.add(doc_key)
            if op == "delete":
                outcome.deleted += 1
            else:
                outcome.indexed += 1
        elif status == 409:
            outcome.ok.add(doc_key)
            outcome.conflicts += 1
            outcome.conflicted.add(doc_key)
        else:
            error = result.get("error")
            reason = error.get("reason") if isinstance(error, dict) else str(error)
            outcome.failed[doc_key] = f"{status}: {reason}"
    return outcome
