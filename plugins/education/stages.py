"""The education stages the plugin knows, and which grant-table entry a student's stage reads.

One place for the stages (the platform's ``StudentStage``) and for the grouping the sources give: GS-2024 defines
本专科生 as 本科 and 专科 students including 预科生、高职生、第二学士学位学生 (本专科生（含预科生、高职生、第二学士学位
学生，不含退役士兵学生）国家助学金…), so a province's ``UNDERGRADUATE`` tiers, loan ceiling, veteran grant and
freshman grant reach all of them, unless the province configures the sub-stage itself (the most specific entry
wins). Secondary vocational school (中等职业教育, ``VOCATIONAL``) is not higher education and keeps its own tiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from aidgraph.plugin import member, models

STAGES: tuple[str, ...] = tuple(stage.value for stage in models.StudentStage)
"""Every stage a student can be recorded in (学前 to 研究生)."""

UNDERGRADUATE = "UNDERGRADUATE"
UNDERGRADUATE_STAGES: tuple[str, ...] = ("UNDERGRADUATE", "PREPARATORY", "JUNIOR_COLLEGE", "SECOND_DEGREE")
"""本专科生 (GS-2024): 本科 and 专科 students, 预科生, 高职生 and 第二学士学位学生."""


def table_key(table: Mapping[str, Any], stage: str | None) -> str | None:
    """The entry of a by-stage table (grant tiers, loan ceilings) that applies to ``stage``: its own, else, for a
    本专科生, the ``UNDERGRADUATE`` one; None when the table has neither."""
    if stage is None:
        return None
    if stage in table:
        return stage
    if stage in UNDERGRADUATE_STAGES and UNDERGRADUATE in table:
        return UNDERGRADUATE
    return None


def stage_reads(table: Mapping[str, Any], key: str) -> pl.Expr:
    """A member expression: true for the students whose stage reads ``table[key]`` (:func:`table_key`)."""
    return member("student_stage").is_in([s for s in STAGES if table_key(table, s) == key])


def undergraduate() -> pl.Expr:
    """A member expression: true for a 本专科生 (any of :data:`UNDERGRADUATE_STAGES`)."""
    return member("student_stage").is_in(list(UNDERGRADUATE_STAGES))
