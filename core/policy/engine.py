"""The policy engine: programs, eligibility and benefits evaluated set-at-a-time (政策找人, policy finds people).

Plugins describe programs (:class:`Program`), eligibility criteria (:class:`EligibilityRule`), benefit
formulas (:class:`BenefitFormula`) and income deductions (:class:`IncomeDeduction`) as *polars expressions*
over a frame with one row per household. The engine builds that frame for a whole region with a handful of
SQL statements (households, current members, support obligors, income and expenditure flows, financial
assets, open enrolments), applies the province's income deductions, and evaluates every enabled program's
rules in one lazy polars plan. One household is the same code path with a one-row frame, so the answer of
``Eligibility`` for a household and of ``EligibilityGaps`` for its region can never disagree.

The household frame (what rules may read):

=============================  =================================================================================
``household_id``               database id
``household_number``           户号
``region_code``                residence region (12-digit village code, or coarser)
``province_code``              first two digits of the region code
``rural``                      the residence is a village committee (村委会/村民委员会) or a 乡/镇: rural standards
``member_count``               current members
``members``                    list of structs, one per member: ``person_id``, ``age``, ``sex``,
                               ``relation_to_head``, ``disability_level`` (1-4 or null), ``disability_category``,
                               ``chronic_disease``, ``major_disease``, ``hospitalised``, ``labour_capacity``,
                               ``employment_status``, ``student_stage``, ``local_hukou`` (ID address code in the
                               province), ``own_monthly_income`` (the member's own income items per month: what a
                               member included alone, 单人保, is assessed on), the rule inputs
                               ``school_hardship_tier``, ``school_year``, ``veteran_student``,
                               ``employment_difficulty_level``, ``business_registered_on``, the person-level
                               ``special_category`` (孤儿, 事实无人抚养儿童, ...) and ``diagnosis`` (两癌), and
                               ``able_obligors``
                               (living support obligors able to work:
                               赡养/抚养/扶养义务人 as :func:`aidgraph.core.graph.relations.support_obligors` defines them,
                               plus the duties implied by the relations to the head inside the household)
``monthly_income``             gross household income per month (12-month window of :mod:`aidgraph.core.graph.economics`)
``monthly_earned_income``      wages and business income per month
``monthly_rigid_expenditure``  medical and education expenditure per month (刚性支出)
``financial_assets``           deposits and securities (latest value of each holding)
``per_capita_financial_assets``
``income_verified``            the economic verification (家庭经济状况核对) recorded income items for the household
                               in the 12-month window (an item of amount 0 records a verified absence of income)
``assets_verified``            it recorded financial-asset items (deposits, securities) up to the evaluation date
``housing_need``               住房困难: the household's housing was found below the local standard
``emergencies``                emergency events (急难) of the last 12 months up to the evaluation date: ``kind``,
                               ``region_code`` (where it happened), ``occurred_on``, ``explanation_due``,
                               ``explained_on``, ``rural`` (the place is a village committee, 乡 or 镇: the standard
                               of the place where it happened is urban or rural by it)
``deceased``                   members who died in the last 12 months up to the evaluation date (``members`` holds
                               the living): ``person_id``, ``death_date``, ``aided`` (the household's programs
                               enrolled on the day of death)
``enrolled``                   program keys with an open enrolment (applied ... gradual exit)
``receiving``                  program keys with an ACTIVE or GRADUAL_EXIT enrolment
``income_deduction``           added by the engine: the province's deductions, per month
``assessed_monthly_income``    added by the engine: monthly_income - income_deduction (never below zero)
``per_capita_income``          added by the engine: assessed income per member per month
=============================  =================================================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import ClauseElement, ColumnElement, Date, Select, and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.graph.economics import WINDOW_MONTHS, _day_number, window_start
from aidgraph.core.storage.validity import alive_on, valid_on
from aidgraph.core.storage.bulk import FrameSchema
from aidgraph.core.storage.models import (
    EARNED_INCOME_KINDS,
    EXPENDITURE_KINDS,
    FINANCIAL_ASSET_KINDS,
    INCOME_KINDS,
    OPEN_ENROLLMENT_STATUSES,
    RECEIVING_ENROLLMENT_STATUSES,
    EconomicItem,
    EmergencyEvent,
    Enrollment,
    Household,
    Membership,
    Person,
    Region,
    Relationship,
    RelationshipKind,
)
from aidgraph.core.policy.parameters import ParameterMissing, ProvinceConfig
from aidgraph.core.policy.provinces import available_provinces, load_province
from aidgraph.core.policy.host import PluginError, ProvincePlugins, build_plugin_manager, flatten
from aidgraph.core.policy.programs import ProgramCatalogue, ProgramInfo
from aidgraph.core.access.scope import Scope

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

    from aidgraph.core.storage.config import Settings

from aidgraph.core.policy.contract import (
    ADULT_AGE,
    BenefitFormula,
    EligibilityRule,
    IncomeDeduction,
    Program,
    RuleContext,
    fmt,
    yuan,
)
from aidgraph.core.storage.config import load_settings

# --- the household frame -----------------------------------------------------------------------------------

MEMBER_SCHEMA: FrameSchema = {
    "person_id": pl.Int64, "age": pl.Int32, "sex": pl.String, "relation_to_head": pl.String,
    "disability_level": pl.Int32, "disability_category": pl.String, "chronic_disease": pl.Boolean,
    "major_disease": pl.Boolean, "hospitalised": pl.Boolean, "labour_capacity": pl.String,
    "employment_status": pl.String, "student_stage": pl.String, "local_hukou": pl.Boolean, "able_obligors": pl.Int32,
    "own_monthly_income": pl.Float64, "school_hardship_tier": pl.Int32, "school_year": pl.Int32,
    "veteran_student": pl.Boolean, "employment_difficulty_level": pl.Int32, "business_registered_on": pl.Date,
    "special_category": pl.String, "diagnosis": pl.String,
}
OPTIONAL_MEMBER_FIELDS = ("own_monthly_income", "school_hardship_tier", "school_year", "veteran_student",
                          "employment_difficulty_level", "business_registered_on", "special_category", "diagnosis")
EMERGENCY_SCHEMA: FrameSchema = {"kind": pl.String, "region_code": pl.String, "occurred_on": pl.Date,
                    "explanation_due": pl.Date, "explained_on": pl.Date, "rural": pl.Boolean}
DECEASED_SCHEMA: FrameSchema = {"person_id": pl.Int64, "death_date": pl.Date, "aided": pl.List(pl.String)}
FRAME_SCHEMA: FrameSchema = {
    "household_id": pl.Int64, "household_number": pl.String, "region_code": pl.String, "province_code": pl.String,
    "rural": pl.Boolean, "member_count": pl.Int32, "members": pl.List(pl.Struct(MEMBER_SCHEMA)),
    "monthly_income": pl.Float64, "monthly_earned_income": pl.Float64, "monthly_rigid_expenditure": pl.Float64,
    "financial_assets": pl.Float64, "per_capita_financial_assets": pl.Float64,
    "enrolled": pl.List(pl.String), "receiving": pl.List(pl.String),
    "income_verified": pl.Boolean, "assets_verified": pl.Boolean, "housing_need": pl.Boolean,
    "emergencies": pl.List(pl.Struct(EMERGENCY_SCHEMA)), "deceased": pl.List(pl.Struct(DECEASED_SCHEMA)),
}
OPTIONAL_COLUMNS = ("income_verified", "assets_verified", "housing_need", "emergencies", "deceased")
"""Columns a frame built by hand (a simulation, a test) may leave out: missing means *not verified* (null), never
a silent yes; :meth:`ProvincePolicy.evaluate_frame` adds them as nulls."""


_BOUND_PARAMETERS_LIMIT = 64
"""Up to this many values, a PostgreSQL frame statement is sent with bound parameters (see :func:`_fetch`)."""


def _values(statement: ClauseElement) -> int:
    """How many values ``statement`` binds (each element of an ``IN`` list counted); 0 when it cannot be cached."""
    key = statement._generate_cache_key()
    if key is None:
        return 0
    return sum(len(b.value) if b.expanding and isinstance(b.value, (list, tuple)) else 1 for b in key.bindparams)


async def _fetch(session: AsyncSession, statement: Select[*tuple[Any, ...]]) -> Sequence[Any]:
    """Rows as plain tuples straight from the driver: a region is hundreds of thousands of rows, and building
    typed ORM rows costs as much as running the query.

    Values are bound as literals (dates, codes, keys), except on PostgreSQL for a statement with few values
    (one household's frame: the detail page, a write's refresh): there they are sent as parameters, so the
    statement's text is the same for every household and the driver prepares it after a few executions
    (psycopg's ``prepare_threshold``): the server then skips planning, which under row-level security, with
    the policies' conditions to plan, is most of such a statement's cost."""
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql" and 0 < _values(statement) <= _BOUND_PARAMETERS_LIMIT:
        # Executed as a statement, not as text: SQLAlchemy then reuses its compiled form (its cache key is the
        # statement's shape), which the detail page otherwise paid for on every request.
        return (await connection.execute(statement)).fetchall()
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return (await connection.exec_driver_sql(sql)).fetchall()


def _dates(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """SQLite hands dates back as ISO text, PostgreSQL as dates: the same polars dates either way."""
    return frame.with_columns([pl.col(c).cast(pl.String).str.to_date() if frame.schema[c] != pl.Date else pl.col(c)
                               for c in columns])


def _rural_flag():
    name = Region.name
    return case((or_(name.like("%村委会"), name.like("%村民委员会"), name.like("%村"), name.like("%乡"),
                     name.like("%镇")), True), else_=False)


async def household_frame(session: AsyncSession, *, on: dt.date, region_code: str | None = None,
                          scope: Scope | None = None, household_ids: list[int] | None = None,
                          id_range: tuple[int, int] | None = None,
                          household_query: Select[Any] | None = None) -> pl.DataFrame:
    """The facts of every household under ``region_code`` (within ``scope``) or of ``household_ids`` (and with
    an id in ``id_range``, both ends included: a chunk of a province; and in ``household_query``, a SELECT of
    household ids such as the stale marks, which every statement reads as a subquery where a long id list
    would be sent as bound values to each of them).

    Six statements whatever the number of households; everything else is columnar.
    """
    conditions: list[ColumnElement[bool]] = []
    if id_range is not None:
        conditions.append(Household.id.between(*id_range))
    if region_code is not None:
        conditions.append(Scope.of([region_code]).predicate(Household.region_code))
    if scope is not None:
        conditions.append(scope.predicate(Household.region_code))
    if household_ids is not None:
        conditions.append(Household.id.in_(household_ids))
    if household_query is not None:
        conditions.append(Household.id.in_(household_query))
    selected = select(Household.id).where(*conditions)

    households = await _fetch(session, select(Household.id, Household.household_number, Household.region_code, _rural_flag(),
                                              Household.housing_need)
        .join(Region, Region.code == Household.region_code).where(*conditions).order_by(Household.id))
    if not households:
        return pl.DataFrame(schema=FRAME_SCHEMA)
    hh = pl.DataFrame(households, schema={"household_id": pl.Int64, "household_number": pl.String,
                                          "region_code": pl.String, "rural": None, "housing_need": None}, orient="row",
                      infer_schema_length=None)
    hh = hh.with_columns(pl.col("rural").cast(pl.Boolean), pl.col("housing_need").cast(pl.Boolean))
    hh = hh.with_columns(province_code=pl.col("region_code").str.slice(0, 2))

    members = await _fetch(session,
        select(Membership.household_id, Person.id, Person.birth_date, Person.sex, Membership.relation_to_head,
               Person.disability_level, Person.disability_category, Person.chronic_disease, Person.major_disease,
               Person.hospitalised, Person.labour_capacity, Person.employment_status, Person.student_stage,
               Person.hukou_region_code, Person.school_hardship_tier, Person.school_year, Person.veteran_student,
               Person.employment_difficulty_level, Person.business_registered_on, Person.special_category,
               Person.diagnosis)
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.household_id.in_(selected), valid_on(Membership, on), alive_on(Person, on)))
    mem = pl.DataFrame(members, orient="row", infer_schema_length=None, schema={
        "household_id": pl.Int64, "person_id": pl.Int64, "birth_date": None, "sex": pl.String,
        "relation_to_head": pl.String, "disability_level": pl.Int32, "disability_category": pl.String,
        "chronic_disease": None, "major_disease": None, "hospitalised": None,
        "labour_capacity": pl.String, "employment_status": pl.String, "student_stage": pl.String,
        "hukou_region_code": pl.String, "school_hardship_tier": pl.Int32, "school_year": pl.Int32,
        "veteran_student": None, "employment_difficulty_level": pl.Int32, "business_registered_on": None,
        "special_category": pl.String, "diagnosis": pl.String})
    mem = _dates(mem, "birth_date", "business_registered_on").with_columns(
        [pl.col(c).cast(pl.Boolean) for c in ("chronic_disease", "major_disease", "hospitalised", "veteran_student")])
    mem = mem.with_columns(age=_age_expr("birth_date", on))

    flows, own = await _flows(session, selected, on)
    pairs = pl.concat([await _able_obligors(session, selected, on), _household_obligors(mem)])
    obligors = pairs.group_by("person_id").agg(able_obligors=pl.col("other").n_unique().cast(pl.Int32))
    mem = mem.join(obligors, on="person_id", how="left").with_columns(pl.col("able_obligors").fill_null(0))
    mem = mem.join(own, on="person_id", how="left").with_columns(pl.col("own_monthly_income").fill_null(0.0))
    mem = mem.join(hh.select("household_id", "province_code"), on="household_id", how="left").with_columns(
        local_hukou=pl.col("hukou_region_code").str.starts_with(pl.col("province_code")))
    grouped = mem.group_by("household_id").agg(
        member_count=pl.len().cast(pl.Int32),
        members=pl.struct([pl.col(c).cast(t) for c, t in MEMBER_SCHEMA.items()]),
    )

    enrolments = await _fetch(session, select(Enrollment.household_id, Enrollment.program_key, Enrollment.status)
                              .where(Enrollment.household_id.in_(selected),
                                     Enrollment.status.in_([s.value for s in OPEN_ENROLLMENT_STATUSES])))
    enr = pl.DataFrame(enrolments, orient="row", schema={"household_id": pl.Int64, "program_key": pl.String,
                                                         "status": pl.String})
    receiving_values = [s.value for s in RECEIVING_ENROLLMENT_STATUSES]
    enr = enr.group_by("household_id").agg(
        enrolled=pl.col("program_key").unique().sort(),
        receiving=pl.col("program_key").filter(pl.col("status").is_in(receiving_values)).unique().sort(),
    )
    emergencies = await _emergencies(session, selected, on)
    deceased = await _deceased(session, selected, on)
    frame = (
        hh.join(grouped, on="household_id", how="left")
        .join(flows, on="household_id", how="left")
        .join(enr, on="household_id", how="left")
        .join(emergencies, on="household_id", how="left")
        .join(deceased, on="household_id", how="left")
        .with_columns(
            pl.col("member_count").fill_null(0),
            pl.col("members").fill_null(pl.lit([], dtype=FRAME_SCHEMA["members"])),
            *[pl.col(c).fill_null(0.0) for c in ("monthly_income", "monthly_earned_income",
                                                 "monthly_rigid_expenditure", "financial_assets")],
            pl.col("enrolled").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("receiving").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("income_verified").fill_null(False),
            pl.col("assets_verified").fill_null(False),
            pl.col("housing_need").fill_null(False),
            pl.col("emergencies").fill_null(pl.lit([], dtype=FRAME_SCHEMA["emergencies"])),
            pl.col("deceased").fill_null(pl.lit([], dtype=FRAME_SCHEMA["deceased"])),
        )
        .with_columns(per_capita_financial_assets=pl.col("financial_assets") / pl.max_horizontal(pl.col("member_count"), 1))
    )
    return frame.select([pl.col(c).cast(t) for c, t in FRAME_SCHEMA.items()]).sort("household_id")


async def _emergencies(session: AsyncSession, selected, on: dt.date) -> pl.DataFrame:
    """Emergency events of the last 12 months up to ``on``, per household (a list of structs)."""
    e = EmergencyEvent
    rows = await _fetch(session, select(e.household_id, e.kind, e.region_code, e.occurred_on, e.explanation_due,
                                        e.explained_on, _rural_flag())
                        .outerjoin(Region, Region.code == e.region_code)
                        .where(e.household_id.in_(selected), e.occurred_on <= on,
                               e.occurred_on >= window_start(on)).order_by(e.household_id, e.occurred_on, e.id))
    frame = pl.DataFrame(rows, orient="row", infer_schema_length=None, schema={
        "household_id": pl.Int64, "kind": pl.String, "region_code": pl.String, "occurred_on": None,
        "explanation_due": None, "explained_on": None, "rural": None})
    frame = _dates(frame, "occurred_on", "explanation_due", "explained_on").with_columns(pl.col("rural").cast(pl.Boolean))
    return frame.group_by("household_id").agg(
        emergencies=pl.struct([pl.col(c).cast(t) for c, t in EMERGENCY_SCHEMA.items()]))


async def _deceased(session: AsyncSession, selected, on: dt.date) -> pl.DataFrame:
    """Members who died in the 12 months up to ``on`` (the frame's ``members`` hold the living only), per
    household, each with the programs the household was enrolled in on the day of death (an enrolment that
    had started and not ended before it: a one-person tekun household's case ends with its member's death, and
    the funeral waiver of GD-2021 §13 still concerns it). Two small statements: the dead, their households' cases."""
    m, p = Membership, Person
    rows = await _fetch(session, select(m.household_id, p.id, p.death_date).join(p, p.id == m.person_id).where(
        m.household_id.in_(selected), p.death_date.is_not(None), p.death_date <= on, p.death_date >= window_start(on),
        m.valid_from <= p.death_date, or_(m.valid_to.is_(None), m.valid_to >= p.death_date)))
    dead = _dates(pl.DataFrame(rows, orient="row", infer_schema_length=None, schema={
        "household_id": pl.Int64, "person_id": pl.Int64, "death_date": None}), "death_date").unique()
    empty = pl.DataFrame(schema={"household_id": pl.Int64, "deceased": FRAME_SCHEMA["deceased"]})
    if dead.is_empty():
        return empty
    e = Enrollment
    cases = await _fetch(session, select(e.household_id, e.program_key, e.start_date, e.end_date).where(
        e.household_id.in_(dead["household_id"].unique().to_list()), e.start_date.is_not(None),
        e.status.in_([s.value for s in RECEIVING_ENROLLMENT_STATUSES] + ["ENDED"])))
    enr = _dates(pl.DataFrame(cases, orient="row", infer_schema_length=None, schema={
        "household_id": pl.Int64, "program_key": pl.String, "start_date": None, "end_date": None}),
        "start_date", "end_date")
    aided = (dead.join(enr, on="household_id", how="inner")
             .filter((pl.col("start_date") <= pl.col("death_date"))
                     & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col("death_date"))))
             .group_by("household_id", "person_id").agg(aided=pl.col("program_key").unique().sort()))
    return (dead.join(aided, on=["household_id", "person_id"], how="left")
            .with_columns(pl.col("aided").fill_null(pl.lit([], dtype=pl.List(pl.String))))
            .sort("household_id", "death_date", "person_id")
            .group_by("household_id", maintain_order=True)
            .agg(deceased=pl.struct([pl.col(c).cast(t) for c, t in DECEASED_SCHEMA.items()])))


