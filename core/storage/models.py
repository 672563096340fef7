"""The shared graph's tables: regions, persons, households and everything the aid domains attach to them.

Every table that later work fills (enrolments, payments, feeds, alerts, the aid chain, the audit log, the
search outbox, users and Casbin rules) is declared here so that the schema grows by migration, not by
rewrite. Records that are scoped by region carry a ``region_code`` (the NBS code of the owning region, a
prefix-comparable string): the scope predicate in :mod:`aidgraph.core.access.scope` filters on it with index-friendly
range comparisons on both SQLite and PostgreSQL.

Enumerations are stored as short strings with CHECK constraints so that both engines reject unknown values.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    LargeBinary,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from aidgraph.core.storage.encrypted import (ID_NUMBER, INDEX_LENGTH, LEAD_ID_NUMBER, PHONE, VOLUNTEER_PHONE,
                                             EncryptedString, id_number_index)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(14, 2)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict: JSON, list: JSON}
    __table__: ClassVar[Table]  # every model here maps one Table (SQLAlchemy types it as a FromClause)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


_utcnow = utcnow


def _enum_check(column: str, enum_cls: type[enum.Enum], name: str | None = None) -> CheckConstraint:
    values = ", ".join(f"'{m.value}'" for m in enum_cls)
    return CheckConstraint(f"{column} IN ({values})", name=name or f"{column}_enum")


# --- enumerations (values are the contract's GraphQL enum values) -------------------------------------


class RegionLevel(str, enum.Enum):
    PROVINCE = "PROVINCE"
    CITY = "CITY"
    COUNTY = "COUNTY"
    TOWNSHIP = "TOWNSHIP"
    VILLAGE = "VILLAGE"


class Sex(str, enum.Enum):
    MALE = "MALE"
    FEMALE = "FEMALE"


class EmploymentStatus(str, enum.Enum):
    EMPLOYED = "EMPLOYED"
    UNEMPLOYED = "UNEMPLOYED"
    NOT_IN_LABOUR_FORCE = "NOT_IN_LABOUR_FORCE"
    STUDENT = "STUDENT"
    RETIRED = "RETIRED"


class LabourCapacity(str, enum.Enum):
    FULL = "FULL"
    PARTIAL = "PARTIAL"
    NONE = "NONE"


class StudentStage(str, enum.Enum):
    """Education stages (GD-2021: pre-school, compulsory, high school incl. vocational, higher).

    Higher education below the postgraduate level is 本专科生, which GS-2024 defines as including 预科生, 高职生
    and 第二学士学位学生: each has its own stage here, so that a caseworker records what the student is, and the
    education plugin groups them (``aidgraph.plugins.education.stages``).
    """

    PRESCHOOL = "PRESCHOOL"            # 学前教育
    COMPULSORY = "COMPULSORY"          # 义务教育
    HIGH_SCHOOL = "HIGH_SCHOOL"        # 普通高中
    VOCATIONAL = "VOCATIONAL"          # 中等职业教育 (secondary vocational)
    PREPARATORY = "PREPARATORY"        # 预科生 (a preparatory year before 本专科)
    JUNIOR_COLLEGE = "JUNIOR_COLLEGE"  # 专科 / 高职生 (higher vocational college)
    UNDERGRADUATE = "UNDERGRADUATE"    # 本科生
    SECOND_DEGREE = "SECOND_DEGREE"    # 第二学士学位学生
    POSTGRADUATE = "POSTGRADUATE"      # 研究生


class RelationToHead(str, enum.Enum):
    SELF = "SELF"
    SPOUSE = "SPOUSE"
    CHILD = "CHILD"
    PARENT = "PARENT"
    GRANDCHILD = "GRANDCHILD"
    GRANDPARENT = "GRANDPARENT"
    SIBLING = "SIBLING"
    OTHER = "OTHER"


class RelationshipKind(str, enum.Enum):
    """A directed, typed edge ``from_person -> to_person``.

    SPOUSE is symmetric (stored once, read both ways). PARENT means from is the parent of to. GUARDIAN means
    from is the guardian (监护人) of to. SUPPORT_OBLIGOR means from has a legal duty to support to
    (赡养/抚养/扶养义务人).
    """

    SPOUSE = "SPOUSE"
    PARENT = "PARENT"
    GUARDIAN = "GUARDIAN"
    SUPPORT_OBLIGOR = "SUPPORT_OBLIGOR"


class EconomicItemKind(str, enum.Enum):
    """Income, expenditure and asset items of the economic verification (家庭经济状况核对)."""

    WAGE = "WAGE"
    BUSINESS = "BUSINESS"
    PROPERTY_INCOME = "PROPERTY_INCOME"
    TRANSFER = "TRANSFER"
    PENSION = "PENSION"
    EXPENDITURE_MEDICAL = "EXPENDITURE_MEDICAL"
    EXPENDITURE_EDUCATION = "EXPENDITURE_EDUCATION"
    DEPOSIT = "DEPOSIT"
    SECURITIES = "SECURITIES"
    REAL_ESTATE = "REAL_ESTATE"
    VEHICLE = "VEHICLE"
    HOUSING_PROVIDENT_FUND = "HOUSING_PROVIDENT_FUND"
    """住房公积金: the balance of a housing provident fund account, as of period_end (GD-2021 §5 lists 住房公积金缴存
    among the registries checked, beside real estate and vehicles): an asset, not a financial one (it is not freely
    withdrawable), and no income (the contributions come out of wages already counted)."""
    COMMERCIAL_INSURANCE = "COMMERCIAL_INSURANCE"
    """商业保险: the cash value of a commercial insurance policy, as of period_end: a financial asset (GD-2021 §5 lists
    it with 银行、证券、互联网金融资产, the financial institutions' information)."""
    INTERNET_FINANCE = "INTERNET_FINANCE"
    """互联网金融资产: money held on an internet-finance platform (wealth-management balances), as of period_end: a
    financial asset like deposits and securities."""


INCOME_KINDS = frozenset(
    {EconomicItemKind.WAGE, EconomicItemKind.BUSINESS, EconomicItemKind.PROPERTY_INCOME,
     EconomicItemKind.TRANSFER, EconomicItemKind.PENSION}
)
EARNED_INCOME_KINDS = frozenset({EconomicItemKind.WAGE, EconomicItemKind.BUSINESS})
EXPENDITURE_KINDS = frozenset({EconomicItemKind.EXPENDITURE_MEDICAL, EconomicItemKind.EXPENDITURE_EDUCATION})
FINANCIAL_ASSET_KINDS = frozenset({EconomicItemKind.DEPOSIT, EconomicItemKind.SECURITIES,
                                   EconomicItemKind.COMMERCIAL_INSURANCE, EconomicItemKind.INTERNET_FINANCE})
ASSET_KINDS = FINANCIAL_ASSET_KINDS | frozenset(
    {EconomicItemKind.REAL_ESTATE, EconomicItemKind.VEHICLE, EconomicItemKind.HOUSING_PROVIDENT_FUND}
)


class LowIncomeCategory(str, enum.Enum):
    """Low-income population categories (低收入人口)."""

    DIBAO = "DIBAO"
    TEKUN = "TEKUN"
    DIBAO_EDGE = "DIBAO_EDGE"
    EXPENDITURE_HARDSHIP = "EXPENDITURE_HARDSHIP"
    RELAPSE_MONITORING = "RELAPSE_MONITORING"
    OTHER = "OTHER"


class EnrollmentStatus(str, enum.Enum):
    APPLIED = "APPLIED"
    VERIFYING = "VERIFYING"
    REVIEWED = "REVIEWED"
    APPROVED = "APPROVED"
    ACTIVE = "ACTIVE"
    GRADUAL_EXIT = "GRADUAL_EXIT"
    ENDED = "ENDED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"


OPEN_ENROLLMENT_STATUSES = frozenset(
    {EnrollmentStatus.APPLIED, EnrollmentStatus.VERIFYING, EnrollmentStatus.REVIEWED, EnrollmentStatus.APPROVED,
     EnrollmentStatus.ACTIVE, EnrollmentStatus.GRADUAL_EXIT}
)
RECEIVING_ENROLLMENT_STATUSES = frozenset({EnrollmentStatus.ACTIVE, EnrollmentStatus.GRADUAL_EXIT})


class WarningLevel(str, enum.Enum):
    RED = "RED"
    ORANGE = "ORANGE"
    YELLOW = "YELLOW"
    BLUE = "BLUE"
    GREEN = "GREEN"


WARNING_SEVERITY: dict[str, int] = {WarningLevel.GREEN.value: 1, WarningLevel.BLUE.value: 2,
                                    WarningLevel.YELLOW.value: 3, WarningLevel.ORANGE.value: 4,
                                    WarningLevel.RED.value: 5}
"""The order of warning levels (预警等级), higher is more severe, whichever subset a province uses: the one
definition the monitoring run, the reads, search and the API sort and compare by."""


class AlertStatus(str, enum.Enum):
    OPEN = "OPEN"
    VERIFYING = "VERIFYING"
    RESOLVED = "RESOLVED"
    DISMISSED = "DISMISSED"


OPEN_ALERT_STATUSES: tuple[str, ...] = (AlertStatus.OPEN.value, AlertStatus.VERIFYING.value)
"""Alerts still to be dealt with (not yet resolved or dismissed)."""

class AidChainKind(str, enum.Enum):
    """Entries of the household's aid chain (一户一条救助链)."""

    APPLICATION = "APPLICATION"
    DECISION = "DECISION"
    PAYMENT = "PAYMENT"
    ALERT = "ALERT"
    REFERRAL = "REFERRAL"
    VERIFICATION = "VERIFICATION"
    MEMBERSHIP = "MEMBERSHIP"


class OutboxEntity(str, enum.Enum):
    PERSON = "PERSON"
    HOUSEHOLD = "HOUSEHOLD"
    ENROLLMENT = "ENROLLMENT"
    ALERT = "ALERT"


# --- regions -------------------------------------------------------------------------------------------


class Region(Base):
    """An NBS 2023 statistical division (province 2, city 4, county 6, township 9, village 12 digits)."""

    __tablename__ = "region"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)
    province_code: Mapped[str] = mapped_column(String(2), index=True)

    __table_args__ = (_enum_check("level", RegionLevel),)


