"""GraphQL for relationships across households: the contract's RecordRelationship.

Support obligors (赡养/抚养/扶养义务人), spouses, parents and children, guardians: tekun and dibao depend on
them (an able obligor changes who qualifies), so people must be able to record and end them. The service is
:func:`aidgraph.core.graph.relations.record_relationship`, run in the request's write transaction: all or
nothing, DomainErrors returned as the payload's ``errors``. ``Person.relationships`` and
``Person.supportObligors`` (schema/types.py) read the result from both ends.
"""

from __future__ import annotations

import datetime as dt

import strawberry

from aidgraph.core.storage.errors import not_found
from aidgraph.schema.context import Info
from aidgraph.schema.errors import UserError, run_mutation
from aidgraph.schema.relay import db_id
from aidgraph.schema.types import Person, RelationshipKind
from aidgraph.core.graph.relations import record_relationship


@strawberry.input(description="Record (or, with until, end) a relationship as seen from personId: kind is what "
                              "otherPersonId is to personId; the reverse edge follows.")
class RelationshipInput:
    person_id: strawberry.ID
    other_person_id: strawberry.ID
    kind: RelationshipKind
    since: dt.date | None = None
    until: dt.date | None = strawberry.field(default=None, description="The first day the relationship no "
                                                                       "longer holds.")
    idempotency_key: str | None = None


@strawberry.type
class RelationshipPayload:
    person: Person | None
    errors: list[UserError]


def _person_id(value: str, field: str) -> int:
    key = db_id(value, "Person")
    if key is None:
        raise not_found("person", field)
    return key


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Record or end a relationship across households (support obligors "
                                     "赡养/抚养/扶养义务人, spouse, parent-child, guardian).")
    async def record_relationship(self, info: Info, input: RelationshipInput) -> RelationshipPayload:
        async def work(session):
            return await record_relationship(session, info.context.actor,
                                             person_id=_person_id(input.person_id, "personId"),
                                             other_person_id=_person_id(input.other_person_id, "otherPersonId"),
                                             kind=input.kind.value, since=input.since, until=input.until,
                                             idempotency_key=input.idempotency_key)

        person_id, errors = await run_mutation(info, work)
        if person_id is None:
            return RelationshipPayload(person=None, errors=errors)
        row = await info.context.persons.load(person_id)
        return RelationshipPayload(person=Person.from_row(row) if row else None, errors=errors)
