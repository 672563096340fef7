"""The data scope: the one predicate that limits every read and every mutation target.

A scope is a set of region-code prefixes at level boundaries (2, 4, 6, 9 or 12 digits), or unrestricted.
It is decided once per request (by Casbin, see :mod:`aidgraph.core.access.authz`) and compiled here into
- a SQLAlchemy predicate on a region-code column: ``code >= prefix AND code < successor(prefix)`` for each
  prefix, an index-friendly range on both SQLite and PostgreSQL (a ``LIKE 'prefix%'`` needs special
  collations or operator classes to use an index);
- an OpenSearch filter on the documents' ancestor-code fields (``terms`` per level), so search totals and facets
  are scoped too.

A record out of scope behaves exactly as a record that does not exist; nothing here raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from sqlalchemy import ColumnElement, and_, false, or_, true

LEVEL_WIDTHS = (2, 4, 6, 9, 12)


def is_level_code(code: str) -> bool:
    return code.isdigit() and len(code) in LEVEL_WIDTHS


def _successor(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (digits only)."""
    digits = list(prefix)
    i = len(digits) - 1
    while i >= 0 and digits[i] == "9":
        i -= 1
    if i < 0:
        return ":"  # ':' sorts after every digit
    return "".join(digits[:i]) + chr(ord(digits[i]) + 1)


def _normalise(prefixes: Iterable[str]) -> tuple[str, ...]:
    """Drop prefixes covered by a shorter one; keep a stable order."""
    unique = sorted(set(prefixes), key=lambda p: (len(p), p))
    kept: list[str] = []
    for p in unique:
        if not is_level_code(p):
            raise ValueError(f"scope prefix {p!r} is not a region code at a level boundary (2/4/6/9/12 digits)")
        if not any(p.startswith(k) for k in kept):
            kept.append(p)
    return tuple(sorted(kept))


_PREDICATES: dict[tuple, tuple] = {}
_PREDICATE_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Scope:
    """Region-code prefixes a request may see; ``unrestricted`` for system jobs and the development user."""

    prefixes: tuple[str, ...] = ()
    unrestricted: bool = False

    @classmethod
    def of(cls, prefixes: Iterable[str]) -> "Scope":
        return cls(_normalise(prefixes))

    @classmethod
    def everything(cls) -> "Scope":
        return cls((), True)

    @classmethod
    def nothing(cls) -> "Scope":
        return cls(())

    @property
    def empty(self) -> bool:
        return not self.unrestricted and not self.prefixes

    def contains(self, code: str | None) -> bool:
        """Reference check used by tests and single-value guards: does ``code`` start with a prefix?"""
        if self.unrestricted:
            return True
        if code is None:
            return False
        return any(code.startswith(p) for p in self.prefixes)

    def narrow(self, code: str) -> "Scope":
        """The part of this scope under region ``code`` (for queries with a region argument)."""
        if self.unrestricted or any(code.startswith(p) for p in self.prefixes):
            return Scope.of([code])
        return Scope.of(p for p in self.prefixes if p.startswith(code))

    def predicate(self, column) -> ColumnElement[bool]:
        """A SQL predicate: ``column`` lies under one of the prefixes."""
        if self.unrestricted:
            return true()
        if not self.prefixes:
            return false()
        # Building the expression costs more than running it on an indexed lookup: every loader of every
        # request asks for the same few (scope, column) pairs, and expressions are immutable, so keep them.
        key = (self.prefixes, id(column))
        cached = _PREDICATES.get(key)
        if cached is not None and cached[0] is column:
            return cached[1]
        ranges = [and_(column >= low, column < high) for low, high in self.ranges()]
        predicate = ranges[0] if len(ranges) == 1 else or_(*ranges)
        if len(_PREDICATES) >= _PREDICATE_CACHE_SIZE:
            _PREDICATES.clear()
        _PREDICATES[key] = (column, predicate)
        return predicate

    def ranges(self) -> list[tuple[str, str]]:
        """Half-open code ranges ``[low, high)`` covering the scope, adjacent siblings merged.

        Prefixes of one width that follow each other (440103, 440104, 440105, 440106) cover exactly the
        range from the first to the successor of the last, so a user holding a role in many neighbouring
        regions costs one range per run of neighbours rather than one per region.
        """
        merged: list[tuple[str, str]] = []
        for p in sorted(self.prefixes):
            high = _successor(p)
            if merged and len(merged[-1][0]) == len(p) and merged[-1][1] == p:
                merged[-1] = (merged[-1][0], high)
            else:
                merged.append((p, high))
        return merged

    def opensearch_filter(self, level_fields: Mapping[int, str]) -> dict:
        """The same scope as an OpenSearch query clause: ``terms`` on the keyword field that holds each document's
        ancestor code at the prefix's level (``level_fields``: code width -> field name, every width of
        :data:`LEVEL_WIDTHS`). A document lies under prefix ``p`` exactly when its field for ``len(p)`` equals
        ``p``; an exact term is what every engine answers from its term dictionary, unlike a ``prefix`` query."""
        if self.unrestricted:
            return {"match_all": {}}
        if not self.prefixes:
            return {"bool": {"must_not": {"match_all": {}}}}
        by_field: dict[str, list[str]] = {}
        for p in self.prefixes:
            by_field.setdefault(level_fields[len(p)], []).append(p)
        clauses = [{"terms": {name: codes}} for name, codes in by_field.items()]
        return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}