# --- persons and households ------------------------------------------------------------------------------


def _id_number_index_default(context: Any) -> str:
    return id_number_index(context.get_current_parameters()["id_number"])


class Person(Base):
    """A resident, identified once by the GB 11643 resident ID number (居民身份证号码).

    ``region_code`` is the residence region of the person's current household (the record's owner for data
    scope); ``hukou_region_code`` is the address code of the ID number, which need not be a known region.
    """

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    id_number: Mapped[str] = mapped_column(EncryptedString(ID_NUMBER))
    """Encrypted at rest (migration 0012, aidgraph.core.storage.encrypted): read in clear through the ORM, never
    compared in SQL; lookups and uniqueness use ``id_number_index``."""
    id_number_index: Mapped[str] = mapped_column(String(INDEX_LENGTH), unique=True, default=_id_number_index_default)
    """The keyed blind index (HMAC) of the ID number; set with the number by every ORM write
    (:meth:`_index_id_number`) and by a Core ``insert`` that gives the number alone (its default)."""
    name: Mapped[str] = mapped_column(String(50))
    sex: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    hukou_region_code: Mapped[str] = mapped_column(String(6))
    region_code: Mapped[str | None] = mapped_column(String(12))
    disability_category: Mapped[str | None] = mapped_column(String(20))
    disability_level: Mapped[int | None] = mapped_column(SmallInteger)
    chronic_disease: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    major_disease: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    hospitalised: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    labour_capacity: Mapped[str | None] = mapped_column(String(8))
    employment_status: Mapped[str | None] = mapped_column(String(20))
    student_stage: Mapped[str | None] = mapped_column(String(14))
    # rule inputs (migration 0009, issue 11): the school's hardship recognition (家庭经济困难学生认定) as the
    # grant tier, the year of study (1 = freshman, 新生), an enrolled veteran student (退役士兵学生), the
    # certified employment-difficulty level (就业困难人员认定, 分级帮扶) and the registration date of the
    # person's business (创业补贴 after one year of operation)
    school_hardship_tier: Mapped[int | None] = mapped_column(SmallInteger)
    school_year: Mapped[int | None] = mapped_column(SmallInteger)
    veteran_student: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    employment_difficulty_level: Mapped[int | None] = mapped_column(SmallInteger)
    business_registered_on: Mapped[dt.date | None] = mapped_column(Date)
    special_category: Mapped[str | None] = mapped_column(String(32))
    """A person-level aid category recorded by the department that recognises it: 孤儿, 事实无人抚养儿童 (civil
    affairs; GD-2024 medical aid 100%), 农村返贫致贫人口, 过渡期内的已脱贫人口, 稳定脱贫人口 (rural revitalisation;
    GS-2024). Medical aid reads it (migration 0009)."""
    diagnosis: Mapped[str | None] = mapped_column(String(24))
    """A diagnosis recognised by the health department that a program decides on (migration 0022): the 两癌
    (CERVICAL_CANCER 宫颈癌, BREAST_CANCER 乳腺癌) of GD-2021 §13's aid for poor rural women. The kinds a province
    knows are its parameter ``other.two_cancers_diagnoses``."""
    diagnosed_on: Mapped[dt.date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(EncryptedString(PHONE))
    death_date: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, onupdate=_utcnow)

    __table_args__ = (
        _enum_check("sex", Sex),
        CheckConstraint("disability_level IS NULL OR disability_level BETWEEN 1 AND 4", name="disability_level_range"),
        CheckConstraint(
            "labour_capacity IS NULL OR labour_capacity IN ('FULL', 'PARTIAL', 'NONE')", name="labour_capacity_enum"
        ),
        CheckConstraint(
            "employment_status IS NULL OR employment_status IN "
            "('EMPLOYED', 'UNEMPLOYED', 'NOT_IN_LABOUR_FORCE', 'STUDENT', 'RETIRED')",
            name="employment_status_enum",
        ),
    )

    @validates("id_number")
    def _index_id_number(self, _key: str, number: str) -> str:
        # the blind index follows the number on every ORM write, so no writer can leave them apart
        self.id_number_index = id_number_index(number)
        return number


