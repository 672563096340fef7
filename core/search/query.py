"""The Search operation (跨记录检索): free text over names, ID numbers, household numbers and addresses.

Everything a caller may not see is excluded inside the OpenSearch query, never by dropping hits afterwards:
each requested kind is restricted by the caller's scope for ``search`` on that kind
(``scope.opensearch_filter(REGION_LEVEL_FIELDS)``), so the total, every page and every facet count are scoped.
A region argument narrows that scope (a region outside it finds nothing, exactly like a region without
records). Filters by kind, region and warning level; facets by kind, region (one level below the region
searched) and warning level; HTML highlights; Relay paging by ``search_after`` on (score, uid), so a deep
page costs what the first one does (a search without text sorts by uid alone). osmem-server 0.1.6 ignores
``search_after`` when the sort includes ``_score``; on that engine only (detected once, see
:class:`EngineQuirks`) a text search pages by the position its cursor also carries.

The query text is never parsed as query syntax (no ``query_string``): ``" * ? : \\ /`` are just characters.
Names and addresses are matched with ``operator: and`` over 1-2 character n-grams (every part of the query
must occur); ID numbers and household numbers are matched as whole keywords. The match clause also says
``minimum_should_match: 100%``, which OpenSearch documents as the same requirement: osmem-server 0.1.6
ignores ``operator`` (see the ``emulator_difference`` test) but honours ``minimum_should_match``, so the
embedded default does not match an 18-digit ID number against every name or address holding a digit.

Sensitive fields (the ID number, every plugin field) are returned from the index, and highlighted, only
for callers who may read them in full (``read_sensitive`` over the whole searched scope); the nodes
themselves are loaded from the database by the GraphQL layer, which masks what is shown.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch

from aidgraph.core.access.actor import Actor
from aidgraph.core.storage.encrypted import id_number_index
from aidgraph.core.storage.errors import DomainError, ErrorCode
from aidgraph.core.storage.models import WARNING_SEVERITY
from aidgraph.core.graph.idnumber import InvalidIdNumber, parse as parse_id_number
from aidgraph.core.access.scope import Scope, is_level_code
from aidgraph.core.search.client import CLIENT_ERRORS, SearchUnavailable, unavailable_from
from aidgraph.core.search.mapping import HIGHLIGHT_FIELDS, KINDS, REGION_LEVEL_FIELDS, SOURCE_FIELDS, SearchLayout

MAX_QUERY_LENGTH = 200
DEFAULT_FIRST = 20
MAX_FIRST = 100
WARNING_LEVELS = tuple(sorted(WARNING_SEVERITY, key=WARNING_SEVERITY.__getitem__, reverse=True))
"""The warning levels, most severe first."""
SCOPE_OBJECT = {"PERSON": "person", "HOUSEHOLD": "household", "ENROLLMENT": "enrollment", "ALERT": "alert"}
"""The Casbin object type whose ``search`` scope limits each kind."""
REGION_FACET_SIZE = 100
ID_NUMBER_LIKE = re.compile(r"^[0-9]{17}[0-9Xx]$")
IDENTIFIER_LIKE = re.compile(r"^(?:[0-9]{17}[0-9Xx]|[Hh][0-9]{12,24})$")
"""A whole ID number or household number: matched as a keyword only, never as n-grams of a name or address."""


@dataclass(frozen=True)
class SearchRequest:
    query: str
    kinds: tuple[str, ...] | None = None
    region_code: str | None = None
    warning_levels: tuple[str, ...] | None = None
    first: int | None = None
    after: str | None = None


@dataclass
class SearchHit:
    kind: str
    entity_id: int
    score: float
    cursor: str
    highlights: list[str]
    source: dict[str, Any]


@dataclass
class FacetBucket:
    key: str
    count: int


@dataclass
class Facet:
    field: str
    buckets: list[FacetBucket]


@dataclass
class SearchPage:
    total: int
    hits: list[SearchHit]
    has_next_page: bool
    end_cursor: str | None
    facets: list[Facet]
    id_number_searched: str | None = None
    """The full ID number the query looked for, if any (the caller audits it)."""
    sensitive_returned: bool = False
    body: dict = field(default_factory=dict, repr=False)


def _invalid(field_name: str, message: str) -> DomainError:
    return DomainError.single(ErrorCode.VALIDATION, message, field_name)


def encode_cursor(sort_values: list, position: int) -> str:
    """The hit's sort values (what ``search_after`` needs) and its 1-based position in the result."""
    return base64.urlsafe_b64encode(json.dumps([*sort_values, position], separators=(",", ":")).encode()).decode()


@dataclass(frozen=True)
class EngineQuirks:
    """Known departures of the engine from OpenSearch that the Search operation must survive.

    ``score_search_after``: False when the engine ignores ``search_after`` on a sort that includes
    ``_score`` (osmem-server 0.1.6 answers the first page again, or nothing). Only then is a text search
    paged by ``from`` with the position the cursor also carries; OpenSearch always gets ``search_after``.
    """

    score_search_after: bool = True

    @classmethod
    def detect(cls, client: OpenSearch) -> "EngineQuirks | None":
        """The engine's quirks, or None when it cannot be asked now (ask again later)."""
        try:
            info = client.info()
        except CLIENT_ERRORS:
            return None
        emulator = info.get("cluster_name") == "osmem" or (info.get("version") or {}).get("build_hash") == "osmem"
        return cls(score_search_after=not emulator)


