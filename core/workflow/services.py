"""Service-type assistance and charity (物质+服务; GD-2021 §2 and §18-21, FJ-2021 "资金+物质+服务", GD-2024, GS-2024).

Why: the sources add services to money: care for disabled or demented elderly (照料护理), rehabilitation (康复训练),
psychological counselling (心理疏导), social-work case management, home-delivered education (送教上门), given by
social-work organisations and purchased service projects (政府购买社会救助服务, FJ-2021: 322 projects); and charity
(慈善救助) linked to the households the rules leave short. None of it existed.

* Providers: a social-work organisation or a purchased project with budget and period, in a region.
* Service orders: for a household or member, a service the province enables (``workflow.service_programs``, a
  dated province parameter: a service not in it is an error), a provider serving the household's region in
  its period; status OPEN -> IN_PROGRESS (first visit) -> DONE, or CANCELLED; each visit counted, in the aid chain.
* Charity: resources (money or a service) of a foundation's project; a match to a household draws money
  resources down by one conditional statement (never below zero), each match in the aid chain.

Permissions: Casbin objects ``service`` and ``charity`` (read, create, update) declared by the core workflow plugin.
"""

from __future__ import annotations

import datetime as dt

from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.graph import aidchain, audit, idempotency
from aidgraph.core.policy.engine import PolicyEngine, default_engine
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found
from aidgraph.core.storage.models import (
    AidChainKind,
    CharityMatch,
    CharityResource,
    Membership,
    Region,
    ServiceOrder,
    ServiceProvider,
)
from aidgraph.core.workflow.casework import household_in_scope, province_params
from aidgraph.core.workflow.defaults import CHARITY_OBJECT, SERVICE_OBJECT
from aidgraph.core.workflow.enrollment import _money

PROVIDER_KINDS = ("SOCIAL_WORK_ORG", "PURCHASED_PROJECT", "OTHER")
ORDER_CLOSE = {"DONE": ("IN_PROGRESS",), "CANCELLED": ("OPEN", "IN_PROGRESS")}


def _require(actor: Actor, action: str, region: str, obj: str, field: str) -> None:
    if not actor.may(action, region, obj):
        raise DomainError.single(ErrorCode.FORBIDDEN, f"needs the {action!r} permission on {obj} in {region}", field)


async def _region(session: AsyncSession, code: str, field: str = "regionCode") -> Region:
    region = await session.get(Region, code) if code else None
    if region is None:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown region {code!r}", field)
    return region


async def add_provider(session: AsyncSession, actor: Actor, *, region_code: str, name: str, kind: str,
                       budget: float | None = None, period_start: dt.date | None = None,
                       period_end: dt.date | None = None) -> ServiceProvider:
    region = await _region(session, region_code)
    _require(actor, "create", region.code, SERVICE_OBJECT, "regionCode")
    if not name or not name.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "the provider needs a name", "name")
    if kind not in PROVIDER_KINDS:
        raise DomainError.single(ErrorCode.VALIDATION, f"kind must be one of {', '.join(PROVIDER_KINDS)}", "kind")
    if period_start and period_end and period_end < period_start:
        raise DomainError.single(ErrorCode.VALIDATION, "the period ends before it starts", "periodEnd")
    value = _money(budget) if budget is not None else None
    if value is not None and value < 0:
        raise DomainError.single(ErrorCode.VALIDATION, "the budget cannot be negative", "budget")
    provider = ServiceProvider(region_code=region.code, name=name.strip(), kind=kind, budget=value,
                               period_start=period_start, period_end=period_end, created_by=actor.username)
    session.add(provider)
    await session.flush()
    audit.record(session, actor, "add_provider", SERVICE_OBJECT, provider.id, region.code,
                 {"name": provider.name, "kind": kind, "budget": str(value) if value is not None else None})
    return provider