class Household(Base):
    """A household (家庭) living in a region; members come through dated memberships."""

    __tablename__ = "household"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_number: Mapped[str] = mapped_column(String(24), unique=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    address: Mapped[str | None] = mapped_column(String(200))
    housing_need: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    """住房困难 (GD-2021 住房救助): the household's housing was found below the local standard (migration 0009)."""
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, onupdate=_utcnow)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="household", lazy="raise")


class EmergencyEvent(Base):
    """An emergency (急难) that befell a household: its kind, the place (region) and the date it happened.

    GD-2021 §15 / GD-2022: temporary aid follows from the event, given where it happens (由急难发生地实施), with
    no hukou or residence limit; ``region_code`` is the place of the event (the officer there may record it for
    a household registered elsewhere), so it is also the record's owner for data scope. Kinds are the
    province's (``temporary.emergency_kinds``). An aid-first decision (先行救助) leaves an explanation due
    afterwards (事后补充说明情况): ``explanation_due`` and, once given, ``explained_on`` / ``explanation``.
    """

    __tablename__ = "emergency_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(24))
    region_code: Mapped[str] = mapped_column(String(12))
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    explanation_due: Mapped[dt.date | None] = mapped_column(Date)
    explained_on: Mapped[dt.date | None] = mapped_column(Date)
    explanation: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    recorded_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_emergency_event_household_occurred", "household_id", "occurred_on"),
        Index("ix_emergency_event_region_code", "region_code"),
    )


class Membership(Base):
    """A person's membership of a household from ``valid_from`` until ``valid_to`` (exclusive; null: current).

    History is kept, never overwritten. Partial unique indexes enforce one current head per household and
    one current household per person.
    """

    __tablename__ = "membership"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    relation_to_head: Mapped[str] = mapped_column(String(12))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)

    household: Mapped[Household] = relationship(back_populates="memberships", lazy="raise")

    __table_args__ = (
        _enum_check("relation_to_head", RelationToHead),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_period"),
        Index(
            "uq_membership_one_current_head",
            "household_id",
            unique=True,
            sqlite_where=text("relation_to_head = 'SELF' AND valid_to IS NULL"),
            postgresql_where=text("relation_to_head = 'SELF' AND valid_to IS NULL"),
        ),
        Index(
            "uq_membership_one_current_household",
            "person_id",
            unique=True,
            sqlite_where=text("valid_to IS NULL"),
            postgresql_where=text("valid_to IS NULL"),
        ),
    )


class Relationship(Base):
    """A typed, dated edge between two persons, across households (see :class:`RelationshipKind`)."""

    __tablename__ = "relationship"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    from_person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    to_person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)

    __table_args__ = (
        _enum_check("kind", RelationshipKind),
        CheckConstraint("from_person_id <> to_person_id", name="not_self"),
        UniqueConstraint("from_person_id", "to_person_id", "kind", "valid_from", name="uq_relationship_edge"),
        # one current edge of a kind between two persons (RecordRelationship, also under concurrency; 0008)
        Index(
            "uq_relationship_current_edge",
            "from_person_id",
            "to_person_id",
            "kind",
            unique=True,
            sqlite_where=text("valid_to IS NULL"),
            postgresql_where=text("valid_to IS NULL"),
        ),
    )


FED_ITEM_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "postgresql": ("uq_economic_item_row_hash", ("row_hash", "period_start")),
    "sqlite": ("uq_economic_item_person_row_hash", ("period_start", "person_id", "row_hash")),
}
"""The unique index that makes a fed economic item one per feed row, by engine: its name and columns.

A feed row's keyed hash (:func:`aidgraph.core.monitoring.feeds._row_hash_expr`) covers its ID number, so its
person, and its month or valuation date, the item's ``period_start``. Both keys below therefore mean "one item per
feed row"; each engine has the one its import writes fastest:

- PostgreSQL: (``row_hash``, ``period_start``). A partitioned table's unique index must hold the partition key;
  the import looks a batch's hashes up before its COPY (``existing_hashes``), which needs the hash first, and a
  new month's first file is loaded into a table of its own whose indexes are built by sorting (migration 0024).
- SQLite: (``period_start``, ``person_id``, ``row_hash``) (migration 0029). The insert itself finds a row
  already stored (``ON CONFLICT``), and the import writes a batch in household and person order, so this key's
  new entries go at the end of the month's part of the index, like the household and person indexes', instead of
  at random places among the month's keyed hashes. Measured on the 5,000,000-person benchmark province (3,329,230
  income items in 14 committed batches of 250,000, the ``sqlite3`` shell): 50 s with the hash first, 26 s with
  this key. An item whose person was deleted (``person_id`` set null) leaves this index, as its feed record left
  with the person before migration 0027."""

