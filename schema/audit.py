"""The audit side of the API: disclosures are written to the audit log, and auditors read it (``auditLog``).

:class:`AuditDisclosures` runs around every operation: once the resolvers are done, the values handed out
in full (ID numbers, phones, health, disability, income: noted by :mod:`aidgraph.core.graph.privacy`) become audit rows,
committed before the response leaves through the database's group-commit writer
(:class:`aidgraph.core.graph.privacy.DisclosureWriter`: the rows of every request waiting at once in one
transaction). If that write fails the response carries no data: nothing is disclosed without its audit record.

``auditLog`` lists the log for callers holding ``audit_read`` on ``audit`` (auditors, province
administrators), limited to rows about records in their regions; each such read is itself logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import cast

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON
from aidgraph.schema.context import Context, Info

from aidgraph.core.graph import audit
from aidgraph.core.graph import privacy
from aidgraph.core.storage.errors import ErrorCode, is_storage_full
from aidgraph.schema.relay import Connection, Edge, PageInfo, decode_cursor, encode_cursor, page_size

log = logging.getLogger(__name__)


class AuditDisclosures(SchemaExtension):
    """Write the request's disclosure audit rows after execution; withhold the data if that fails."""

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        ec = self.execution_context
        context = ec.context
        if context is None or not hasattr(context, "db"):
            return
        error = await finish_disclosures(context, ec.operation_name)
        if error is not None and ec.result is not None:
            ec.result.data = None
            ec.result.errors = [error]


async def finish_disclosures(context: Context, operation_name: str | None) -> GraphQLError | None:
    """Commit the request's disclosure audit rows once its values are built; the error to answer instead of
    the data when they cannot be written (None: written, or nothing was disclosed). Used by the extension
    above and by the compiled contract operations (schema/compiled.py), so both paths audit alike."""
    if not privacy.disclosures(context):
        return None
    # The values are built: give the request's connection back before waiting for the writer, which needs
    # one of its own (twenty requests each holding theirs while they wait would empty the pool).
    await context.close()
    try:
        await privacy.write_disclosures(context, operation_name)
    except Exception as e:  # the cause is logged; the client learns only that nothing is returned (and why, if
        # the disk is full: an operator must act, and a mutation answered this way may have been written: the
        # client resends it with its idempotency key once space is back)
        if is_storage_full(e):
            log.error("audit rows for disclosed values could not be written: the database's disk is full")
            return GraphQLError("the audit log could not be written because the database has no space left: no "
                                "data is returned; send the request again once space has been freed",
                                extensions={"code": "AUDIT_UNAVAILABLE", "reason": ErrorCode.STORAGE_FULL.value})
        log.exception("audit rows for disclosed values could not be written")
        return GraphQLError("the audit log could not be written: no data is returned",
                            extensions={"code": "AUDIT_UNAVAILABLE"})
    return None


@strawberry.type(description="One audit log entry: who did or saw what, on which record, when, from where.")
class AuditEntry:
    id: strawberry.ID
    at: dt.datetime
    actor: str
    action: str
    object_type: str
    object_id: str | None
    region_code: str | None
    remote_addr: str | None
    detail: JSON | None


@strawberry.type
class Query:
    @strawberry.field(description="The audit log, newest first, for records in the caller's audit scope "
                                  "(auditors and province administrators).")
    async def audit_log(self, info: Info, user: str | None = None, since: dt.date | None = None,
                        action: str | None = None, first: int | None = None,
                        after: str | None = None) -> Connection[AuditEntry]:
        n = page_size(first)
        position = decode_cursor(after, 1)
        before_id = int(position[0]) if position and position[0].isdigit() else None
        actor = info.context.actor
        scope = actor.scope("audit_read", "audit")
        async with info.context.db() as session:
            rows, has_next, total = await privacy.audit_page(session, scope, user=user, since=since, action=action,
                                                            first=n, before_id=before_id)
            if not scope.empty:
                audit.record(session, actor, "audit_read", "audit", None, privacy.actor_region(actor),
                             {"user": user, "since": since.isoformat() if since else None, "action": action,
                              "returned": len(rows)})
                await session.commit()
        edges = [Edge(cursor=encode_cursor(r.id), node=AuditEntry(
            id=strawberry.ID(str(r.id)), at=r.at, actor=r.actor, action=r.action, object_type=r.object_type,
            object_id=r.object_id, region_code=r.region_code, remote_addr=r.remote_addr,
            detail=cast(JSON | None, privacy.audit_detail(info.context, r.region_code, r.object_type, r.detail))))
            for r in rows]
        return Connection(total_count=total, edges=edges,
                          page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))
