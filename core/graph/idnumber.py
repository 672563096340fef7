"""Resident ID numbers (居民身份证号码) per GB 11643-1999.

18 characters: a 6-digit address code, an 8-digit birth date, a 3-digit sequence (odd for men, even for
women) and an ISO 7064 MOD 11-2 check character (0-9 or X). A lower-case ``x`` is normalised to ``X``.
Address codes are not checked against the region tree: old and abolished codes stay valid on issued cards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import overload

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
EARLIEST_BIRTH = dt.date(1880, 1, 1)


class InvalidIdNumber(ValueError):
    """The ID number is malformed; ``reason`` says which part (length, characters, date, check character)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class ResidentId:
    number: str
    address_code: str
    birth_date: dt.date
    sequence: int

    @property
    def sex(self) -> str:
        return "MALE" if self.sequence % 2 == 1 else "FEMALE"


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS))
    return CHECK_CHARS[total % 11]


def parse(value: str, *, today: dt.date | None = None) -> ResidentId:
    """Validate and normalise an ID number; raise :class:`InvalidIdNumber` naming what is wrong."""
    if not isinstance(value, str):
        raise InvalidIdNumber("ID number must be a string")
    number = value.strip().upper()
    if len(number) != 18:
        raise InvalidIdNumber(f"ID number must have 18 characters, not {len(number)}")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise InvalidIdNumber("ID number must be 17 digits followed by a digit or X")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber(f"ID number has an impossible birth date {number[6:14]}") from None
    today = today or dt.date.today()
    if birth < EARLIEST_BIRTH or birth > today:
        raise InvalidIdNumber(f"ID number has a birth date {birth.isoformat()} outside {EARLIEST_BIRTH.year}..today")
    expected = check_character(number[:17])
    if number[17] != expected:
        raise InvalidIdNumber(f"ID number check character is {number[17]}, expected {expected}")
    return ResidentId(number, number[:6], birth, int(number[14:17]))


def make(address_code: str, birth_date: dt.date, sequence: int) -> str:
    """Build a valid ID number (used by the synthetic seed and the tests)."""
    first17 = f"{address_code}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


@overload
def mask(number: str) -> str: ...
@overload
def mask(number: None) -> None: ...
def mask(number: str | None) -> str | None:
    """The contract's masked form: the first 6 and last 4 characters with ``*`` between."""
    if number is None:
        return None
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


@overload
def mask_phone(phone: str) -> str: ...
@overload
def mask_phone(phone: None) -> None: ...
def mask_phone(phone: str | None) -> str | None:
    """``138****1234``: the first 3 and last 4 digits kept."""
    if phone is None:
        return None
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """Whole years between ``birth_date`` and ``on``."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
