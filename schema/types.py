"""The core GraphQL types of the shared graph: regions, persons, households, enrolments, alerts, the aid chain.

Types wrap database rows (``strawberry.Private``) and resolve relations through the request's DataLoaders,
which apply the caller's scope in SQL. Sensitive values (ID numbers, phones, health, disability, income) go
through :mod:`aidgraph.core.graph.privacy`, the one place that decides what a caller may see in full.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

import strawberry
from aidgraph.schema.context import Context, Info

from aidgraph.core.storage import models
from aidgraph.core.graph import privacy
from aidgraph.core.graph.idnumber import age_on
from aidgraph.core.graph.reads import aid_chain_page, region_stats
from aidgraph.schema.relay import Connection, Edge, Node, PageInfo, decode_cursor, encode_cursor, page_size, to_global_id
from aidgraph.core.graph.relations import relationships_of
from aidgraph.core.graph.relations import support_obligors

# The storage floor's enums are the GraphQL enums: strawberry.enum marks each class in place (and returns it),
# so the plain aliases below are both the GraphQL types and, for mypy, the Python types of the fields.
for _enum in (models.RegionLevel, models.Sex, models.EmploymentStatus, models.LabourCapacity, models.StudentStage,
              models.RelationToHead, models.LowIncomeCategory, models.EnrollmentStatus, models.WarningLevel,
              models.AlertStatus, models.AidChainKind, models.EconomicItemKind):
    strawberry.enum(_enum)
RegionLevel = models.RegionLevel
Sex = models.Sex
EmploymentStatus = models.EmploymentStatus
LabourCapacity = models.LabourCapacity
StudentStage = models.StudentStage
RelationToHead = models.RelationToHead
LowIncomeCategory = models.LowIncomeCategory
EnrollmentStatus = models.EnrollmentStatus
WarningLevel = models.WarningLevel
AlertStatus = models.AlertStatus
AidChainKind = models.AidChainKind
EconomicItemKind = models.EconomicItemKind


@strawberry.enum(description="A relationship as seen from the person queried: what the other person is to them.")
class RelationshipKind(enum.Enum):
    SPOUSE = "SPOUSE"
    PARENT = "PARENT"
    CHILD = "CHILD"
    GUARDIAN = "GUARDIAN"
    WARD = "WARD"
    SUPPORT_OBLIGOR = "SUPPORT_OBLIGOR"
    SUPPORTED = "SUPPORTED"


@strawberry.type
class RegionStats:
    households: int
    persons: int
    low_income_persons: int
    open_alerts: int


@strawberry.type(description="An NBS 2023 statistical division.")
class Region:
    code: str
    name: str
    level: RegionLevel
    _parent_code: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: models.Region) -> "Region":
        return cls(code=row.code, name=row.name, level=models.RegionLevel(row.level), _parent_code=row.parent_code)

    @strawberry.field
    async def parent(self, info: Info) -> "Region | None":
        if self._parent_code is None:
            return None
        row = await info.context.regions.load(self._parent_code)
        return Region.from_row(row) if row else None

    @strawberry.field(description="Child divisions that overlap the caller's scope.")
    async def children(self, info: Info) -> list["Region"]:
        return [Region.from_row(r) for r in await info.context.region_children.load(self.code)]

    @strawberry.field(description="Counts within this region and the caller's scope.")
    async def stats(self, info: Info) -> RegionStats:
        async with info.context.db() as session:
            s = await region_stats(session, info.context.scope(), self.code, info.context.programs.category_programs())
        return RegionStats(households=s.households, persons=s.persons, low_income_persons=s.low_income_persons,
                           open_alerts=s.open_alerts)


async def load_region(info: Info, code: str) -> Region | None:
    row = await info.context.regions.load(code)
    return Region.from_row(row) if row else None


@strawberry.type
class Relationship:
    kind: RelationshipKind
    since: dt.date
    until: dt.date | None
    _other_id: strawberry.Private[int]

    @strawberry.field(description="The related person, or null when outside the caller's scope.")
    async def person(self, info: Info) -> Annotated["Person", strawberry.lazy("aidgraph.schema.types")] | None:
        row = await info.context.persons.load(self._other_id)
        return Person.from_row(row) if row else None


@strawberry.type(description="A resident, identified by the GB 11643 resident ID number.")
class Person(Node):
    _row: strawberry.Private[models.Person]

    @classmethod
    def from_row(cls, row: models.Person) -> "Person":
        return cls(id=to_global_id("Person", row.id), _row=row)

    @strawberry.field
    def name(self) -> str:
        return self._row.name

    @strawberry.field(description="Masked as 440106********123X unless the caller may read it in full.")
    def id_number(self, info: Info) -> str:
        return privacy.id_number(info.context, self._row)

    @strawberry.field
    def sex(self) -> Sex:
        return models.Sex(self._row.sex)

    @strawberry.field(description="Null unless the caller may read ID numbers in full: with the masked ID's "
                                  "visible digits a birth date restores the whole number. ``age`` is shown to all.")
    def birth_date(self, info: Info) -> dt.date | None:
        return privacy.birth_date(info.context, self._row)

    @strawberry.field(description="Whole years today.")
    def age(self) -> int:
        return age_on(self._row.birth_date, dt.date.today())

    @strawberry.field(description="Hukou address code from the ID number (may be an abolished code).")
    def hukou_region_code(self) -> str:
        return self._row.hukou_region_code

    @strawberry.field(description="1 (most severe) to 4, or null.")
    def disability_level(self, info: Info) -> int | None:
        return privacy.disability(info.context, self._row, self._row.disability_level, "disability_level")

    @strawberry.field
    def disability_category(self, info: Info) -> str | None:
        return privacy.disability(info.context, self._row, self._row.disability_category, "disability_category")

    @strawberry.field
    def chronic_disease(self, info: Info) -> bool | None:
        return privacy.health(info.context, self._row, self._row.chronic_disease, "chronic_disease")

    @strawberry.field
    def major_disease(self, info: Info) -> bool | None:
        return privacy.health(info.context, self._row, self._row.major_disease, "major_disease")

    @strawberry.field
    def hospitalised(self, info: Info) -> bool | None:
        return privacy.health(info.context, self._row, self._row.hospitalised, "hospitalised")

    @strawberry.field
    def employment_status(self) -> EmploymentStatus | None:
        v = self._row.employment_status
        return models.EmploymentStatus(v) if v else None

    @strawberry.field
    def labour_capacity(self) -> LabourCapacity | None:
        v = self._row.labour_capacity
        return models.LabourCapacity(v) if v else None

    @strawberry.field
    def student_stage(self) -> StudentStage | None:
        v = self._row.student_stage
        return models.StudentStage(v) if v else None

    @strawberry.field(description="Masked as 138****1234 unless the caller may read it in full.")
    def phone(self, info: Info) -> str | None:
        return privacy.phone(info.context, self._row)

    @strawberry.field
    def death_date(self) -> dt.date | None:
        return self._row.death_date

    @strawberry.field(description="Households the person belongs to now (in the caller's scope).")
    async def households(self, info: Info) -> list[Annotated["Household", strawberry.lazy("aidgraph.schema.types")]]:
        return [Household.from_row(h) for h in await info.context.households_of_persons.load(self._row.id)]

    @strawberry.field(description="Current relationships, each seen from this person.")
    async def relationships(self, info: Info) -> list[Relationship]:
        async with info.context.db() as session:
            views = (await relationships_of(session, [self._row.id]))[self._row.id]
        # A relative outside the caller's scope is not shown at all: the kind and date of the edge (a child's
        # birth, a marriage) are facts about that person.
        others = await info.context.persons.load_many([v.other_person_id for v in views])
        return [Relationship(kind=RelationshipKind(v.kind), since=v.since, until=v.until, _other_id=v.other_person_id)
                for v, other in zip(views, others) if other is not None]

    @strawberry.field(description="Persons with a legal duty to support this one (赡养/抚养/扶养义务人), in scope.")
    async def support_obligors(self, info: Info) -> list["Person"]:
        async with info.context.db() as session:
            ids = (await support_obligors(session, [self._row.id]))[self._row.id]
        rows = await info.context.persons.load_many(ids)
        return [Person.from_row(r) for r in rows if r is not None]


@strawberry.type
class Membership:
    relation_to_head: RelationToHead
    since: dt.date
    until: dt.date | None
    person: Person


@strawberry.type(description="Household economic status (家庭经济状况) over the last 12 months.")
class Economics:
    per_capita_monthly_income: float | None = strawberry.field(
        description="Per person per month after the deductions the province's rules allow.")
    monthly_income: float | None = strawberry.field(description="Gross household income per month.")
    monthly_income_deduction: float | None = strawberry.field(
        description="Household income deducted per month under the province's rules (employment costs, ...).")
    total_financial_assets: float | None
    per_capita_financial_assets: float | None
    annual_expenditure: float | None
    assessed_at: dt.datetime | None


@strawberry.type(description="An aid program (救助项目) registered by a plugin.")
class Program:
    key: str
    name: str
    domain: str
    province_code: str | None


def program_of(info: Info, key: str, province_code: str | None) -> Program:
    p = info.context.programs.get(key, province_code)
    return Program(key=p.key, name=p.name, domain=p.domain, province_code=p.province_code)


@strawberry.type(description="An application for, and enrolment in, one program.")
class Enrollment(Node):
    _row: strawberry.Private[models.Enrollment]

    @classmethod
    def from_row(cls, row: models.Enrollment) -> "Enrollment":
        return cls(id=to_global_id("Enrollment", row.id), _row=row)

    @strawberry.field
    def status(self) -> EnrollmentStatus:
        return models.EnrollmentStatus(self._row.status)

    @strawberry.field
    def monthly_amount(self) -> float | None:
        v = self._row.monthly_amount
        return float(v) if v is not None else None

    @strawberry.field
    def start_date(self) -> dt.date | None:
        return self._row.start_date

    @strawberry.field
    def end_date(self) -> dt.date | None:
        return self._row.end_date

    @strawberry.field(description="渐退期: the day the gradual exit ends (status GRADUAL_EXIT until then).")
    def gradual_exit_until(self) -> dt.date | None:
        return self._row.gradual_exit_until

    @strawberry.field(description="复核: when the next periodic review is due (ACTIVE enrolments of reviewed "
                                  "programs).")
    def next_review_date(self) -> dt.date | None:
        return self._row.next_review_date

    @strawberry.field
    def applied_at(self) -> dt.datetime:
        return self._row.applied_at

    @strawberry.field
    def category(self) -> str | None:
        return self._row.category

    @strawberry.field
    def program(self, info: Info) -> Program:
        return program_of(info, self._row.program_key, self._row.province_code)

    @strawberry.field
    async def household(self, info: Info) -> Annotated["Household", strawberry.lazy("aidgraph.schema.types")] | None:
        row = await info.context.households.load(self._row.household_id)
        return Household.from_row(row) if row else None


@strawberry.type(description="A monitoring alert (预警), routed to the household's township.")
class Alert(Node):
    _row: strawberry.Private[models.Alert]

    @classmethod
    def from_row(cls, row: models.Alert) -> "Alert":
        return cls(id=to_global_id("Alert", row.id), _row=row)

    @strawberry.field
    def level(self) -> WarningLevel:
        return models.WarningLevel(self._row.level)

    @strawberry.field
    def score(self) -> float:
        return float(self._row.score)

    @strawberry.field
    def status(self) -> AlertStatus:
        return models.AlertStatus(self._row.status)

    @strawberry.field(description="Keys of the indicators that fired, without those whose name discloses a class "
                                  "the caller may not read (health, disability, income).")
    def indicators(self, info: Info) -> list[str]:
        return privacy.visible_indicators(info.context, self._row.region_code, list(self._row.indicators or []))

    @strawberry.field
    def raised_at(self) -> dt.datetime:
        return self._row.raised_at

    @strawberry.field
    def month(self) -> str:
        return self._row.month

    @strawberry.field(description="The caseworker's note; ID and phone numbers masked without the sensitive right.")
    def disposition(self, info: Info) -> str | None:
        return privacy.free_text(info.context, self._row.region_code, self._row.disposition)

    @strawberry.field
    async def township(self, info: Info) -> Region | None:
        return await load_region(info, self._row.township_code)

    @strawberry.field
    async def household(self, info: Info) -> Annotated["Household", strawberry.lazy("aidgraph.schema.types")] | None:
        row = await info.context.households.load(self._row.household_id)
        return Household.from_row(row) if row else None


def chain_summary(context: Context, summary: str, program_key: str | None, province_code: str | None,
                  region_code: str | None) -> str:
    """An aid-chain entry's summary as the caller may see it (the resolver below and schema/compiled.py)."""
    classes: frozenset[str] = frozenset()
    if program_key:
        try:
            domain = context.programs.get(program_key, province_code).domain
        except Exception:  # an unknown program key says nothing more than its text
            domain = None
        classes = privacy.PROGRAM_DOMAIN_CLASSES.get(domain or "", frozenset())
    return privacy.guarded_text(context, region_code, summary, classes) or ""