def _age_expr(column: str, on: dt.date) -> pl.Expr:
    c = pl.col(column)
    before_birthday = (c.dt.month().cast(pl.Int32) * 100 + c.dt.day().cast(pl.Int32)) > (on.month * 100 + on.day)
    return (on.year - c.dt.year().cast(pl.Int32) - before_birthday.cast(pl.Int32)).cast(pl.Int32)


async def _able_obligors(session: AsyncSession, selected, on: dt.date) -> pl.DataFrame:
    """Living support obligors able to work, per member (same duties as :func:`aidgraph.core.graph.relations.support_obligors`)."""
    member_ids = (select(Membership.person_id).join(Person, Person.id == Membership.person_id)
                  .where(Membership.household_id.in_(selected), valid_on(Membership, on), alive_on(Person, on)))
    r = Relationship
    # (member, other, duty kind): explicit obligors and spouses; parents of a minor; adult children of a parent.
    explicit = select(r.to_person_id.label("pid"), r.from_person_id.label("other"), r.kind.label("kind"),
                      literal("in").label("dir")).where(
        r.to_person_id.in_(member_ids), r.kind.in_([RelationshipKind.SUPPORT_OBLIGOR.value,
                                                    RelationshipKind.SPOUSE.value, RelationshipKind.PARENT.value]),
        valid_on(r, on))
    reverse = select(r.from_person_id.label("pid"), r.to_person_id.label("other"), r.kind.label("kind"),
                     literal("out").label("dir")).where(
        r.from_person_id.in_(member_ids), r.kind.in_([RelationshipKind.SPOUSE.value, RelationshipKind.PARENT.value]),
        valid_on(r, on))
    edges = union_all(explicit, reverse).subquery()
    other = Person.__table__.alias("other")
    me = Person.__table__.alias("me")
    rows = await _fetch(session,
        select(edges.c.pid, edges.c.other, edges.c.kind, edges.c.dir, me.c.birth_date, other.c.birth_date,
               other.c.labour_capacity)
        .join(other, other.c.id == edges.c.other).join(me, me.c.id == edges.c.pid)
        .where(alive_on(other, on)))
    df = pl.DataFrame(rows, orient="row", infer_schema_length=None, schema={
        "person_id": pl.Int64, "other": pl.Int64, "kind": pl.String, "dir": pl.String, "my_birth": None,
        "other_birth": None, "other_capacity": pl.String})
    df = _dates(df, "my_birth", "other_birth")
    duty = (
        ((pl.col("kind") == "SUPPORT_OBLIGOR") & (pl.col("dir") == "in"))
        | (pl.col("kind") == "SPOUSE")
        | ((pl.col("kind") == "PARENT") & (pl.col("dir") == "in") & (_age_expr("my_birth", on) < ADULT_AGE))
        | ((pl.col("kind") == "PARENT") & (pl.col("dir") == "out") & (_age_expr("other_birth", on) >= ADULT_AGE))
    )
    able = pl.col("other_capacity").fill_null("FULL") != "NONE"
    return df.filter(duty & able).select("person_id", "other")


