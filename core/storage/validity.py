"""The one rule for dated rows (有效期): a row with ``valid_from`` and ``valid_to`` is in force on a day when
``valid_from <= day`` and the row is open-ended (``valid_to`` null) or ends after that day (``valid_to > day``).

Memberships and relationships are dated this way; every query that asks "who belongs / is related on this
day" uses :func:`valid_on`, so the boundary (start inclusive, end exclusive) is written once. A person's death
ends their being counted on the day of death (:func:`alive_on`), whether or not their membership was closed:
the household register's death record (户籍 feed) sets ``death_date`` and leaves the membership to the
caseworker, and a household's per-capita income must not keep counting a deceased member meanwhile.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, and_, or_


def valid_on(model: Any, on: dt.date | ColumnElement[Any] | None = None) -> ColumnElement[bool]:
    """Rows of ``model`` (a mapped class, or an alias of one, with ``valid_from`` and ``valid_to``) in force on
    ``on``: a date, or a date column of the statement; today when omitted."""
    day = dt.date.today() if on is None else on
    return and_(model.valid_from <= day, or_(model.valid_to.is_(None), model.valid_to > day))


def alive_on(model: Any, on: dt.date | ColumnElement[Any] | None = None) -> ColumnElement[bool]:
    """Persons of ``model`` (Person, or an alias of its table, with ``death_date``) alive on ``on``: no death
    recorded, or a death after that day."""
    day = dt.date.today() if on is None else on
    death = model.death_date if hasattr(model, "death_date") else model.c.death_date
    return or_(death.is_(None), death > day)