def decode_cursor(cursor: str) -> tuple[list, int]:
    """The sort values (score and uid, or uid alone) and the position inside a cursor; VALIDATION otherwise."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    ok = isinstance(values, list) and len(values) in (2, 3) and isinstance(values[-1], int) and values[-1] >= 0
    if ok:
        sort, position = values[:-1], values[-1]
        ok = isinstance(sort[-1], str) and sort[-1].split(":", 1)[0] in KINDS and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in sort[:-1])
    if not ok:
        raise _invalid("after", "invalid cursor: pass an endCursor or edge cursor from a previous Search answer")
    return sort, position


def validate(request: SearchRequest) -> tuple[str, tuple[str, ...], tuple[str, ...] | None, int,
                                            tuple[list, int] | None]:
    """Normalised (text, kinds, warning levels, page size, search_after) or a DomainError naming the field."""
    text = (request.query or "").strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise _invalid("query", f"query is {len(text)} characters long; at most {MAX_QUERY_LENGTH} are allowed")
    kinds = tuple(dict.fromkeys(k.upper() for k in (request.kinds or ()))) or KINDS
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise _invalid("kinds", f"unknown kind {', '.join(unknown)}; kinds are {', '.join(KINDS)}")
    levels = None
    if request.warning_levels:
        levels = tuple(dict.fromkeys(w.upper() for w in request.warning_levels))
        bad = [w for w in levels if w not in WARNING_LEVELS]
        if bad:
            raise _invalid("warningLevel", f"unknown warning level {', '.join(bad)}")
    if request.region_code is not None and not is_level_code(request.region_code):
        raise _invalid("regionCode", f"{request.region_code!r} is not a region code (2, 4, 6, 9 or 12 digits)")
    first = DEFAULT_FIRST if request.first is None else request.first
    if first < 0 or first > MAX_FIRST:
        raise _invalid("first", f"first must be between 0 and {MAX_FIRST}, not {first}")
    after = decode_cursor(request.after) if request.after else None
    return text, kinds, levels, first, after


def searched_id_number(text: str) -> str | None:
    """The full, valid resident ID number the query is, if it is one (such a search is audited)."""
    candidate = text.strip().upper()
    if not ID_NUMBER_LIKE.match(candidate):
        return None
    try:
        return parse_id_number(candidate).number
    except InvalidIdNumber:
        return None


def _scope_for(actor: Actor, kind: str, region_code: str | None) -> Scope:
    scope = actor.scope("search", SCOPE_OBJECT[kind])
    return scope.narrow(region_code) if region_code else scope


def _region_facet_field(scopes: list[Scope], region_code: str | None) -> str:
    """Group by the level below the narrowest region every visible record shares (cities at the widest)."""
    if region_code:
        base = len(region_code)
    else:
        prefixes = {p for s in scopes if not s.unrestricted for p in s.prefixes}
        unrestricted = any(s.unrestricted for s in scopes)
        base = len(next(iter(prefixes))) if len(prefixes) == 1 and not unrestricted else 2
    for width in sorted(REGION_LEVEL_FIELDS):
        if width > base:
            return REGION_LEVEL_FIELDS[width]
    return "region_code"


def _may_read_sensitive(actor: Actor, scopes: dict[str, Scope]) -> bool:
    """Only if ``read_sensitive`` on persons covers the whole searched scope of every kind."""
    sensitive = actor.scope("read_sensitive", "person")
    if sensitive.unrestricted:
        return True
    for scope in scopes.values():
        if scope.unrestricted:
            return False
        if any(not sensitive.contains(p) for p in scope.prefixes):
            return False
    return True


def _visibility_filters(scopes: dict[str, Scope]) -> list[dict]:
    """Filter clauses admitting each kind within its own scope; kinds sharing a scope share one clause, and an
    unrestricted scope over every kind needs no clause at all (cheaper for the engine, same answer)."""
    groups: dict[Scope, list[str]] = {}
    for kind, scope in scopes.items():
        if not scope.empty:
            groups.setdefault(scope, []).append(kind)
    if not groups:
        return [{"bool": {"must_not": {"match_all": {}}}}]
    alternatives = []
    for scope, group in groups.items():
        clauses = [] if set(group) == set(KINDS) else [{"terms": {"kind": sorted(group)}}]
        if not scope.unrestricted:
            clauses.append(scope.opensearch_filter(REGION_LEVEL_FIELDS))
        alternatives.append(clauses)
    if len(alternatives) == 1:
        return alternatives[0]
    return [{"bool": {"should": [{"bool": {"filter": c}} if c else {"match_all": {}} for c in alternatives],
                      "minimum_should_match": 1}}]


def build_body(layout: SearchLayout, actor: Actor, request: SearchRequest,
               quirks: EngineQuirks = EngineQuirks()) -> tuple[dict, dict]:
    """The OpenSearch request body and facts about it (id number searched, sensitive returned)."""
    text, kinds, levels, first, after = validate(request)
    scopes = {k: _scope_for(actor, k, request.region_code) for k in kinds}
    filters = _visibility_filters(scopes)
    if levels:
        filters.append({"terms": {"warning_level": list(levels)}})
    searched = searched_id_number(text) if text else None
    if text:
        keyword = text.upper()
        should: list[dict] = [
            {"term": {"household_number": {"value": keyword, "boost": 10.0}}},
            {"term": {"program_key": {"value": text.lower(), "boost": 2.0}}},
        ]
        if searched is not None:  # the index holds no ID number, only its blind index (exact search)
            should.append({"term": {"id_number_index": {"value": id_number_index(searched), "boost": 10.0}}})
        for name in layout.text_fields if not IDENTIFIER_LIKE.match(text) else ():
            boost = 3.0 if name == "name" else 1.0
            should.append({"match": {name: {"query": text, "operator": "and", "minimum_should_match": "100%",
                                             "boost": boost}}})
        must: dict = {"bool": {"should": should, "minimum_should_match": 1}}
    else:
        must = {"match_all": {}}
    sensitive_ok = _may_read_sensitive(actor, scopes)
    source = list(SOURCE_FIELDS) + (sorted(layout.sensitive) if sensitive_ok else [])
    highlight_fields = list(HIGHLIGHT_FIELDS)
    body: dict[str, Any] = {
        "query": {"bool": {"must": [must], "filter": filters}},
        # Without text every hit scores the same: order by uid alone (cheaper, and the cursor is shorter).
        "sort": [{"_score": {"order": "desc"}}, {"uid": {"order": "asc"}}] if text else [{"uid": {"order": "asc"}}],
        "size": first + 1,
        "track_total_hits": True,
        "_source": {"includes": source},
        "aggs": {
            "kind": {"terms": {"field": "kind", "size": len(KINDS)}},
            "region": {"terms": {"field": _region_facet_field(list(scopes.values()), request.region_code),
                                 "size": REGION_FACET_SIZE}},
            "warningLevel": {"terms": {"field": "warning_level", "size": len(WARNING_LEVELS)}},
        },
        "timeout": "5s",
    }
    if text:
        body["highlight"] = {"encoder": "html", "pre_tags": ["<em>"], "post_tags": ["</em>"],
                             "fields": {f: {"number_of_fragments": 0} for f in highlight_fields}}
    position = 0
    if after is not None:
        sort_values, position = after
        if len(sort_values) != len(body["sort"]):
            raise _invalid("after", "the cursor belongs to a search with a different query")
        if text and not quirks.score_search_after:
            body["from"] = position
        else:
            body["search_after"] = sort_values
    facts = {"id_number": searched, "sensitive": sensitive_ok, "first": first,
             "position": position}
    return body, facts


def search(client: OpenSearch, alias: str, layout: SearchLayout, actor: Actor, request: SearchRequest,
           quirks: EngineQuirks = EngineQuirks()) -> SearchPage:
    """Run the Search operation for ``actor`` (blocking; call it from a worker thread in async code).

    Raises DomainError (VALIDATION, naming the field) for bad input and SearchUnavailable when the engine is
    down, slow or erroring.
    """
    body, facts = build_body(layout, actor, request, quirks)
    try:
        answer = client.search(index=alias, body=body)
    except CLIENT_ERRORS as e:
        raise unavailable_from(e) from e
    if answer.get("timed_out"):
        raise SearchUnavailable("search engine timed out")
    shards = answer.get("_shards") or {}
    if shards.get("failed"):
        raise SearchUnavailable("search engine answered with failed shards")
    first = facts["first"]
    raw = answer["hits"]["hits"]
    hits = []
    for n, h in enumerate(raw[:first], start=facts["position"] + 1):
        src = h.get("_source") or {}
        kind, _, entity = h["_id"].partition(":")
        fragments = [frag for name in (h.get("highlight") or {}) for frag in h["highlight"][name]]
        hits.append(SearchHit(kind=kind, entity_id=int(entity), score=float(h.get("_score") or 0.0),
                              cursor=encode_cursor(h["sort"], n), highlights=fragments, source=src))
    total = answer["hits"]["total"]
    aggs = answer.get("aggregations") or {}
    facets = [Facet(name, [FacetBucket(str(b["key"]), int(b["doc_count"])) for b in aggs.get(name, {}).get("buckets", [])])
              for name in ("kind", "region", "warningLevel")]
    return SearchPage(total=int(total["value"] if isinstance(total, dict) else total), hits=hits,
                      has_next_page=len(raw) > first, end_cursor=hits[-1].cursor if hits else None,
                      facets=facets, id_number_searched=facts["id_number"], sensitive_returned=facts["sensitive"],
                      body=body)