def _household_obligors(mem: pl.DataFrame) -> pl.DataFrame:
    """Support duties implied by the relations to the head inside one household, where no relationship edge
    is recorded: the head and spouse for minor children and grandchildren and for the head's parents; spouses
    for each other; adult children for the head and spouse. Only able adults (labour capacity not NONE)."""
    people = mem.select("household_id", "person_id", "relation_to_head", "age", "labour_capacity")
    others = people.rename({"person_id": "other", "relation_to_head": "other_rel", "age": "other_age",
                            "labour_capacity": "other_capacity"})
    pairs = people.join(others, on="household_id").filter(pl.col("person_id") != pl.col("other"))
    rel, other = pl.col("relation_to_head"), pl.col("other_rel")
    couple = other.is_in(["SELF", "SPOUSE"])
    duty = (
        (rel.is_in(["CHILD", "GRANDCHILD"]) & (pl.col("age") < ADULT_AGE) & couple)
        | (rel.is_in(["PARENT", "GRANDPARENT"]) & couple)
        | ((rel == "SELF") & (other == "SPOUSE")) | ((rel == "SPOUSE") & (other == "SELF"))
        | (rel.is_in(["SELF", "SPOUSE"]) & (other == "CHILD"))
    )
    able = (pl.col("other_capacity").fill_null("FULL") != "NONE") & (pl.col("other_age") >= ADULT_AGE)
    return pairs.filter(duty & able).select("person_id", "other")


