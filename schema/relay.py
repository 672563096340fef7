"""Relay plumbing: global object ids, the Node interface, connections and cursor paging rules.

Global ids are ``base64("<Type>:<database id>")``. Cursors are opaque base64 strings of keyset positions.
``first`` defaults to 20 and may not exceed 100: more is an error, not a silent cap.
"""

from __future__ import annotations

import base64
import binascii
from typing import Generic, TypeVar

import strawberry
from graphql import GraphQLError

T = TypeVar("T")
DEFAULT_PAGE = 20
MAX_PAGE = 100


MAX_GLOBAL_ID = 128
MAX_DB_ID = 2 ** 63 - 1
"""Database keys are BIGINT: a larger number in an id is not one of ours."""


def to_global_id(type_name: str, db_id: int) -> strawberry.ID:
    return strawberry.ID(base64.b64encode(f"{type_name}:{db_id}".encode()).decode())


def from_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, database id), or None for anything that is not one of our ids (also an oversized id, or a
    number no database key can hold: such ids never reach SQL)."""
    if not isinstance(global_id, str) or len(global_id) > MAX_GLOBAL_ID:
        return None
    try:
        raw = base64.b64decode(global_id.encode(), validate=True).decode()
        type_name, _, value = raw.partition(":")
        if not type_name or not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > MAX_DB_ID:
            return None
        return type_name, int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def db_id(global_id: str | None, expected: str) -> int | None:
    """The database id inside a global id of the expected type; None when it is not one."""
    if global_id is None:
        return None
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] != expected:
        return None
    return parsed[1]


def encode_cursor(*parts: object) -> str:
    return base64.b64encode("|".join(str(p) for p in parts).encode()).decode()


def decode_cursor(cursor: str | None, n: int = 1) -> list[str] | None:
    if cursor is None:
        return None
    try:
        parts = base64.b64decode(cursor.encode(), validate=True).decode().split("|")
    except (binascii.Error, UnicodeDecodeError):
        parts = []
    if len(parts) != n:
        raise GraphQLError("invalid cursor", extensions={"code": "VALIDATION", "field": "after"})
    return parts


def page_size(first: int | None, maximum: int = MAX_PAGE) -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 0 or first > maximum:
        raise GraphQLError(f"first must be between 0 and {maximum}, not {first}",
                           extensions={"code": "VALIDATION", "field": "first"})
    return first


@strawberry.interface(description="An object with a global id.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    total_count: int
    page_info: PageInfo
    edges: list[Edge[T]]