DIALECT_INDEXES: dict[str, str] = {name: dialect for dialect, (name, _) in FED_ITEM_KEYS.items()}
"""Indexes that exist on one engine only (index name: dialect), for the models-match-migrations comparison."""


class EconomicItem(Base):
    """An income, expenditure or asset item of a household or one of its members (家庭经济状况核对).

    Income and expenditure amounts are for the period [period_start, period_end]; asset amounts are values
    as of period_end.

    On PostgreSQL the table is partitioned by month of ``period_start`` (migration 0023,
    :mod:`aidgraph.core.storage.partitions`), and its primary key there is (``id``, ``period_start``), as
    PostgreSQL requires; ``id`` alone stays the ORM's identity (one sequence numbers every partition's rows).
    """

    __tablename__ = "economic_item"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Money)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    recorded_by: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))
    """For an item imported from the income or asset feed: the feed row's keyed hash (the same value
    ``FeedRecord.row_hash`` holds for the other feeds), which makes re-importing the row a no-op. Those feeds' rows
    are stored once, as these items (migration 0027); null for items entered by hand or seeded."""
    source_file: Mapped[str | None] = mapped_column(String(255))
    """The feed file a fed item came from (its last 255 characters); null otherwise."""
    line_number: Mapped[int | None] = mapped_column(Integer)
    """The line of ``source_file`` a fed item came from; null otherwise."""

    __table_args__ = (
        _enum_check("kind", EconomicItemKind),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("period_end >= period_start", name="valid_period"),
        # The monthly monitoring run reads the flows of a few months out of years of items: a covering index
        # by period lets both engines read just that range (see aidgraph.core.monitoring.indicators.IndicatorContext.economic_flows).
        Index("ix_economic_item_period_flows", "period_start", "period_end", "kind", "household_id", "source",
              "amount"),
        # One item per feed row, keyed per engine (FED_ITEM_KEYS); only fed items are in the index.
        *(Index(name, *columns, unique=True, sqlite_where=text("row_hash IS NOT NULL"),
                postgresql_where=text("row_hash IS NOT NULL")).ddl_if(dialect=dialect)
          for dialect, (name, columns) in FED_ITEM_KEYS.items()),
    )


# --- programmes, enrolments and payments ------------------------------------------------------------------


class Enrollment(Base):
    """An application for, and then enrolment in, one program (a case), by a household or one member.

    ``program_key`` names a program registered by a plugin; ``province_code`` is the province whose rules
    apply; ``region_code`` is the household's region at application time (data scope).
    """

    __tablename__ = "enrollment"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    program_key: Mapped[str] = mapped_column(String(40), index=True)
    province_code: Mapped[str] = mapped_column(String(2))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    status: Mapped[str] = mapped_column(String(14))
    category: Mapped[str | None] = mapped_column(String(24))
    monthly_amount: Mapped[Decimal | None] = mapped_column(Money)
    applied_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    gradual_exit_until: Mapped[dt.date | None] = mapped_column(Date)
    next_review_date: Mapped[dt.date | None] = mapped_column(Date)
    transferred_from_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment.id"))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, onupdate=_utcnow)

    __table_args__ = (
        _enum_check("status", EnrollmentStatus),
        Index("ix_enrollment_review_due", "status", "next_review_date"),  # due reviews (复核) by date; 0008
    )


class EnrollmentStep(Base):
    """One transition of an enrolment's state machine: who took which action where, and when."""

    __tablename__ = "enrollment_step"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str | None] = mapped_column(String(14))
    to_status: Mapped[str] = mapped_column(String(14))
    actor: Mapped[str] = mapped_column(String(64))
    actor_region_code: Mapped[str | None] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


REGULAR_INSTALLMENT = "REGULAR"


class Payment(Base):
    """A disbursement (发放) for an enrolment, computed by the program's rules in force for its period.

    ``installment`` says which of the period's payments this is: :data:`REGULAR_INSTALLMENT` for the period's
    regular payment (the monthly run's, or a one-off decision's: one per enrolment and period, which keeps the
    monthly run idempotent), ``STAGE-<stage id>`` for a scheduled temporary-aid stage or follow-up payment
    (分阶段救助 / 跟进救助; the sources do not limit those to one a month, so two stages due in the same month are
    two payments, and a stage can be paid only once).
    """

    __tablename__ = "payment"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    period: Mapped[str] = mapped_column(String(7))
    installment: Mapped[str] = mapped_column(String(32), default=REGULAR_INSTALLMENT,
                                             server_default=REGULAR_INSTALLMENT)
    paid_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        UniqueConstraint("enrollment_id", "period", "installment", name="uq_payment_enrollment_period_installment"),
    )


def stage_installment(stage_id: int) -> str:
    """The ``Payment.installment`` of a temporary-aid stage's payment (one payment per stage)."""
    return f"STAGE-{stage_id}"


# --- monitoring ---------------------------------------------------------------------------------------------


class FeedRecord(Base):
    """One validated row of a department feed (医保, 教育, 残联, 人社, 户籍, economic verification sources).

    ``row_hash`` (the event month, then a keyed hash of the row, which holds an ID number; see
    ``aidgraph.core.monitoring.feeds``) makes re-importing the same row a no-op.

    On PostgreSQL the table is partitioned by month of ``event_date`` (migration 0023,
    :mod:`aidgraph.core.storage.partitions`): its primary key there is (``id``, ``event_date``) and the unique
    ``row_hash`` is unique (``row_hash``, ``event_date``), the same rule (a row's hash covers its event date).
    """

    __tablename__ = "feed_record"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    event_date: Mapped[dt.date] = mapped_column(Date)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)
    source_file: Mapped[str] = mapped_column(String(255))
    line_number: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)

    # The monitoring run reads one kind's records of one month.
    __table_args__ = (Index("ix_feed_record_kind_event_date", "kind", "event_date"),)


