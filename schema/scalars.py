"""Timestamps with their zone in every API answer (issue 12, item 14): the one documented choice is UTC with
an explicit offset (``2026-12-02T08:00:00+00:00``).

The database stores naive UTC (``models.utcnow``); strawberry would print such a value without a zone, which
a client in China Standard Time reads as local time, eight hours off. :data:`DateTime` replaces strawberry's
``DateTime`` scalar for the whole schema (``scalar_overrides`` in schema/build.py): naive values are UTC,
aware ones are converted to UTC. Inputs must carry a zone (``Z`` or an offset); a naive input is refused.
Dates (``Date``) have no zone and are unchanged.
"""

from __future__ import annotations

import datetime as dt

import strawberry


def serialize(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat()


def parse_value(value: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("a DateTime is an ISO 8601 string with its zone")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a DateTime needs its zone (Z or an offset such as +08:00)")
    return parsed.astimezone(dt.timezone.utc)


DateTime = strawberry.scalar(
    dt.datetime, name="DateTime", serialize=serialize, parse_value=parse_value,
    description="A point in time, ISO 8601 with its zone; answers are always UTC (+00:00).")

SCALAR_OVERRIDES = {dt.datetime: DateTime}
