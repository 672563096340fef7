"""Domain errors with stable codes.

Services raise :class:`DomainError`; the GraphQL layer turns each into an ``errors { field message code }``
entry of the mutation payload (the contract's user errors), so a frontend can show what to fix. Nothing is
written when one is raised: services run inside one transaction owned by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ErrorCode(str, Enum):
    INVALID_ID_NUMBER = "INVALID_ID_NUMBER"
    DUPLICATE_PERSON = "DUPLICATE_PERSON"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    VALIDATION = "VALIDATION"
    SEARCH_UNAVAILABLE = "SEARCH_UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    """The idempotency key was already used with a different request (aidgraph.core.graph.idempotency)."""
    TRANSFER_REQUIRED = "TRANSFER_REQUIRED"
    """The person cannot be registered here as entered: a transfer (迁移) request to the region that holds
    them is the procedure; the answer says neither whether nor where they exist."""
    CONFLICT = "CONFLICT"
    """A concurrent change or a storage failure: nothing was written, the request may be sent again."""
    STORAGE_FULL = "STORAGE_FULL"
    """The database's disk is full: nothing was written; the request may be sent again once an operator has
    freed space (reads keep working meanwhile)."""


SQLITE_FULL = 13
"""SQLite's result code for "database or disk is full"."""
PG_DISK_FULL = "53100"
"""PostgreSQL's SQLSTATE ``disk_full`` ("could not extend file ...: No space left on device")."""


def is_storage_full(error: BaseException) -> bool:
    """Whether a database error (SQLAlchemy's, or the driver's own) says the disk is full, on either engine."""
    orig = getattr(error, "orig", None) or error
    if getattr(orig, "sqlstate", None) == PG_DISK_FULL:
        return True
    if getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL:
        return True
    return "database or disk is full" in str(orig)


@dataclass
class FieldError:
    """One problem with one input field (``field`` is a dotted path such as ``members.1.idNumber``)."""

    field: str | None
    message: str
    code: ErrorCode

    def as_dict(self) -> dict[str, str | None]:
        return {"field": self.field, "message": self.message, "code": self.code.value}


class DomainError(Exception):
    """A request the domain rejects; carries every field error found, not only the first."""

    def __init__(self, errors: list[FieldError] | FieldError):
        self.errors = errors if isinstance(errors, list) else [errors]
        super().__init__("; ".join(f"{e.field or '-'}: {e.message} ({e.code.value})" for e in self.errors))

    @classmethod
    def single(cls, code: ErrorCode, message: str, field: str | None = None) -> "DomainError":
        return cls(FieldError(field, message, code))


def not_found(what: str, field: str | None = None) -> DomainError:
    """The one answer for a missing record and for a record outside the caller's scope."""
    return DomainError.single(ErrorCode.NOT_FOUND, f"{what} not found", field)
