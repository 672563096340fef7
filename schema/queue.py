"""The approval queue (待审批): enrolments under a region by status, for the console and any frontend.

Why it exists: a county officer approving applications needs the enrolments waiting at their level without
walking every household. The list is read with the request's one enrolment visibility predicate (scope and
aid-domain grants, in SQL), newest application first; ``status`` narrows it (for example ``[APPLIED,
VERIFYING, REVIEWED]`` for what still waits for a decision). ``awaitingMe`` keeps only what waits for the
caller's own level: the enrolments whose next step towards payment the caller may take, by the Casbin actions
and the approval-level rule that deciding enforces (:func:`aidgraph.core.workflow.enrollment.awaiting`, in SQL):
a township caseworker sees what waits for verification and review, and for approval only where the province
delegates approval to townships; a county officer what waits for approval and activation.
"""

from __future__ import annotations

import strawberry
from sqlalchemy import func, select

from aidgraph.core.access.scope import Scope
from aidgraph.core.storage.models import Enrollment as EnrollmentRow
from aidgraph.core.workflow.enrollment import awaiting
from aidgraph.schema.context import Info
from aidgraph.schema.relay import Connection, Edge, PageInfo, decode_cursor, encode_cursor, page_size
from aidgraph.schema.types import Enrollment, EnrollmentStatus


@strawberry.type
class Query:
    @strawberry.field(description="待审批: enrolments under a region in the caller's scope, newest application "
                                  "first, optionally only those in the given statuses or of one program, or "
                                  "(awaitingMe) only those whose next step towards payment (verification, review, "
                                  "approval, activation) the caller may take: the queue at the caller's level.")
    async def enrollments(self, info: Info, region_code: str, status: list[EnrollmentStatus] | None = None,
                          program_key: str | None = None, awaiting_me: bool = False, first: int | None = None,
                          after: str | None = None) -> Connection[Enrollment]:
        n = page_size(first)
        position = decode_cursor(after, 1)
        after_id = int(position[0]) if position and position[0].isdigit() else None
        where = [info.context.enrollment_visibility,
                 Scope.of([region_code]).predicate(EnrollmentRow.region_code)]
        if status:
            where.append(EnrollmentRow.status.in_([s.value for s in status]))
        if program_key is not None:
            where.append(EnrollmentRow.program_key == program_key)
        if awaiting_me:
            where.append(awaiting(info.context.actor, info.context.policy))
        stmt = select(EnrollmentRow).where(*where)
        if after_id is not None:
            stmt = stmt.where(EnrollmentRow.id < after_id)
        async with info.context.db() as session:
            total = (await session.execute(select(func.count()).select_from(EnrollmentRow).where(*where))).scalar_one()
            rows = list((await session.execute(stmt.order_by(EnrollmentRow.id.desc()).limit(n + 1))).scalars())
        has_next = len(rows) > n
        rows = rows[:n]
        edges = [Edge(cursor=encode_cursor(r.id), node=Enrollment.from_row(r)) for r in rows]
        return Connection(total_count=total, edges=edges,
                          page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))