class Alert(Base):
    """A monitoring alert (预警) for a household, routed to its township, with its disposition."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    region_code: Mapped[str] = mapped_column(String(12))
    township_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    level: Mapped[str] = mapped_column(String(8))
    score: Mapped[float] = mapped_column(Numeric(8, 2))
    status: Mapped[str] = mapped_column(String(10))
    indicators: Mapped[list[Any]] = mapped_column(JSON)
    month: Mapped[str] = mapped_column(String(7))
    raised_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, onupdate=_utcnow)
    disposition: Mapped[str | None] = mapped_column(String(24))
    disposition_note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    __table_args__ = (
        _enum_check("level", WarningLevel),
        _enum_check("status", AlertStatus),
        Index(
            "uq_alert_one_open_per_household",
            "household_id",
            unique=True,
            sqlite_where=text("status IN ('OPEN', 'VERIFYING')"),
            postgresql_where=text("status IN ('OPEN', 'VERIFYING')"),
        ),
    )


class AidChainEvent(Base):
    """One entry of the household's aid chain (一户一条救助链), written with the change it records."""

    __tablename__ = "aid_chain_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    kind: Mapped[str] = mapped_column(String(14))
    summary: Mapped[str] = mapped_column(Text)
    program_key: Mapped[str | None] = mapped_column(String(40))
    ref_type: Mapped[str | None] = mapped_column(String(24))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        _enum_check("kind", AidChainKind),
        Index("ix_aid_chain_household_at", "household_id", "at", "id"),
    )


# --- audit, outbox, idempotency ----------------------------------------------------------------------------


class AuditLog(Base):
    """Append-only record of every write and every read of unmasked data (who, what, which record, when, where)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(24))
    object_id: Mapped[str | None] = mapped_column(String(40))
    region_code: Mapped[str | None] = mapped_column(String(12))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    """Position in the hash chain (aidgraph.core.graph.audit), assigned when the writing transaction commits."""
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_unsealed", "id", sqlite_where=text("seq IS NULL"), postgresql_where=text("seq IS NULL")),
    )


class AuditChain(Base):
    """The head of the audit log's hash chain, and where it starts after retention pruned its oldest rows.

    The head row is also the chain's lock: a sealing transaction holds it (``SELECT ... FOR UPDATE``) until it
    commits. ``prune_through`` lets the append-only triggers allow retention to delete rows up to that seq.
    """

    __tablename__ = "audit_chain"

    name: Mapped[str] = mapped_column(String(24), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(String(64))
    base_seq: Mapped[int] = mapped_column(BigInteger, default=1)
    base_prev_hash: Mapped[str] = mapped_column(String(64))
    prune_through: Mapped[int] = mapped_column(BigInteger, default=0)


class RetainedRecord(Base):
    """A record kept for storage only (PIPL Art. 47: 停止除存储和采取必要的安全保护措施之外的处理).

    Retention (aidgraph.core.graph.retention) moves here what is past its configured keeping period while a
    statutory period still runs: out of every live table, so no read path or search document can return it,
    and deleted for good when ``hold_until`` passes. ``payload`` holds the rows as stored (the record and its
    dependants, by table).
    """

    __tablename__ = "retained_record"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_class: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(24))
    object_id: Mapped[int] = mapped_column(BigInteger)
    region_code: Mapped[str | None] = mapped_column(String(12))
    ended_on: Mapped[dt.date] = mapped_column(Date)
    hold_until: Mapped[dt.date] = mapped_column(Date, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    moved_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)

    __table_args__ = (UniqueConstraint("object_type", "object_id", name="uq_retained_record_object"),)


class Outbox(Base):
    """A change to a searchable record, written in the same transaction; the indexer drains it in bulk."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(12))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """Passes in which the search engine refused this row's document (0015)."""
    last_error: Mapped[str | None] = mapped_column(Text)
    dead_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    """Set when the document was refused ``outbox_max_attempts`` times: a dead letter, no longer pending, kept
    (never purged) until ``aidgraph index --retry-dead-letters`` queues it again."""

    __table_args__ = (
        _enum_check("entity", OutboxEntity),
        Index(
            "ix_outbox_pending",
            "id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
    )


class IdempotencyRecord(Base):
    """The first answer to a mutation sent with an idempotency key, replayed for repeats by the same user."""

    __tablename__ = "idempotency_record"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(100))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    """HMAC-SHA256 of the request's canonical payload under the deployment's request-hash key (0004; keyed since
    0020): the same key with another payload is refused."""

    __table_args__ = (UniqueConstraint("actor", "operation", "key", name="uq_idempotency_actor_operation_key"),)


class HouseholdCounter(Base):
    """The last household number handed out under a region: one locked row per region, so concurrent
    registrations in one village never collide (migration 0004)."""

    __tablename__ = "household_counter"

    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)


# --- users and authorization ---------------------------------------------------------------------------------


