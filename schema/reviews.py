"""GraphQL for reviews (复核) of running enrolments: the contract's ConductReview, and the due reviews listed.

The service is :func:`aidgraph.core.workflow.enrollment.conduct_review` (rules in
:mod:`aidgraph.core.workflow.reviews`), run in the request's write transaction: all or nothing, DomainErrors
returned as the payload's ``errors``. ``dueReviews`` lists the ACTIVE enrolments whose review is due, with
the caller's enrolment visibility applied in SQL (one predicate per request) and the region narrowed.
"""

from __future__ import annotations

import datetime as dt

import strawberry
from sqlalchemy import and_, func, or_, select

from aidgraph.core.graph import privacy
from aidgraph.core.storage import models
from aidgraph.core.storage.errors import not_found
from aidgraph.schema.context import Info
from aidgraph.schema.errors import UserError, run_mutation
from aidgraph.schema.programs import policy_engine
from aidgraph.schema.relay import (
    Connection,
    Edge,
    PageInfo,
    db_id,
    decode_cursor,
    encode_cursor,
    page_size,
)
from aidgraph.schema.types import Enrollment
from graphql import GraphQLError
from aidgraph.core.workflow.enrollment import conduct_review


@strawberry.input(description="Conduct the review (复核) of an ACTIVE enrolment on the facts recorded at "
                              "reviewDate (default today).")
class ReviewInput:
    enrollment_id: strawberry.ID
    review_date: dt.date | None = None
    note: str | None = None
    idempotency_key: str | None = None


@strawberry.type
class ReviewPayload:
    enrollment: Enrollment | None
    changed: bool | None = strawberry.field(description="Whether the benefit or the status changed.")
    reasons: list[str] = strawberry.field(description="Why, naming the numbers (withheld without the income "
                                                      "right).")
    errors: list[UserError]


@strawberry.type
class Query:
    @strawberry.field(description="ACTIVE enrolments under a region whose review (复核) is due on or before asOf "
                                  "(default today), earliest first, within the caller's scope.")
    async def due_reviews(self, info: Info, region_code: str, as_of: dt.date | None = None,
                          first: int | None = None, after: str | None = None) -> Connection[Enrollment]:
        n = page_size(first)
        on = as_of or dt.date.today()
        e = models.Enrollment
        where = [e.status == models.EnrollmentStatus.ACTIVE.value, e.next_review_date.is_not(None),
                 e.next_review_date <= on, e.region_code.startswith(region_code, autoescape=True),
                 info.context.enrollment_visibility]
        position = decode_cursor(after, 2)
        page_where = list(where)
        if position is not None:
            try:
                day, last_id = dt.date.fromisoformat(position[0]), int(position[1])
            except ValueError:
                raise GraphQLError("invalid cursor", extensions={"code": "VALIDATION", "field": "after"}) from None
            page_where.append(or_(e.next_review_date > day, and_(e.next_review_date == day, e.id > last_id)))
        async with info.context.db() as session:
            total = (await session.execute(select(func.count()).select_from(e).where(*where))).scalar_one()
            rows = list((await session.execute(select(e).where(*page_where).order_by(e.next_review_date, e.id)
                                               .limit(n + 1))).scalars())
        edges = [Edge(cursor=encode_cursor(str(r.next_review_date), r.id), node=Enrollment.from_row(r))
                 for r in rows[:n]]
        return Connection(total_count=total, edges=edges,
                          page_info=PageInfo(has_next_page=len(rows) > n,
                                             end_cursor=edges[-1].cursor if edges else None))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="复核: review an ACTIVE enrolment; a review that finds no significant change "
                                     "does not re-price the benefit; 渐退期 only when employment earnings lift the "
                                     "household over the standard (GD-2021).")
    async def conduct_review(self, info: Info, input: ReviewInput) -> ReviewPayload:
        async def work(session):
            key = db_id(input.enrollment_id, "Enrollment")
            if key is None:
                raise not_found("enrollment", "enrollmentId")
            enrollment = await conduct_review(session, info.context.actor, policy_engine(info), enrollment_id=key,
                                              on=input.review_date, note=input.note,
                                              idempotency_key=input.idempotency_key)
            return enrollment.id

        enrollment_id, errors = await run_mutation(info, work)
        if enrollment_id is None:
            return ReviewPayload(enrollment=None, changed=None, reasons=[], errors=errors)
        row = await info.context.enrollments_by_id.load(enrollment_id)
        if row is None:
            return ReviewPayload(enrollment=None, changed=None, reasons=[], errors=errors)
        review = (row.details or {}).get("review") or {}
        household = await info.context.households.load(row.household_id)
        shown = household is not None and privacy.eligibility_visible(info.context, household)
        if shown and review.get("reasons"):
            privacy.note_disclosure(info.context, "enrollment", row.id, row.region_code, "reviewReasons")
        return ReviewPayload(enrollment=Enrollment.from_row(row), changed=review.get("changed"),
                             reasons=list(review.get("reasons") or []) if shown else [], errors=errors)