async def order_service(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                        household_id: int | None, service: str, provider_id: int | None, person_id: int | None = None,
                        note: str | None = None, idempotency_key: str | None = None,
                        on: dt.date | None = None) -> ServiceOrder:
    on = on or dt.date.today()
    engine = engine or default_engine()
    claim = await idempotency.claim(session, actor, "orderService", idempotency_key, {
        "household_id": household_id, "service": service, "provider_id": provider_id, "person_id": person_id,
        "note": note, "on": on})
    if (replayed := await claim.replayed_row(ServiceOrder, "order_id", "service order")) is not None:
        return replayed
    household = await household_in_scope(session, actor, household_id)
    _require(actor, "create", household.region_code, SERVICE_OBJECT, "householdId")
    params = province_params(engine, household.region_code)
    enabled = params.value("workflow.service_programs", on, region=household.region_code, default=[]) or []
    if service not in enabled:
        raise DomainError.single(ErrorCode.VALIDATION, f"service {service!r} is not enabled in province "
                                                       f"{household.region_code[:2]} (enabled: "
                                                       f"{', '.join(enabled) or 'none'})", "service")
    provider = await session.get(ServiceProvider, provider_id) if provider_id is not None else None
    if provider is None or not household.region_code.startswith(provider.region_code):
        raise DomainError.single(ErrorCode.NOT_FOUND, "no such provider serving the household's region", "providerId")
    if (provider.period_start and on < provider.period_start) or (provider.period_end and on > provider.period_end):
        raise DomainError.single(ErrorCode.VALIDATION, f"the provider's project runs {provider.period_start} to "
                                                       f"{provider.period_end}", "providerId")
    if person_id is not None and (await session.execute(select(Membership.id).where(
            Membership.household_id == household.id, Membership.person_id == person_id,
            Membership.valid_to.is_(None)))).first() is None:
        raise DomainError.single(ErrorCode.VALIDATION, "the person is not a current member of the household",
                                 "personId")
    order = ServiceOrder(household_id=household.id, person_id=person_id, region_code=household.region_code,
                         service=service, provider_id=provider.id, status="OPEN", visits=0,
                         note=(note or "").strip() or None, created_by=actor.username, version=1)
    session.add(order)
    await session.flush()
    aidchain.append(session, household.id, AidChainKind.DECISION,
                    f"服务类救助 service {service} ordered from {provider.name}", program_key=service,
                    ref_type="service_order", ref_id=order.id, actor=actor.username)
    audit.record(session, actor, "order_service", SERVICE_OBJECT, order.id, household.region_code,
                 {"service": service, "provider": provider.id})
    await claim.remember({"order_id": order.id})
    return order


async def _order(session: AsyncSession, actor: Actor, order_id: int | None) -> ServiceOrder:
    order = (await session.execute(select(ServiceOrder).where(
        ServiceOrder.id == order_id, actor.scope("read", SERVICE_OBJECT).predicate(ServiceOrder.region_code))
        .with_for_update())).scalar_one_or_none() if order_id is not None else None
    if order is None:
        raise not_found("service order", "orderId")
    _require(actor, "update", order.region_code, SERVICE_OBJECT, "orderId")
    return order


async def record_service_visit(session: AsyncSession, actor: Actor, *, order_id: int | None, note: str,
                               visited_on: dt.date | None = None) -> ServiceOrder:
    visited_on = visited_on or dt.date.today()
    order = await _order(session, actor, order_id)
    if order.status not in ("OPEN", "IN_PROGRESS"):
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"the order is {order.status}", "orderId")
    if not note or not note.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "say what the visit did", "note")
    if visited_on > dt.date.today():
        raise DomainError.single(ErrorCode.VALIDATION, "the visit date is in the future", "visitedOn")
    order.status, order.visits, order.last_visit_on = "IN_PROGRESS", order.visits + 1, visited_on
    order.version += 1
    aidchain.append(session, order.household_id, AidChainKind.VERIFICATION,
                    f"服务 visit {order.visits} ({order.service}) on {visited_on}: {note.strip()}", program_key=order.service,
                    ref_type="service_order", ref_id=order.id, actor=actor.username)
    audit.record(session, actor, "service_visit", SERVICE_OBJECT, order.id, order.region_code,
                 {"visit": order.visits, "on": visited_on.isoformat()})
    await session.flush()
    return order