@strawberry.type(description="One entry of the household's aid chain (一户一条救助链).")
class AidChainEvent:
    at: dt.datetime
    kind: AidChainKind
    _summary: strawberry.Private[str]
    _program_key: strawberry.Private[str | None]
    _province_code: strawberry.Private[str | None]
    _region_code: strawberry.Private[str | None] = None

    @strawberry.field(description="What happened; '[withheld]' when it names health, disability or income the "
                                  "caller may not read; ID and phone numbers masked without the sensitive right.")
    def summary(self, info: Info) -> str:
        return chain_summary(info.context, self._summary, self._program_key, self._province_code,
                             self._region_code)

    @strawberry.field
    def program(self, info: Info) -> Program | None:
        return program_of(info, self._program_key, self._province_code) if self._program_key else None


@strawberry.type(description="A household (家庭): members through dated memberships, in a township or village.")
class Household(Node):
    _row: strawberry.Private[models.Household]

    @classmethod
    def from_row(cls, row: models.Household) -> "Household":
        return cls(id=to_global_id("Household", row.id), _row=row)

    @strawberry.field
    def household_number(self) -> str:
        return self._row.household_number

    @strawberry.field
    def address(self) -> str | None:
        return self._row.address

    @strawberry.field
    async def region(self, info: Info) -> Region:
        return await load_region(info, self._row.region_code)  # type: ignore[return-value]

    @strawberry.field(description="Current members, head first.")
    async def members(self, info: Info) -> list[Membership]:
        rows = await info.context.members.load(self._row.id)
        return [Membership(relation_to_head=models.RelationToHead(m.relation_to_head), since=m.since, until=m.until,
                           person=Person.from_row(m.person)) for m in rows]

    @strawberry.field
    async def member_count(self, info: Info) -> int:
        return await info.context.member_counts.load(self._row.id)

    @strawberry.field
    async def head(self, info: Info) -> Person | None:
        row = await info.context.heads.load(self._row.id)
        return Person.from_row(row) if row else None

    @strawberry.field(description="Low-income categories that apply now.")
    async def categories(self, info: Info) -> list[LowIncomeCategory]:
        return [models.LowIncomeCategory(c) for c in await info.context.categories.load(self._row.id)]

    @strawberry.field(description="The most severe level among the household's open alerts, or null.")
    async def warning_level(self, info: Info) -> WarningLevel | None:
        v = await info.context.warning_levels.load(self._row.id)
        return models.WarningLevel(v) if v else None

    @strawberry.field
    async def economics(self, info: Info) -> Economics:
        e = await info.context.economics.load(self._row.id)
        if e is None or not privacy.income_visible(info.context, self._row):
            return Economics(per_capita_monthly_income=None, monthly_income=None, monthly_income_deduction=None,
                             total_financial_assets=None,
                             per_capita_financial_assets=None, annual_expenditure=None, assessed_at=None)
        return Economics(per_capita_monthly_income=float(e.per_capita_monthly_income),
                         monthly_income=float(e.monthly_income),
                         monthly_income_deduction=float(e.monthly_deduction),
                         total_financial_assets=float(e.total_financial_assets),
                         per_capita_financial_assets=float(e.per_capita_financial_assets),
                         annual_expenditure=float(e.annual_expenditure), assessed_at=e.assessed_at)

    @strawberry.field
    async def enrollments(self, info: Info) -> list[Enrollment]:
        return [Enrollment.from_row(e) for e in await info.context.enrollments.load(self._row.id)]

    @strawberry.field
    async def alerts(self, info: Info) -> list[Alert]:
        return [Alert.from_row(a) for a in await info.context.alerts.load(self._row.id)]

    @strawberry.field(description="Every application, decision, payment, alert, referral, verification and "
                                  "membership change, newest first.")
    async def aid_chain(self, info: Info, first: int | None = None, after: str | None = None
                        ) -> Connection[AidChainEvent]:
        n = page_size(first)
        position = decode_cursor(after, 2)
        cursor_at = (position[0], int(position[1])) if position else None
        async with info.context.db() as session:
            rows, has_next, total = await aid_chain_page(session, info.context.scope(), self._row.id, n, cursor_at)
            total = total or 0  # (counted: aid_chain_page counts unless told not to)
        province = self._row.region_code[:2]
        edges = [Edge(cursor=encode_cursor(r.at.isoformat(), r.id),
                      node=AidChainEvent(at=r.at, kind=models.AidChainKind(r.kind), _summary=r.summary,
                                         _program_key=r.program_key, _province_code=province,
                                         _region_code=self._row.region_code)) for r in rows]
        return Connection(total_count=total, page_info=PageInfo(has_next_page=has_next,
                                                                end_cursor=edges[-1].cursor if edges else None),
                          edges=edges)