class AppUser(Base):
    """A platform user; roles and regions live in Casbin rules (``casbin_rule``)."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    """The user as a resident, when known: conflict-of-interest checks (关系保/人情保, GD-2022) need it."""
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """argon2id hash (:mod:`aidgraph.core.access.passwords`); null: the user cannot log in with a password."""
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class LoginFailure(Base):
    """A failed password login (登录失败): counted per username and per address to rate-limit guessing."""

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))


Index("ix_login_failure_username_at", LoginFailure.username, LoginFailure.at)
Index("ix_login_failure_address_at", LoginFailure.address, LoginFailure.at)


class RevokedToken(Base):
    """A token ended before its expiry (logout, 退出登录); kept until it would have expired anyway."""

    __tablename__ = "revoked_token"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class CasbinRule(Base):
    """Casbin policy lines (the layout of casbin-sqlalchemy-adapter), created by migration."""

    __tablename__ = "casbin_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ptype: Mapped[str] = mapped_column(String(255))
    v0: Mapped[str | None] = mapped_column(String(255))
    v1: Mapped[str | None] = mapped_column(String(255))
    v2: Mapped[str | None] = mapped_column(String(255))
    v3: Mapped[str | None] = mapped_column(String(255))
    v4: Mapped[str | None] = mapped_column(String(255))
    v5: Mapped[str | None] = mapped_column(String(255))

    def __str__(self) -> str:
        # casbin-sqlalchemy-adapter loads each row through str(row) as a CSV policy line.
        values = [self.ptype]
        for v in (self.v0, self.v1, self.v2, self.v3, self.v4, self.v5):
            if v is None:
                break
            values.append(v)
        return ", ".join(values)


# Composite indexes used by list and scope queries.
Index("ix_household_region_id", Household.region_code, Household.id)
Index("ix_person_region_id", Person.region_code, Person.id)
Index("ix_alert_region_status_level", Alert.region_code, Alert.status, Alert.level)
Index("ix_enrollment_household_program", Enrollment.household_id, Enrollment.program_key, Enrollment.status)
Index("ix_membership_household_current", Membership.household_id, Membership.valid_to)


class SimulationScenario(Base):
    """A saved policy simulation (政策模拟方案): the parameter changes asked, by whom and when, and the summary of
    the result it gave, so the same scenario can be run again on later data and the answers compared (0007)."""

    __tablename__ = "simulation_scenario"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    province_code: Mapped[str] = mapped_column(String(2))
    region_code: Mapped[str] = mapped_column(String(12))
    as_of: Mapped[dt.date] = mapped_column(Date)
    changes: Mapped[list[Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        # Unique per region, not per province: a name taken in a region outside a planner's scope must not be
        # refused (that would tell the planner the other region's scenario exists) (0021).
        UniqueConstraint("province_code", "region_code", "name", name="uq_simulation_scenario_region_name"),)


# --- casework (issue 13): referrals, leads, visits, temporary-aid mechanics ----------------------------------


class ReferralStatus(str, enum.Enum):
    """转办 status: sent to a department, accepted by it, done, or returned (not its matter / incomplete)."""

    SENT = "SENT"
    ACCEPTED = "ACCEPTED"
    DONE = "DONE"
    RETURNED = "RETURNED"


OPEN_REFERRAL_STATUSES = frozenset({ReferralStatus.SENT, ReferralStatus.ACCEPTED})


class LeadStatus(str, enum.Enum):
    OPEN = "OPEN"
    ALERTED = "ALERTED"
    CLOSED = "CLOSED"


class LeadChannel(str, enum.Enum):
    """How a person in difficulty came to notice (主动发现: 协理员, 走访, 12345 / 12349 热线, 邻里, 本人)."""

    VILLAGE_ASSISTANT = "VILLAGE_ASSISTANT"
    VISIT = "VISIT"
    HOTLINE_12345 = "HOTLINE_12345"
    HOTLINE_12349 = "HOTLINE_12349"
    NEIGHBOUR = "NEIGHBOUR"
    SELF = "SELF"
    OTHER = "OTHER"


class Referral(Base):
    """A case referred (分办转办, 一门受理、协同办理; GD-2021) from the accepting office or a caseworker to a receiving
    department, with the documents the applicant was told once (一次性告知) and a due date (限时办理).

    ``region_code`` is the household's region (data scope); ``from_region_code`` the accepting office's region,
    which may lie elsewhere (异地受理). ``source`` says what created it (a caseworker, an alert disposition, an
    enrolment event such as the employment plugin's automatic referral, an application accepted away).
    """

    __tablename__ = "referral"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    region_code: Mapped[str] = mapped_column(String(12))
    from_region_code: Mapped[str | None] = mapped_column(String(12))
    department: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    documents: Mapped[list[Any]] = mapped_column(JSON)
    due_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))
    answer: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(12))
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    sent_by: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    answered_by: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    shared_verification_id: Mapped[int | None] = mapped_column(BigInteger)
    """An economic verification shared with the department (认定结果共享; see :class:`EconomicVerification`)."""
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    __table_args__ = (
        _enum_check("status", ReferralStatus),
        CheckConstraint("source IN ('CASEWORKER', 'ALERT', 'ENROLLMENT', 'APPLICATION')", name="source_enum"),
        Index("ix_referral_region_status_due", "region_code", "status", "due_date"),
    )


class Lead(Base):
    """A report of a person in difficulty (主动发现+报告; GD-2021 §22, FJ-2021): a person or an address, what was
    seen, by whom and through which channel; routed to the township, then joined to an open alert, raised as
    an alert, or closed with a reason."""

    __tablename__ = "lead"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12))
    township_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id", ondelete="SET NULL"))
    id_number: Mapped[str | None] = mapped_column(EncryptedString(LEAD_ID_NUMBER))
    name: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    reported_by: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(8))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id", ondelete="SET NULL"))
    close_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    __table_args__ = (
        _enum_check("status", LeadStatus),
        _enum_check("channel", LeadChannel),
        CheckConstraint("person_id IS NOT NULL OR id_number IS NOT NULL OR address IS NOT NULL",
                        name="person_or_address"),
        Index("ix_lead_region_status", "region_code", "status"),
    )


class Visit(Base):
    """A regular visit (巡访, 定期走访; GD-2021 §3, GD-2022 §8, FJ-2021) to a household, with its findings."""

    __tablename__ = "visit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(String(12))
    visited_on: Mapped[dt.date] = mapped_column(Date)
    visitor: Mapped[str] = mapped_column(String(64))
    findings: Mapped[str] = mapped_column(Text)
    needs_help: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


class ReserveFund(Base):
    """A township's temporary-aid reserve fund (临时救助备用金; GD-2021 §15, GD-2022): its balance, never negative
    (the CHECK makes two concurrent draws unable to overspend it on either engine)."""

    __tablename__ = "reserve_fund"

    township_code: Mapped[str] = mapped_column(ForeignKey("region.code"), primary_key=True)
    balance: Mapped[Decimal] = mapped_column(Money)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, onupdate=_utcnow)

    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)


class ReserveFundEntry(Base):
    """One line of a reserve fund's ledger: a replenishment or a draw for an aid-first payment."""

    __tablename__ = "reserve_fund_entry"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    township_code: Mapped[str] = mapped_column(ForeignKey("reserve_fund.township_code"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Money)
    balance_after: Mapped[Decimal] = mapped_column(Money)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)

    __table_args__ = (
        CheckConstraint("kind IN ('REPLENISH', 'DRAW')", name="kind_enum"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("balance_after >= 0", name="balance_not_negative"),
    )


class TemporaryAidApproval(Base):
    """The one approval of a temporary-aid case (一次审批) with its total and level: township up to the configured
    amount, county above, county case conference (一事一议) beyond the rules' amount (分级审批; GD-2021, GD-2022)."""

    __tablename__ = "temporary_aid_approval"

    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"), primary_key=True)
    approved_total: Mapped[Decimal] = mapped_column(Money)
    level: Mapped[str] = mapped_column(String(16))
    approved_by: Mapped[str] = mapped_column(String(64))
    approved_on: Mapped[dt.date] = mapped_column(Date)
    basis: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    __table_args__ = (
        CheckConstraint("level IN ('TOWNSHIP', 'COUNTY', 'CASE_CONFERENCE')", name="level_enum"),
        CheckConstraint("approved_total > 0", name="total_positive"),
    )


class TemporaryAidStage(Base):
    """A scheduled payment of an approved temporary-aid case: a stage (分阶段救助) or follow-up aid (跟进救助).
    The stages of a case never add up to more than its approved total."""

    __tablename__ = "temporary_aid_stage"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("temporary_aid_approval.enrollment_id", ondelete="CASCADE"),
                                               index=True)
    kind: Mapped[str] = mapped_column(String(10))
    due_date: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(10))
    from_reserve: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id", ondelete="SET NULL"))
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        CheckConstraint("kind IN ('STAGE', 'FOLLOW_UP')", name="kind_enum"),
        CheckConstraint("status IN ('SCHEDULED', 'PAID')", name="status_enum"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


class RecoveryOrder(Base):
    """An order to recover aid obtained by fraud (追回骗取的社会救助资金; GD-2021 强化监督检查), against an enrolment's
    payments: never more than was paid, recorded as recovered in instalments until RECOVERED, or CANCELLED."""

    __tablename__ = "recovery_order"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    region_code: Mapped[str] = mapped_column(String(12))
    amount: Mapped[Decimal] = mapped_column(Money)
    recovered: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"), server_default=text("0"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    __table_args__ = (
        CheckConstraint("status IN ('ISSUED', 'PARTIAL', 'RECOVERED', 'CANCELLED')", name="status_enum"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("recovered >= 0 AND recovered <= amount", name="recovered_within_amount"),
    )


class VerificationAuthorisation(Base):
    """The signed authorisation of the household's economic verification (家庭经济状况核对授权委托书; GD-2021: "提交
    户口簿（身份证）和…授权委托书'一证一书'即可申请"): who signed, when, for which members, the scanned document."""

    __tablename__ = "verification_consent"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment.id", ondelete="SET NULL"))
    signed_by_person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    person_ids: Mapped[list[Any]] = mapped_column(JSON)
    signed_on: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    document_ref: Mapped[str] = mapped_column(String(200))
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)

    __table_args__ = (CheckConstraint("valid_until >= signed_on", name="valid_period"),)