async def close_service_order(session: AsyncSession, actor: Actor, *, order_id: int | None, status: str,
                              note: str | None = None) -> ServiceOrder:
    order = await _order(session, actor, order_id)
    if status not in ORDER_CLOSE:
        raise DomainError.single(ErrorCode.VALIDATION, "status must be DONE or CANCELLED", "status")
    if order.status not in ORDER_CLOSE[status]:
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"a {order.status} order cannot become {status}"
                                 + (" (no visit yet)" if status == "DONE" and order.status == "OPEN" else ""), "status")
    previous = order.status
    order.status, order.closed_at = status, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    order.version += 1
    aidchain.append(session, order.household_id, AidChainKind.DECISION,
                    f"服务 {order.service}: {previous} -> {status} after {order.visits} visit(s)"
                    + (f": {note.strip()}" if note and note.strip() else ""), program_key=order.service,
                    ref_type="service_order", ref_id=order.id, actor=actor.username)
    audit.record(session, actor, "close_service", SERVICE_OBJECT, order.id, order.region_code,
                 {"from": previous, "to": status})
    await session.flush()
    return order


async def add_charity_resource(session: AsyncSession, actor: Actor, *, region_code: str, organisation: str,
                               project: str, kind: str, amount: float | None = None) -> CharityResource:
    region = await _region(session, region_code)
    _require(actor, "create", region.code, CHARITY_OBJECT, "regionCode")
    if not organisation or not organisation.strip() or not project or not project.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "name the organisation and the project", "organisation")
    if kind not in ("MONEY", "SERVICE"):
        raise DomainError.single(ErrorCode.VALIDATION, "kind must be MONEY or SERVICE", "kind")
    value = _money(amount) if amount is not None else None
    if kind == "MONEY" and (value is None or value <= 0):
        raise DomainError.single(ErrorCode.VALIDATION, "a money resource needs an amount above 0", "amount")
    resource = CharityResource(region_code=region.code, organisation=organisation.strip(), project=project.strip(),
                               kind=kind, amount=value, remaining=value if kind == "MONEY" else None,
                               created_by=actor.username)
    session.add(resource)
    await session.flush()
    audit.record(session, actor, "add_charity", CHARITY_OBJECT, resource.id, region.code,
                 {"organisation": resource.organisation, "kind": kind, "amount": str(value) if value else None})
    return resource


async def match_charity(session: AsyncSession, actor: Actor, *, resource_id: int | None, household_id: int | None,
                        amount: float | None = None, note: str | None = None) -> CharityMatch:
    household = await household_in_scope(session, actor, household_id)
    _require(actor, "update", household.region_code, CHARITY_OBJECT, "householdId")
    resource = await session.get(CharityResource, resource_id) if resource_id is not None else None
    if resource is None or not household.region_code.startswith(resource.region_code):
        raise DomainError.single(ErrorCode.NOT_FOUND, "no such charity resource for the household's region",
                                 "resourceId")
    value = None
    if resource.kind == "MONEY":
        value = _money(amount) if amount is not None else None
        if value is None or value <= 0:
            raise DomainError.single(ErrorCode.VALIDATION, "a money match needs an amount above 0", "amount")
        drawn: CursorResult[Any] = await session.execute(update(CharityResource).where(  # type: ignore[assignment]
            CharityResource.id == resource.id, CharityResource.remaining >= value).values(
            remaining=CharityResource.remaining - value))
        if drawn.rowcount != 1:
            await session.refresh(resource)
            raise DomainError.single(ErrorCode.VALIDATION, f"{value} yuan is more than the {resource.remaining} yuan "
                                                           "left in the resource", "amount")
    match = CharityMatch(resource_id=resource.id, household_id=household.id, region_code=household.region_code,
                         amount=value, note=(note or "").strip() or None, matched_by=actor.username)
    session.add(match)
    await session.flush()
    what = f"{value} yuan" if value is not None else "a service"
    aidchain.append(session, household.id, AidChainKind.DECISION,
                    f"慈善帮扶 charity: {what} from {resource.organisation} ({resource.project})",
                    ref_type="charity_match", ref_id=match.id, actor=actor.username)
    audit.record(session, actor, "match_charity", CHARITY_OBJECT, match.id, household.region_code,
                 {"resource": resource.id, "amount": str(value) if value is not None else None})
    return match

