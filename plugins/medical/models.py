"""The medical plugin's own table: settled medical-aid claims (医疗救助结算).

The medical plugin owns this table; the core does not name it. A documented exception: the table is created
by the core's migration ``0001`` (written before plugins owned tables, and migration history is not
rewritten); a new plugin table gets a migration of its plugin's own.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, DateTime, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy import JSON

from aidgraph.plugin import Base, Money, utcnow as _utcnow


class MedicalClaim(Base):
    """A settled medical-aid claim (医疗救助结算): the category, ratio, deductible and cap that applied.

    Annual deductibles, caps and secondary aid accumulate over a person's claims of the calendar year, so every
    settlement is kept with the amounts it used.
    """

    __tablename__ = "medical_claim"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id", ondelete="SET NULL"))
    province_code: Mapped[str] = mapped_column(String(2))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    admission_date: Mapped[dt.date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(24))
    major_disease: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    compliant_cost: Mapped[Decimal] = mapped_column(Money)
    insurance_paid: Mapped[Decimal] = mapped_column(Money)
    deductible_applied: Mapped[Decimal] = mapped_column(Money)
    aid_amount: Mapped[Decimal] = mapped_column(Money)
    secondary_aid_amount: Mapped[Decimal] = mapped_column(Money)
    out_of_pocket: Mapped[Decimal] = mapped_column(Money)
    reasons: Mapped[list] = mapped_column(JSON)
    settled_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    settled_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("compliant_cost >= 0 AND insurance_paid >= 0", name="amounts_not_negative"),)
