"""User errors in mutation payloads (``errors { field message code }``), as the contract prescribes.

A service raises :class:`aidgraph.core.storage.errors.DomainError`; :func:`run_mutation` runs the service in one transaction
and turns a DomainError into the payload's ``errors`` with nothing written. Field paths are camelCase
GraphQL input paths, for example ``members.1.idNumber``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from sqlalchemy.exc import DBAPIError

from aidgraph.core.storage.errors import DomainError, ErrorCode as CoreErrorCode, is_storage_full

strawberry.enum(CoreErrorCode, name="ErrorCode")  # marks the core enum in place: the alias is its GraphQL type
ErrorCode = CoreErrorCode
log = logging.getLogger("aidgraph.mutation")


@strawberry.type(description="A problem with the input that the user must fix.")
class UserError:
    field: str | None
    message: str
    code: ErrorCode


def user_errors(error: DomainError) -> list[UserError]:
    return [UserError(field=e.field, message=e.message, code=e.code) for e in error.errors]


async def run_mutation(info, work: Callable[[Any], Awaitable[Any]]) -> tuple[Any, list[UserError]]:
    """Run ``work(session)`` in the request's write transaction: (result, []) or (None, errors), all-or-nothing."""
    try:
        async with info.context.write() as session:
            result = await work(session)
        return result, []
    except DomainError as e:
        return None, user_errors(e)
    except DBAPIError as e:
        if is_storage_full(e):
            # The database's disk is full: the transaction rolled back, nothing was written. Say so (an operator
            # must act; resending now fails again) without the database's text.
            log.error("mutation refused: the database's disk is full (%s); nothing was written",
                      type(e.orig).__name__ if e.orig else type(e).__name__)
            return None, [UserError(field=None, message="the database has no space left: nothing was written; "
                                                        "send it again once space has been freed",
                                    code=CoreErrorCode.STORAGE_FULL)]
        # A unique index or a lock decided against this request (a concurrent change, a deadlock, a full
        # disk): nothing was written (the transaction rolled back). The client gets a code, never the
        # database's text or parameters; the log gets one line.
        log.warning("mutation rolled back by the database: %s (%s)", type(e.orig).__name__ if e.orig else
                    type(e).__name__, getattr(getattr(e.orig, "sqlstate", None), "__str__", lambda: "-")())
        return None, [UserError(field=None, message="the change could not be saved because of a concurrent change; "
                                                    "nothing was written, send it again", code=CoreErrorCode.CONFLICT)]
