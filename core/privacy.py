"""What a caller may see in full: ID numbers, phones, health, disability and income (敏感信息).

Values are masked or withheld on the server unless the actor holds ``read_sensitive`` on the record's
region (decided once per request through the actor's cached scopes, never per row against Casbin). Every
GraphQL resolver of a sensitive field goes through these functions, so the rule lives in one place.
``context`` is anything with an ``actor`` attribute (the GraphQL request context).
"""

from __future__ import annotations

from typing import Any, TypeVar

from core.idnumber import mask, mask_phone

T = TypeVar("T")


def may_read_sensitive(context: Any, region_code: str | None, object_type: str = "person") -> bool:
    return context.actor.may("read_sensitive", region_code, object_type)


def id_number(context: Any, person) -> str:
    if may_read_sensitive(context, person.region_code):
        return person.id_number
    return mask(person.id_number)


def phone(context: Any, person) -> str | None:
    if person.phone is None or may_read_sensitive(context, person.region_code):
        return person.phone
    return mask_phone(person.phone)


def health(context: Any, person, value: T) -> T | None:
    """Health and disability values: withheld (null) for callers who may not read them."""
    return value if may_read_sensitive(context, person.region_code) else None


def income_visible(context: Any, household) -> bool:
    return may_read_sensitive(context, household.region_code, "household")
