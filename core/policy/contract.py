"""The plugin contract's types: what the hooks of :mod:`.hookspecs` take and return.

A leaf of the policy floor: it imports storage, access and the pure parameter model, never the engine, the
plugin host or a plugin, so that the hook contract can be read (and type-checked) on its own. Plugin authors
get these names from :mod:`aidgraph.plugin`.

The expression helpers (:func:`member`, :func:`count_members`, :func:`receiving`, :func:`yuan`, :func:`fmt`,
...) are part of the contract too: rules are polars expressions over the household frame that
:mod:`.engine` documents.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.policy.parameters import ProvinceParams

ADULT_AGE = 18

ABLE_TO_WORK = ("FULL", "PARTIAL")
"""Labour capacities (劳动能力) of a person able to work: full or partial (``NONE``: unable). What a rule means by
"a member able to work" before any age band a province adds."""

# --- what plugins register -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    """An aid program (救助项目) registered by a plugin.

    ``unit``: ``household`` (the household applies: 低保) or ``person`` (a member applies: 医疗救助).
    ``category``: the low-income category (``LowIncomeCategory``) an active enrolment puts the household in.
    ``aid_first``: emergency aid (急难型, 先行救助): the state machine allows approval straight from APPLIED,
    verification after. ``reviewed``: active enrolments have periodic reviews (复核).
    """

    key: str
    name: str
    domain: str
    unit: str = "household"
    category: str | None = None
    pays_monthly: bool = False
    aid_first: bool = False
    reviewed: bool = False
    transfer_from: tuple[str, ...] = ()
    """Programs whose active enrolments may move to this one without a new application (GD-2022)."""
    description: str = ""
    gradual_exit_param: str | None = None
    """The key of the plugin's own parameter giving the months of 渐退期 (gradual exit) when a review finds the
    household lifted out by earnings; None: the program has no gradual exit. The core reads the key named here
    and never builds one from the program key."""


@dataclass(frozen=True)
class RuleContext:
    """What a rule needs besides the frame: the province's parameters on the evaluation date."""

    params: ProvinceParams
    on: dt.date
    province_code: str

    def p(self, key: str, default: Any = ...) -> Any:
        """Province-wide value of ``key`` on the evaluation date."""
        return self.params.value(key, self.on, default=default)

    def col(self, key: str, default: Any = None) -> pl.Expr:
        """Value of ``key`` for each household's region (regional overrides applied)."""
        return self.params.column(key, self.on, default=default)

    def per_region(self, key: str, build: Callable[[Any], pl.Expr]) -> pl.Expr:
        """``build(value)`` for the value of ``key`` in force for each household's region: for parameters whose
        value shapes the expression itself (a table of tiers by stage), where :meth:`col` gives one literal per
        row. The most specific region prefix wins; without a province-wide value, households outside every
        region of the parameter raise :class:`ParameterMissing` like :meth:`p`."""
        values = self.params.by_region(key, self.on)
        expr = build(values.pop(None)) if None in values else build(self.p(key))
        for region in sorted((r for r in values if r is not None), key=len):
            expr = pl.when(pl.col("region_code").str.starts_with(region)).then(build(values[region])).otherwise(expr)
        return expr

    def has(self, key: str) -> bool:
        """``key`` has a value in force (province-wide) on the evaluation date."""
        return self.params.value(key, self.on, default=None) is not None

    def cite(self, key: str) -> str:
        return self.params.cite(key)


RuleBuild = Callable[[RuleContext], tuple[pl.Expr, pl.Expr]]


@dataclass(frozen=True)
class EligibilityRule:
    """One criterion of a program: ``build(ctx)`` gives (passes: bool expr, reason: str expr).

    ``kind``: ``gate`` (always required: residence, assets), ``test`` (the main tests, all required) or
    ``alternative`` (enough on its own instead of the tests, gates still apply: 单人保 single-person
    inclusion). ``replaces``: the key of a rule of the same program this one replaces (province variants).
    """

    program: str
    key: str
    build: RuleBuild
    kind: str = "test"
    replaces: str | None = None
    description: str = ""


@dataclass(frozen=True)
class BenefitFormula:
    """``build(ctx)`` gives (amount in yuan: float expr or null, reason: str expr).

    ``period``: ``month`` (a monthly benefit, the contract's ``monthlyAmount``) or ``once`` (a one-off grant
    such as temporary aid, paid once on activation). ``label``: an optional expression naming the benefit
    class chosen (Gansu rural dibao class 1-4, urban full or differential guarantee), stored on the enrolment
    as its ``category`` where other rules (medical premium subsidies) depend on it.
    """

    program: str
    key: str
    build: RuleBuild
    period: str = "month"
    label: Callable[[RuleContext], pl.Expr] | None = None
    description: str = ""


