"""The contract's Search operation: ``search(query, kinds, regionCode, warningLevel, first, after)``.

The index only finds: each hit's node is loaded from the database through the request's DataLoaders, so the
caller's read scope and masking apply to what is shown exactly as on every other path (a hit whose record
has since left the caller's read scope or the database is left out). Scoping of the search itself, facets,
highlights and paging are :mod:`aidgraph.core.search.query`'s. A search for a full ID number is written to the audit
log before the answer is returned (masked, with its blind index: an auditor finds the searches for a number by
its index; the audit table holds no complete ID number). A search engine that is down, slow or erroring answers with a GraphQL
error whose ``extensions.code`` is ``SEARCH_UNAVAILABLE``; bad arguments answer ``VALIDATION`` naming the
argument.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Annotated, Any

import strawberry
from strawberry.dataloader import DataLoader
from graphql import GraphQLError
from aidgraph.schema.context import Info

from aidgraph.core.graph import audit
from aidgraph.core.graph import idnumber
from aidgraph.core.graph import privacy
from aidgraph.core.storage.encrypted import id_number_index
from aidgraph.core.storage.errors import DomainError
from aidgraph.core.search.client import SearchUnavailable
from aidgraph.core.search.query import SearchHit, SearchRequest
from aidgraph.schema.relay import PageInfo
from aidgraph.schema.types import Alert, Enrollment, Household, Person, WarningLevel


@strawberry.enum(description="Kinds of records Search finds.")
class SearchKind(enum.Enum):
    PERSON = "PERSON"
    HOUSEHOLD = "HOUSEHOLD"
    ALERT = "ALERT"
    ENROLLMENT = "ENROLLMENT"


@strawberry.type
class FacetBucket:
    key: str
    count: int


@strawberry.type(description="Counts of the matching records by `kind`, `region` (one level below the region "
                             "searched) or `warningLevel`, within the caller's scope.")
class SearchFacet:
    field: str
    buckets: list[FacetBucket]


SearchResult = Annotated[Person | Household | Alert | Enrollment, strawberry.union("SearchResult")]


@strawberry.type
class SearchEdge:
    cursor: str
    score: float
    highlights: list[str] = strawberry.field(description="HTML fragments of the matched text, matches in <em>.")
    node: SearchResult


@strawberry.type
class SearchConnection:
    total_count: int
    page_info: PageInfo
    facets: list[SearchFacet]
    edges: list[SearchEdge]


def _unavailable(error: SearchUnavailable) -> GraphQLError:
    return GraphQLError(f"search is unavailable: {error}", extensions={"code": "SEARCH_UNAVAILABLE"})


def _invalid(error: DomainError) -> GraphQLError:
    first = error.errors[0]
    return GraphQLError(first.message, extensions={"code": first.code.value, "field": first.field})


async def _nodes(info: Info, hits: list[SearchHit]) -> dict[tuple[str, int], Person | Household | Alert | Enrollment]:
    context = info.context
    by_kind: dict[str, list[int]] = {}
    for h in hits:
        by_kind.setdefault(h.kind, []).append(h.entity_id)
    loaders: dict[str, tuple[DataLoader[Any, Any], type[Person] | type[Household] | type[Alert] | type[Enrollment]]] = {
        "PERSON": (context.persons, Person), "HOUSEHOLD": (context.households, Household),
        "ALERT": (context.alerts_by_id, Alert), "ENROLLMENT": (context.enrollments_by_id, Enrollment)}
    kinds = [k for k in by_kind if k in loaders]
    rows = await asyncio.gather(*(loaders[k][0].load_many(by_kind[k]) for k in kinds))
    found: dict[tuple[str, int], Person | Household | Alert | Enrollment] = {}
    for kind, loaded in zip(kinds, rows):
        for entity_id, row in zip(by_kind[kind], loaded):
            if row is not None:
                found[(kind, entity_id)] = loaders[kind][1].from_row(row)
    return found


@strawberry.type
class Query:
    @strawberry.field(description="Free text over names (partial Chinese names), full ID numbers, household numbers "
                                  "and addresses, within the caller's scope. `first` defaults to 20, at most 100.")
    async def search(self, info: Info, query: str, kinds: list[SearchKind] | None = None,
                     region_code: str | None = None, warning_level: WarningLevel | None = None,
                     first: int | None = None, after: str | None = None) -> SearchConnection:
        context = info.context
        request = SearchRequest(query=query, kinds=tuple(k.value for k in kinds) if kinds else None,
                                region_code=region_code,
                                warning_levels=(warning_level.value,) if warning_level is not None else None,
                                first=first, after=after)
        runtime = context.search
        try:
            if runtime is None:
                raise SearchUnavailable("search is not configured on this server")
            page = await runtime.asearch(context.actor, request)
        except DomainError as e:
            raise _invalid(e) from None
        except SearchUnavailable as e:
            raise _unavailable(e) from None
        nodes = await _nodes(info, page.hits)
        if page.id_number_searched:
            persons = [h.entity_id for h in page.hits if h.kind == "PERSON"]
            found = nodes.get(("PERSON", persons[0])) if len(persons) == 1 else None
            # The row carries a region so the auditors of that region can read it: the person's when one was
            # found, otherwise the searcher's own (privacy.actor_region).
            region = getattr(getattr(found, "_row", None), "region_code", None) or privacy.actor_region(context.actor)
            async with context.write() as session:
                audit.record(session, context.actor, "search_id_number", "person",
                             persons[0] if len(persons) == 1 else None, region,
                             {"idNumber": idnumber.mask(page.id_number_searched),
                              "idNumberIndex": id_number_index(page.id_number_searched), "total": page.total})
        edges = [SearchEdge(cursor=h.cursor, score=h.score, highlights=h.highlights, node=nodes[(h.kind, h.entity_id)])
                 for h in page.hits if (h.kind, h.entity_id) in nodes]
        return SearchConnection(
            total_count=page.total,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            facets=[SearchFacet(field=f.field, buckets=[FacetBucket(key=b.key, count=b.count) for b in f.buckets])
                    for f in page.facets],
            edges=edges,
        )