async def _flows(session: AsyncSession, selected, on: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Monthly income, earned income, rigid expenditure and financial assets: the rules of aidgraph.core.graph.economics,
    over a household subquery instead of an id list so that a whole region is a few statements. Also whether the
    verification recorded income and financial assets at all (missing data is not zero income), and each
    person's own monthly income (frame ``(person_id, own_monthly_income)``)."""
    start = window_start(on)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    item = EconomicItem
    overlap_start = case((item.period_start > start, item.period_start), else_=literal(start, Date))
    overlap_end = case((item.period_end < on, item.period_end), else_=literal(on, Date))
    period_days = _day_number(item.period_end, dialect) - _day_number(item.period_start, dialect) + 1
    overlap_days = _day_number(overlap_end, dialect) - _day_number(overlap_start, dialect) + 1
    prorated = item.amount * overlap_days / period_days
    in_window = and_(item.period_end >= start, item.period_start <= on)

    flow_kinds = [k.value for k in INCOME_KINDS | EXPENDITURE_KINDS]
    # prorate each item once (the engines do not share the expression between the three sums)
    items = (select(item.household_id.label("hid"), item.person_id.label("pid"), item.kind.label("kind"),
                    prorated.label("amount"))
             .where(item.household_id.in_(selected), in_window, item.kind.in_(flow_kinds)).subquery())
    # One pass over the window's items, summed per household, person and kind; the household totals and each
    # person's own income are then columnar (two statements over the same items cost twice the scan).
    sums = await _fetch(session, select(items.c.hid, items.c.pid, items.c.kind, func.sum(items.c.amount), func.count())
                        .group_by(items.c.hid, items.c.pid, items.c.kind))
    by_kind = pl.DataFrame([(h, p, k, _num(a), int(n)) for h, p, k, a, n in sums], orient="row",
                           schema={"household_id": pl.Int64, "person_id": pl.Int64, "kind": pl.String,
                                   "amount": pl.Float64, "items": pl.Int64})

    def total(kinds) -> pl.Expr:
        return pl.col("amount").filter(pl.col("kind").is_in([k.value for k in kinds])).sum()

    income_values = [k.value for k in INCOME_KINDS]
    flows = by_kind.group_by("household_id").agg(
        annual_income=total(INCOME_KINDS), annual_earned=total(EARNED_INCOME_KINDS),
        annual_expenditure=total(EXPENDITURE_KINDS),
        income_items=pl.col("items").filter(pl.col("kind").is_in(income_values)).sum())
    own = (by_kind.filter(pl.col("person_id").is_not_null() & pl.col("kind").is_in(income_values))
           .group_by("person_id").agg(own_monthly_income=pl.col("amount").sum() / WINDOW_MONTHS))
    latest = (
        select(item.household_id, item.amount,
               func.row_number().over(partition_by=(item.household_id, item.person_id, item.kind, item.source),
                                      order_by=(item.period_end.desc(), item.id.desc())).label("rn"))
        .where(item.household_id.in_(selected), item.kind.in_([k.value for k in FINANCIAL_ASSET_KINDS]),
               item.period_end <= on)
        .subquery()
    )
    asset_rows = await _fetch(session, select(latest.c.household_id, func.sum(latest.c.amount))
                              .where(latest.c.rn == 1).group_by(latest.c.household_id))
    # Decimal amounts kept unrounded (as floats) until the one rounding of a benefit to the fen
    assets = pl.DataFrame([(h, _num(a)) for h, a in asset_rows], orient="row",
                          schema={"household_id": pl.Int64, "financial_assets": pl.Float64})
    household = flows.join(assets, on="household_id", how="full", coalesce=True).select(
        "household_id",
        monthly_income=pl.col("annual_income").fill_null(0) / WINDOW_MONTHS,
        monthly_earned_income=pl.col("annual_earned").fill_null(0) / WINDOW_MONTHS,
        monthly_rigid_expenditure=pl.col("annual_expenditure").fill_null(0) / WINDOW_MONTHS,
        financial_assets=pl.col("financial_assets").fill_null(0.0),
        income_verified=pl.col("income_items").fill_null(0) > 0,
        assets_verified=pl.col("financial_assets").is_not_null(),
    )
    return household, own


def _num(value) -> float:
    return float(value or 0)


def complete_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the :data:`OPTIONAL_COLUMNS` a hand-built frame lacks, as nulls (= not verified, no need recorded, no
    emergency), and the :data:`OPTIONAL_MEMBER_FIELDS` its member structs lack, as nulls (unknown)."""
    missing = [pl.lit(None, dtype=FRAME_SCHEMA[c]).alias(c) for c in OPTIONAL_COLUMNS if c not in frame.columns]
    if missing:
        frame = frame.with_columns(missing)
    members = frame.schema["members"]
    present = {f.name for f in members.inner.fields} if isinstance(members, pl.List) and isinstance(
        members.inner, pl.Struct) else set()
    absent = [f for f in OPTIONAL_MEMBER_FIELDS if f not in present]
    if absent and present:
        frame = frame.with_columns(pl.col("members").list.eval(pl.element().struct.with_fields(
            [pl.lit(None, dtype=MEMBER_SCHEMA[f]).alias(f) for f in absent])))
    return frame


def to_fen(amount: pl.Expr) -> pl.Expr:
    """Round a yuan amount once, at the end, to the fen (分), half away from zero (四舍五入). The intermediate
    values (deductions, per-capita income, gaps) are never rounded; the rounding to 6 decimals first removes
    the binary representation error of a decimal amount (1.005 is stored as 1.00499999...)."""
    return (amount * 100).round(6).round(0, mode="half_away_from_zero") / 100


# --- one province's policy ---------------------------------------------------------------------------------

RESULT_SCHEMA: FrameSchema = {"household_id": pl.Int64, "household_number": pl.String, "region_code": pl.String,
                 "program": pl.String, "eligible": pl.Boolean, "enrolled": pl.Boolean,
                 "reasons": pl.List(pl.String), "monthly_amount": pl.Float64, "one_off_amount": pl.Float64,
                 "benefit_label": pl.String}


class ProvincePolicy:
    """The programs, rules, formulas and deductions of one province, from the plugins it enables."""

    def __init__(self, pm: pluggy.PluginManager, config: ProvinceConfig):
        self.config = config
        self.code = config.code
        self.params = config.params
        self.plugins = ProvincePlugins(pm, config.code, config.enabled)
        self.programs: dict[str, Program] = {}
        owners: dict[str, str] = {}
        for plugin_name, programs in self.plugins.call_each("aidgraph_programs"):
            for program in programs:
                if program.key in self.programs:
                    raise PluginError(f"program {program.key!r} is registered by both {owners[program.key]} and "
                                      f"{plugin_name}")
                self.programs[program.key] = program
                owners[program.key] = plugin_name
        rank = {name: i for i, name in enumerate(config.enabled)}
        self.programs = dict(sorted(self.programs.items(), key=lambda kv: (rank.get(owners[kv[0]], -1), kv[0])))
        self.rules: dict[str, list[EligibilityRule]] = {key: [] for key in self.programs}
        replacements: list[tuple[str, EligibilityRule]] = []
        for plugin_name, rules in self.plugins.call_each("aidgraph_eligibility_rules"):
            for rule in rules:
                if rule.program not in self.programs:
                    continue  # a rule for a program this province does not enable
                if rule.kind not in ("gate", "test", "alternative"):
                    raise PluginError(f"plugin {plugin_name}: rule {rule.key} has unknown kind {rule.kind!r}")
                if rule.replaces:
                    replacements.append((plugin_name, rule))
                elif any(r.key == rule.key for r in self.rules[rule.program]):
                    raise PluginError(f"plugin {plugin_name}: rule {rule.program}.{rule.key} is defined twice")
                else:
                    self.rules[rule.program].append(rule)
        for plugin_name, rule in replacements:
            existing = self.rules[rule.program]
            index = next((i for i, r in enumerate(existing) if r.key == rule.replaces), None)
            if index is None:
                raise PluginError(f"plugin {plugin_name}: rule {rule.key} replaces {rule.program}.{rule.replaces}, "
                                  f"which no enabled plugin defines")
            existing[index] = rule
        self.formulas: dict[str, BenefitFormula | None] = {
            key: self.plugins.hook.aidgraph_benefit_formula(program=program, params=self.params)
            for key, program in self.programs.items()
        }
        self.deductions: list[IncomeDeduction] = flatten(self.plugins.hook.aidgraph_income_deductions(params=self.params))

    def program(self, key: str) -> Program | None:
        return self.programs.get(key)

    def context(self, on: dt.date) -> RuleContext:
        return RuleContext(self.params, on, self.code)

    def assess_income(self, frame: pl.LazyFrame, ctx: RuleContext) -> pl.LazyFrame:
        """Add income_deduction, assessed_monthly_income, per_capita_income and the income reason."""
        built = [(d, *d.build(ctx)) for d in self.deductions]
        total = pl.lit(0.0)
        parts = []
        for _d, amount, reason in built:
            total = total + amount.fill_null(0.0).cast(pl.Float64)
            parts.append(fmt("{} ({} yuan)", reason, yuan(amount.fill_null(0.0))))
        # unrounded: money is rounded once, to the fen, when a benefit is paid (:func:`to_fen`)
        deduction = pl.min_horizontal(total, pl.col("monthly_income")).clip(lower_bound=0.0)
        frame = frame.with_columns(income_deduction=deduction)
        frame = frame.with_columns(assessed_monthly_income=pl.col("monthly_income") - pl.col("income_deduction"))
        frame = frame.with_columns(
            per_capita_income=pl.col("assessed_monthly_income") / pl.max_horizontal(pl.col("member_count"), 1))
        deduction_text = pl.concat_str(parts, separator="; ") if parts else pl.lit("none")
        return frame.with_columns(income_reason=fmt(
            "household income {} yuan/month, deductions {} yuan/month ({}), assessed per-capita income {} "
            "yuan/month over {} member(s)",
            yuan(pl.col("monthly_income")), yuan(pl.col("income_deduction")), deduction_text,
            yuan(pl.col("per_capita_income")), pl.col("member_count")))

    def decide(self, frame: pl.DataFrame, on: dt.date, programs: Iterable[str] | None = None) -> pl.DataFrame:
        """One row per (household, program): eligible, enrolled and amounts, without the reasons (cheap)."""
        frame = complete_frame(frame)
        ctx = self.context(on)
        lf = self.assess_income(frame.lazy(), ctx)
        keys = self._keys(programs)
        if not keys:
            return pl.DataFrame(schema={k: v for k, v in RESULT_SCHEMA.items() if k != "reasons"})
        parts = []
        for key in keys:
            columns = self._program_columns(key, ctx)
            columns.pop("reasons")
            parts.append(lf.select(**columns))
        schema = {k: v for k, v in RESULT_SCHEMA.items() if k != "reasons"}
        return pl.concat(parts, how="vertical").collect().cast(schema)  # type: ignore[arg-type]

    def explain(self, frame: pl.DataFrame, on: dt.date, pairs: pl.DataFrame) -> pl.DataFrame:
        """The reasons of the (household_id, program) ``pairs`` only: building text for every household of a
        region is the expensive part, so a page of gaps explains only its own rows."""
        frame = complete_frame(frame)
        ctx = self.context(on)
        parts = []
        for key in pairs["program"].unique().sort().to_list():
            if key not in self.programs:
                continue
            ids = pairs.filter(pl.col("program") == key)["household_id"]
            subset = frame.lazy().filter(pl.col("household_id").is_in(ids.implode()))
            columns = self._program_columns(key, ctx)
            parts.append(self.assess_income(subset, ctx).select(
                household_id=pl.col("household_id"), program=pl.lit(key), reasons=columns["reasons"]))
        if not parts:
            return pl.DataFrame(schema={"household_id": pl.Int64, "program": pl.String, "reasons": pl.List(pl.String)})
        return pl.concat(parts).collect()

    def _keys(self, programs: Iterable[str] | None) -> list[str]:
        return list(self.programs) if programs is None else [k for k in programs if k in self.programs]

    def _program_columns(self, key: str, ctx: RuleContext) -> dict[str, pl.Expr]:
        gates: list[pl.Expr] = []
        tests: list[pl.Expr] = []
        alternatives: list[pl.Expr] = []
        reasons: list[pl.Expr] = [pl.col("income_reason")]
        for rule in self.rules[key]:
            try:
                passes, reason = rule.build(ctx)
            except ParameterMissing as e:
                passes, reason = pl.lit(False), pl.lit(f"{rule.key}: {e}")
            passes = passes.fill_null(False)
            if rule.kind == "alternative":
                alternatives.append(passes)
                reasons.append(pl.when(passes).then(pl.lit("met (alternative): ") + reason))
            else:
                (gates if rule.kind == "gate" else tests).append(passes)
                reasons.append(pl.when(passes).then(pl.lit("met: ") + reason).otherwise(pl.lit("not met: ") + reason))
        main = pl.all_horizontal(tests) if tests else pl.lit(True)
        if alternatives:
            main = main | pl.any_horizontal(alternatives)
        eligible = (pl.all_horizontal(gates) & main) if gates else main
        formula = self.formulas.get(key)
        amount: pl.Expr = pl.lit(None, dtype=pl.Float64)
        one_off: pl.Expr = pl.lit(None, dtype=pl.Float64)
        label: pl.Expr = pl.lit(None, dtype=pl.String)
        if formula is not None:
            try:
                value, amount_reason = formula.build(ctx)
                if formula.label is not None:
                    label = pl.when(eligible).then(formula.label(ctx))
            except ParameterMissing as e:
                value, amount_reason = pl.lit(None, dtype=pl.Float64), pl.lit(f"benefit: {e}")
            paid = pl.when(eligible).then(to_fen(value.cast(pl.Float64))).otherwise(None)
            if formula.period == "once":
                one_off = paid
            else:
                amount = paid
            reasons.append(pl.when(eligible).then(pl.lit("benefit: ") + amount_reason))
        return {
            "household_id": pl.col("household_id"),
            "household_number": pl.col("household_number"),
            "region_code": pl.col("region_code"),
            "program": pl.lit(key),
            "eligible": eligible,
            "enrolled": pl.col("enrolled").list.contains(key),
            "reasons": pl.concat_list(reasons).list.drop_nulls(),
            "monthly_amount": amount,
            "one_off_amount": one_off,
            "benefit_label": label,
        }

    def evaluate_frame(self, frame: pl.DataFrame, on: dt.date, programs: Iterable[str] | None = None) -> pl.DataFrame:
        """Decisions and reasons for every household of ``frame`` (one household: a one-row frame)."""
        decided = self.decide(frame, on, programs)
        reasons = self.explain(frame, on, decided.select("household_id", "program"))
        return (decided.join(reasons, on=["household_id", "program"], how="left", maintain_order="left")
                .select(list(RESULT_SCHEMA)).cast(RESULT_SCHEMA))  # type: ignore[arg-type]


# --- the engine for a deployment ---------------------------------------------------------------------------


@dataclass
class PolicyEngine:
    """Every configured province's policy, built lazily from one plugin manager and the province folders."""

    settings: Settings | None = None
    pm: Any = None
    _provinces: dict[str, ProvincePolicy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pm is None:
            self.pm = build_plugin_manager(self.settings)

    def province(self, code: str) -> ProvincePolicy:
        if code not in self._provinces:
            self._provinces[code] = ProvincePolicy(self.pm, load_province(code, self.settings, self.pm))
        return self._provinces[code]

    def province_codes(self) -> list[str]:

        return available_provinces(self.settings)

    def catalogue(self) -> ProgramCatalogue:
        """The programs of every configured province, for the API's ``programs`` and enrolment views."""
        catalogue = ProgramCatalogue()
        for code in self.province_codes():
            policy = self.province(code)
            catalogue.enabled[code] = list(policy.programs)
            for key, program in policy.programs.items():
                catalogue.programs.setdefault(key, ProgramInfo(key=key, name=program.name, domain=program.domain,
                                                               category=program.category))
        return catalogue

    async def evaluate(self, session: AsyncSession, *, on: dt.date | None = None, region_code: str | None = None,
                       scope: Scope | None = None, household_ids: list[int] | None = None,
                       programs: Iterable[str] | None = None) -> pl.DataFrame:
        """Eligibility of every enabled program for the households selected (one row per household and program),
        with reasons."""
        on = on or dt.date.today()
        frame = await household_frame(session, on=on, region_code=region_code, scope=scope, household_ids=household_ids)
        results = [policy.evaluate_frame(part, on, programs) for policy, part in self._by_province(frame)]
        if not results:
            return pl.DataFrame(schema=RESULT_SCHEMA)
        return pl.concat(results).sort("household_id", "program")

    async def income_deductions(self, session: AsyncSession, household_ids: list[int], on: dt.date | None = None
                                ) -> dict[int, float]:
        """Monthly household income deductions the province's rules allow (employment costs, FJ 20-30% of
        earnings...), by household: what ``economics.perCapitaMonthlyIncome`` subtracts. Six statements."""
        if not household_ids:
            return {}
        on = on or dt.date.today()
        frame = await household_frame(session, on=on, household_ids=household_ids)
        result: dict[int, float] = {}
        for policy, part in self._by_province(frame):
            assessed = policy.assess_income(part.lazy(), policy.context(on)).select("household_id", "income_deduction")
            result.update(dict(assessed.collect().iter_rows()))
        return result

    def _by_province(self, frame: pl.DataFrame):
        configured = set(self.province_codes())
        for code in sorted(frame["province_code"].unique().to_list()):
            if code in configured:  # a province with no configuration has no programs
                yield self.province(code), frame.filter(pl.col("province_code") == code)

    async def gaps(self, session: AsyncSession, *, region_code: str, scope: Scope | None = None,
                   program: str | None = None, on: dt.date | None = None, offset: int = 0, limit: int | None = None,
                   after: tuple[int, str] | None = None) -> tuple[int, pl.DataFrame]:
        """政策找人: households under ``region_code`` eligible for a program but not enrolled in it, ordered by
        household then program. Returns (total, page): the decisions of the whole region are computed
        set-at-a-time; the reasons only for the page (rows after ``after``, at most ``limit``)."""
        on = on or dt.date.today()
        frame = await household_frame(session, on=on, region_code=region_code, scope=scope)
        pages, total = [], 0
        parts = [(policy, part, policy.decide(part, on, None if program is None else [program])
                  .filter(pl.col("eligible") & ~pl.col("enrolled")))
                 for policy, part in self._by_province(frame)]
        decided = pl.concat([d for _, _, d in parts]) if parts else pl.DataFrame(
            schema={k: v for k, v in RESULT_SCHEMA.items() if k != "reasons"})
        decided = decided.sort("household_id", "program")
        total = decided.height
        if after is not None:
            decided = decided.filter((pl.col("household_id") > after[0])
                                     | ((pl.col("household_id") == after[0]) & (pl.col("program") > after[1])))
        page = decided.slice(offset, limit)
        for policy, part, _ in parts:
            mine = page.filter(pl.col("region_code").str.starts_with(policy.code))
            if mine.height:
                pages.append(mine.join(policy.explain(part, on, mine.select("household_id", "program")),
                                       on=["household_id", "program"], how="left", maintain_order="left"))
        result = pl.concat(pages).sort("household_id", "program") if pages else pl.DataFrame(schema=RESULT_SCHEMA)
        return total, result.select(list(RESULT_SCHEMA)).cast(RESULT_SCHEMA)  # type: ignore[arg-type]


_default_engine: PolicyEngine | None = None


def default_engine(settings: Settings | None = None) -> PolicyEngine:
    """A process-wide engine over the deployment's settings, built on first use (never at import time).

    The server passes its own engine explicitly (``services["policy"]``); this is for callers without one.
    """
    global _default_engine
    if _default_engine is None:
        _default_engine = PolicyEngine(settings or load_settings())
    return _default_engine