@dataclass(frozen=True)
class IncomeDeduction:
    """``build(ctx)`` gives (monthly household deduction in yuan: float expr, reason: str expr)."""

    key: str
    build: RuleBuild
    description: str = ""


# --- helpers for rule authors ------------------------------------------------------------------------------


def member(name: str) -> pl.Expr:
    """A member field inside ``count_members``/``any_member`` conditions."""
    return pl.element().struct.field(name)


def count_members(condition: pl.Expr) -> pl.Expr:
    """Number of members for whom ``condition`` (written with :func:`member`) holds."""
    return pl.col("members").list.eval(condition.fill_null(False).cast(pl.Int32)).list.sum().fill_null(0)


def any_member(condition: pl.Expr) -> pl.Expr:
    return count_members(condition) > 0


def receiving(program_key: str) -> pl.Expr:
    """The household has an ACTIVE or GRADUAL_EXIT enrolment in ``program_key``."""
    return pl.col("receiving").list.contains(program_key)


def receiving_any(keys: Iterable[str]) -> pl.Expr:
    keys = list(keys)
    return pl.col("receiving").list.set_intersection(pl.lit(keys, dtype=pl.List(pl.String))).list.len() > 0


def yuan(expr: pl.Expr | float) -> pl.Expr:
    """A money amount as text with two decimals (for reasons)."""
    e = expr if isinstance(expr, pl.Expr) else pl.lit(float(expr))
    cents = (e.cast(pl.Float64) * 100).round(0).cast(pl.Int64)
    return pl.format("{}.{}", (cents // 100).cast(pl.String), (cents % 100).cast(pl.String).str.zfill(2))


def text(value: Any) -> pl.Expr:
    return pl.lit(str(value))


def fmt(template: str, *args: Any) -> pl.Expr:
    """``pl.format`` accepting plain values as well as expressions."""
    return pl.format(template, *[a if isinstance(a, pl.Expr) else pl.lit(str(a)) for a in args])


def program_search_document(programs: Iterable[Program], entity: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """Search fields a domain plugin adds to the enrolment documents of its own programs."""
    if entity != "enrollment":
        return None
    for program in programs:
        if record.get("program_key") == program.key:
            return {"program_domain": program.domain, "program_name": program.name}
    return None


PROGRAM_SEARCH_FIELDS = {"enrollment": {"program_domain": {"type": "keyword"}, "program_name": {"type": "keyword"}}}




@dataclass(frozen=True)
class Indicator:
    """A monitoring indicator contributed by a plugin through ``aidgraph_monitoring_indicators``.

    ``key``: stable identifier, stored in ``alert.indicators`` and naming the weight parameter
    ``monitoring.weights.<key>``. ``name``: the Chinese policy term. ``feed_kinds``: the feeds (or
    ``economic_item``) it reads, for documentation and for the run summary. ``compute``: the month's hits
    for the whole province as a frame with columns ``household_id`` and ``person_id`` (null for a
    household-level signal).
    """

    key: str
    name: str
    description: str
    feed_kinds: tuple[str, ...]
    compute: Callable[[Any], pl.DataFrame]
    """Receives the month's :class:`aidgraph.core.monitoring.indicators.IndicatorContext`."""
    prefetch: Callable[[Any], None] | None = None
    """Optional: called with the same context before any indicator computes, to begin the large reads
    ``compute`` will make (``IndicatorContext.prefetch_flows``) so that they run while the indicators before it
    compute. It changes no result: ``compute`` gets the same frames with or without it."""

    @property
    def weight_key(self) -> str:
        return f"monitoring.weights.{self.key}"



@dataclass(frozen=True)
class EnrollmentEvent:
    """What ``aidgraph_enrollment_changed`` receives: one transition, inside its transaction."""

    session: AsyncSession
    actor: Actor
    enrollment_id: int
    household_id: int
    program: Program
    params: ProvinceParams
    action: str
    from_status: str | None
    to_status: str
    on: dt.date



@dataclass(frozen=True)
class GraphQLContribution:
    """Root-field pieces a plugin adds to the schema: strawberry ``@strawberry.type`` classes."""

    query: type | None = None
    mutation: type | None = None