class EconomicVerification(Base):
    """One economic verification (家庭经济状况核对) of a household, run under an authorisation; its result may be
    shared with another department's referral (认定结果共享使用, GD-2021 §5)."""

    __tablename__ = "economic_verification"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    authorisation_id: Mapped[int] = mapped_column(ForeignKey("verification_consent.id", ondelete="CASCADE"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    verified_by: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


class ServiceProvider(Base):
    """A provider of service-type assistance (服务类社会救助; GD-2021 §19-21, FJ-2021): a social-work organisation
    or a purchased service project (政府购买社会救助服务) with its budget and period."""

    __tablename__ = "service_provider"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    budget: Mapped[Decimal | None] = mapped_column(Money)
    period_start: Mapped[dt.date | None] = mapped_column(Date)
    period_end: Mapped[dt.date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)

    __table_args__ = (
        CheckConstraint("kind IN ('SOCIAL_WORK_ORG', 'PURCHASED_PROJECT', 'OTHER')", name="kind_enum"),
        CheckConstraint("period_end IS NULL OR period_start IS NULL OR period_end >= period_start",
                        name="valid_period"),
    )


class ServiceOrder(Base):
    """A service order (照料护理, 康复训练, 心理疏导, 个案管理, 送教上门 ...) for a household or one member, with a
    provider, a status and the visits made."""

    __tablename__ = "service_order"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    region_code: Mapped[str] = mapped_column(String(12))
    service: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_provider.id"))
    status: Mapped[str] = mapped_column(String(12))
    visits: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_visit_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    __table_args__ = (
        CheckConstraint("status IN ('OPEN', 'IN_PROGRESS', 'DONE', 'CANCELLED')", name="status_enum"),
        Index("ix_service_order_region_status", "region_code", "status"),
    )


class CharityResource(Base):
    """A charity resource (慈善救助; GD-2021 §18, FJ-2021 "福建慈善手拉手"): a foundation's project giving money
    or a service, linked to households the rules leave short."""

    __tablename__ = "charity_resource"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12))
    organisation: Mapped[str] = mapped_column(String(200))
    project: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    remaining: Mapped[Decimal | None] = mapped_column(Money)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)

    __table_args__ = (
        CheckConstraint("kind IN ('MONEY', 'SERVICE')", name="kind_enum"),
        CheckConstraint("remaining IS NULL OR remaining >= 0", name="remaining_not_negative"),
    )


class CharityMatch(Base):
    """A charity resource matched to a household (in its aid chain)."""

    __tablename__ = "charity_match"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("charity_resource.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(String(12))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    note: Mapped[str | None] = mapped_column(Text)
    matched_by: Mapped[str] = mapped_column(String(64))
    matched_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


# --- volunteers (志愿服务; GD-2022 §13) --------------------------------------------------------------------------


class VolunteerTask(str, enum.Enum):
    """What a volunteer assists with, as GD-2022 §13 lists it (a closed set: the source's words, nothing added).

    协助开展 (assisting the caseworkers): 对象排查 LEAD_SCREENING, 受理评估 INTAKE_ASSESSMENT, 满意度调查
    SATISFACTION_SURVEY, 家庭经济状况调查评估 ECONOMIC_ASSESSMENT, 建档访视 CASE_FILE_VISIT, 政策宣传
    POLICY_OUTREACH; 提供服务 (services to recipients): 照料护理 CARE, 康复训练 REHABILITATION."""

    LEAD_SCREENING = "LEAD_SCREENING"
    INTAKE_ASSESSMENT = "INTAKE_ASSESSMENT"
    SATISFACTION_SURVEY = "SATISFACTION_SURVEY"
    ECONOMIC_ASSESSMENT = "ECONOMIC_ASSESSMENT"
    CASE_FILE_VISIT = "CASE_FILE_VISIT"
    POLICY_OUTREACH = "POLICY_OUTREACH"
    CARE = "CARE"
    REHABILITATION = "REHABILITATION"


class AssignmentStatus(str, enum.Enum):
    ASSIGNED = "ASSIGNED"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


class Satisfaction(str, enum.Enum):
    """The answer of a satisfaction survey (满意度调查): 满意, 基本满意, 不满意."""

    SATISFIED = "SATISFIED"
    PARTLY_SATISFIED = "PARTLY_SATISFIED"
    DISSATISFIED = "DISSATISFIED"


class VolunteerStation(Base):
    """A community volunteer service station (社区志愿服务站点; GD-2022 §13) of a township or village."""

    __tablename__ = "volunteer_station"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    township_code: Mapped[str] = mapped_column(String(9))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    __table_args__ = (UniqueConstraint("region_code", "name", name="uq_volunteer_station_region_name"),)


class Volunteer(Base):
    """A volunteer registered at a station, with the tasks (:class:`VolunteerTask`) they offer. The phone is
    personal data: stored encrypted, shown masked without the identity right."""

    __tablename__ = "volunteer"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("volunteer_station.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(EncryptedString(VOLUNTEER_PHONE))
    tasks: Mapped[list[Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    registered_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class VolunteerAssignment(Base):
    """A volunteer assigned to one task: assisting a visit (巡访) or a lead's screening (对象排查), a household's
    assessment, survey or care, or policy outreach in a region; done with its result (a satisfaction survey with
    its :class:`Satisfaction`). ``region_code`` is the target's region (data scope)."""

    __tablename__ = "volunteer_assignment"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(String(12))
    task: Mapped[str] = mapped_column(String(24))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    satisfaction: Mapped[str | None] = mapped_column(String(20))
    assigned_by: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    completed_by: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    __table_args__ = (
        _enum_check("task", VolunteerTask),
        _enum_check("status", AssignmentStatus),
        CheckConstraint("satisfaction IS NULL OR (satisfaction IN ('SATISFIED', 'PARTLY_SATISFIED', 'DISSATISFIED') "
                        "AND task = 'SATISFACTION_SURVEY' AND status = 'DONE')", name="satisfaction_of_survey"),
        Index("ix_volunteer_assignment_region_status", "region_code", "status"),
    )


# --- eligibility decisions kept current (issue 15): 政策找人 without recomputing a province per request ------------


class EligibilityDecision(Base):
    """The policy engine's decision for one household and one program, as of its province's snapshot date.

    Only rows that matter are kept: the household is eligible for the program, or enrolled in it (or both).
    A household and program without a row is neither. ``gap`` (eligible and not enrolled) is what 政策找人 pages
    through; a gap row keeps its reasons too (0013), so that a page is read, not re-explained. Written only by
    :mod:`aidgraph.core.policy.decisions` (0011).
    """

    __tablename__ = "eligibility_decision"

    household_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    """No foreign key: a deleted household's rows stay until the refresh that its stale mark causes removes them
    (which also corrects the counts of its region); every read refreshes first."""
    program: Mapped[str] = mapped_column(String(40), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    eligible: Mapped[bool] = mapped_column(Boolean)
    enrolled: Mapped[bool] = mapped_column(Boolean)
    gap: Mapped[bool] = mapped_column(Boolean)
    monthly_amount: Mapped[Decimal | None] = mapped_column(Money)
    one_off_amount: Mapped[Decimal | None] = mapped_column(Money)
    benefit_label: Mapped[str | None] = mapped_column(String(80))
    reasons: Mapped[str | None] = mapped_column(Text)
    """The engine's reasons (a JSON list of strings) on gap rows, computed with the decision; null on the others
    (an enrolled household's reasons are read from its enrolment's own evaluation)."""

    __table_args__ = (
        # The gap pages: by household then program over a whole province, or within a small region.
        Index("ix_eligibility_decision_gap_order", "household_id", "program",
              sqlite_where=text("gap"), postgresql_where=text("gap")),
        Index("ix_eligibility_decision_gap_region", "region_code", "household_id", "program",
              sqlite_where=text("gap"), postgresql_where=text("gap")),
    )


class DecisionCount(Base):
    """Gaps (eligible, not enrolled) per region prefix (every division level: province, city, county, township,
    village) and program, kept with the decisions in the same transactions: the totalCount of any region the
    caller may read is one row per program instead of a count over millions of decisions (0011)."""

    __tablename__ = "decision_count"

    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    program: Mapped[str] = mapped_column(String(40), primary_key=True)
    gaps: Mapped[int] = mapped_column(Integer)


class DecisionSnapshot(Base):
    """When a province's decisions were computed in full, for which date and under which policy version
    (a digest of its parameters, enabled plugins and their versions). A read for another date or version
    recomputes the province; in between, the households marked in ``decision_stale`` are recomputed (0011)."""

    __tablename__ = "decision_snapshot"

    province_code: Mapped[str] = mapped_column(String(2), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    policy_version: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    households: Mapped[int] = mapped_column(Integer)
    decisions: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)


class HouseholdFrameSet(Base):
    """A province's household facts kept for one date (政策模拟 reads them instead of the tables): which
    (province, date) pairs are kept, and a version that every change of their parts increments (0023)."""

    __tablename__ = "household_frame_set"

    province_code: Mapped[str] = mapped_column(String(2), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    format: Mapped[str] = mapped_column(String(80))
    households: Mapped[int] = mapped_column(Integer)
    built_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    seconds: Mapped[float] = mapped_column(Float)


class HouseholdFrameChunk(Base):
    """The household frame of the households of a province whose ids lie in [first_household_id, the next
    chunk's first id), for one date, as compressed Arrow IPC (aidgraph.core.policy.frames). A copy of personal
    data: rewritten when any of its households changes, so no older value outlives its source (0023)."""

    __tablename__ = "household_frame_chunk"

    province_code: Mapped[str] = mapped_column(String(2), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    first_household_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    households: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (ForeignKeyConstraint(["province_code", "as_of"],
                                           ["household_frame_set.province_code", "household_frame_set.as_of"],
                                           ondelete="CASCADE"),)


class DecisionStale(Base):
    """A household whose facts changed since its decisions were computed: one row per change, written by
    database triggers on every table the household frame reads (0011), so no write path can forget it.
    Consumed by the incremental refresh, which deletes exactly the rows it saw."""

    __tablename__ = "decision_stale"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(BigInteger)


class Installation(Base):
    """This database's identity: one row, a random id made when the schema is created (0022).

    Whatever a process leaves for another outside the database (the search index above all) carries it, so a
    command pointed at the wrong engine (another installation's, found through a shared state directory)
    refuses to touch what belongs to another database instead of repairing it into this one's image."""

    __tablename__ = "installation"

    database_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
