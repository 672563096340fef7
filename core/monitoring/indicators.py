"""Monitoring indicators (监测指标): the type plugins contribute, and the frames they are computed over.

An :class:`Indicator` names a signal of hardship (住院 hospitalisation, 收入骤减 sudden income drop, 支出骤增
expenditure surge, 家庭成员变化 household change, ...), the feed kinds it reads, and how it is computed for one
month **set-at-a-time**: ``compute(ctx)`` returns a polars frame of hits (one row per household, or per
person and household) for the whole province at once, never a loop per person. Its weight is not part of the
indicator: it is the province's dated parameter ``monitoring.weights.<key>``, so the same indicator weighs
differently in Guangdong and Gansu (GS-2024 names the indicators and says each has a weight; no source gives
the values, so the shipped ones are illustrative).

:class:`IndicatorContext` gives indicators the month's data as polars frames, each loaded by one SQL
statement and cached for the run: the month's feed records of a kind (with the member's household), and the
monthly income or expenditure sums per household over a baseline window (for the "sudden change" signals).
Indicators may also run their own SQL through :meth:`IndicatorContext.query`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import Executable, Float, Select, String, Text, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from aidgraph.core.monitoring.feeds import FEEDS, FLOW_KINDS, ITEM_FEEDS, payload_dtype
from aidgraph.core.policy.contract import Indicator
from aidgraph.core.storage.bulk import FrameSchema, dialect_of, read_frame, start_large_read, streaming_aggregate
from aidgraph.core.storage.models import (
    EconomicItem,
    FeedRecord,
    Household,
    Membership,
)
from aidgraph.core.access.scope import Scope


HITS_SCHEMA = {"household_id": pl.Int64, "person_id": pl.Int64}
"""What ``Indicator.compute`` returns: household hits, with the member concerned where there is one."""


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of ``YYYY-MM``; ValueError naming the value otherwise."""
    try:
        year, mon = month.split("-")
        if len(year) != 4 or len(mon) != 2:
            raise ValueError
        start = dt.date(int(year), int(mon), 1)
    except ValueError:
        raise ValueError(f"month {month!r} is not a month (YYYY-MM)") from None
    return start, shift_month(start, 1) - dt.timedelta(days=1)


def shift_month(first_day: dt.date, months: int) -> dt.date:
    index = first_day.year * 12 + first_day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_index(column: str) -> pl.Expr:
    """Months since year 0 of a date column (to compare months with integer arithmetic)."""
    return pl.col(column).dt.year().cast(pl.Int64) * 12 + pl.col(column).dt.month().cast(pl.Int64) - 1


@dataclass
class IndicatorContext:
    """The month being scored and the data indicators read, loaded once per run."""

    session: Session
    province_code: str
    month: str
    params: Any
    """The province's parameters (:class:`aidgraph.core.policy.parameters.ProvinceParams`): ``value(key, on)``."""
    category_programs: Mapping[str, str]
    """Program key -> low-income category (低收入人口), for the programs that put a household in one: each
    plugin's ``Program.category``, as the deployment's program catalogue collects them
    (:func:`aidgraph.core.policy.host.category_programs`). What a low-income identity is to an indicator (GS-2024's
    身份信息重合叠加), read from the one table instead of a copy of it."""
    scope: Scope = field(init=False)
    month_start: dt.date = field(init=False)
    month_end: dt.date = field(init=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False)
    _pending: dict = field(default_factory=dict, init=False, repr=False)
    """Reads begun by :meth:`prefetch_flows`, by the same keys as ``_cache``: for each, the futures of its parts'
    frames, in order."""

    def __post_init__(self) -> None:
        self.month_start, self.month_end = month_bounds(self.month)
        self.scope = Scope.of([self.province_code])

    def param(self, key: str, default: Any = ...) -> Any:
        """A parameter in force at the end of the month."""
        if default is ...:
            return self.params.value(key, self.month_end)
        return self.params.value(key, self.month_end, default=default)

    def query(self, stmt: Select[Any], schema: FrameSchema, large: bool = False) -> pl.DataFrame:
        """Run one statement and return its rows as a frame with ``schema`` (column names in order).

        Rows come straight from the driver (:func:`aidgraph.core.storage.bulk.read_frame`): these are the run's largest
        reads; ``large`` for one that reads the whole province's window. Cast numeric columns to Float or Integer
        in the statement (drivers return Decimals otherwise).
        """
        return read_frame(self.session, stmt, schema, large=large)

    def hits(self, indicator: Indicator) -> pl.DataFrame:
        """``indicator``'s hits for the month, computed once per run: the scoring and an indicator that reads
        the others' hits (身份信息重合叠加, which overlays identities on every other signal) share them instead
        of computing each twice (the sudden-change signals read millions of monthly sums)."""
        key = ("hits", indicator)  # the indicator itself: a province's variant of a key is its own
        if key not in self._cache:
            self._cache[key] = indicator.compute(self)
        return self._cache[key]

    def _households_read(self) -> tuple[Executable, FrameSchema]:
        return (select(Household.id, Household.region_code).where(self.scope.predicate(Household.region_code)),
                {"household_id": pl.Int64, "region_code": pl.Utf8})

    def households_in_scope(self) -> pl.DataFrame:
        """The province's households (``household_id``) and their regions (``region_code``), read once per run:
        what the window's items are kept by, and where the run's alerts are routed."""
        if "households" not in self._cache:
            self._cache["households"] = self._large_read("households", *self._households_read())
        return self._cache["households"]

    def _large_read(self, key: Any, stmt: Executable, schema: FrameSchema, grouped: bool = False) -> pl.DataFrame:
        """A large read's frame: the one :meth:`prefetch_flows` began under ``key`` (its parts' frames one after
        the other), else ``stmt`` read now (``grouped``: a statement of nearly a group per row,
        :func:`aidgraph.core.storage.bulk.streaming_aggregate`)."""
        frames = [part.result() for part in self._pending.pop(key, [])]
        if frames and all(frame is not None for frame in frames):
            return frames[0] if len(frames) == 1 else pl.concat(frames)
        # not begun, or the reader refused a part: the whole statement through the session
        with streaming_aggregate(self.session) if grouped else contextlib.nullcontext():
            return read_frame(self.session, stmt, schema, large=True)

    def prefetch_flows(self, baseline_months: int) -> None:
        """Begin reading :meth:`economic_flows`' window of ``baseline_months`` and the province's households,
        where those reads can go past the run's session (SQLite's reader process:
        :func:`aidgraph.core.storage.bulk.start_large_read`), so that they run while other indicators compute;
        nothing otherwise. The window is read in :data:`FLOW_READS` parts at once, each a run of its months
        (:meth:`_flow_parts`). :meth:`economic_flows` then takes the frames read (the same as it would read
        itself); a read it never asks for is left to finish on its own."""
        window = [self._flows_read(baseline_months, *months) for months in self._flow_parts(baseline_months)]
        for key, reads in ((("flows", baseline_months), window), ("households", [self._households_read()])):
            if key in self._cache or key in self._pending:
                continue
            parts = []
            for stmt, schema in reads:
                part = start_large_read(self.session, stmt, schema)
                if part is None:  # none can be begun (the session's engine or transaction): read in place
                    break
                parts.append(part)
            else:
                self._pending[key] = parts

    def _member_household(self):
        """Membership overlapping the period from the event to the end of the month, in the province.

        A member who moved out during the month still counts for the household the event happened in, and a
        member who moved in counts for the new one: both households may need a visit.
        """
        return and_(
            Membership.person_id == FeedRecord.person_id,
            Membership.valid_from <= self.month_end,
            or_(Membership.valid_to.is_(None), Membership.valid_to > FeedRecord.event_date),
        )

    def feed(self, kind: str) -> pl.DataFrame:
        """Feed records of ``kind`` dated in the month, one row per (record, household), payload flattened.

        Columns: ``household_id``, ``person_id``, ``region_code`` (the household's), ``event_date``, then
        the payload's fields.

        Not for the income and asset feeds (:data:`aidgraph.core.monitoring.feeds.ITEM_FEEDS`): their rows are
        stored as economic items, read with :meth:`economic_flows`; nor for a kind the importer does not know
        (:data:`aidgraph.core.monitoring.feeds.FEEDS`), whose payload has no declared fields (a misspelt kind
        would otherwise read as no records). A ``ValueError`` says which.
        """
        if kind in ITEM_FEEDS:
            raise ValueError(f"the {kind} feed's rows are stored as economic items, not feed records: read them "
                             f"with IndicatorContext.economic_flows")
        if kind not in FEEDS:
            raise ValueError(f"unknown feed kind {kind!r}; known kinds: {', '.join(sorted(FEEDS))}")
        key = ("feed", kind)
        if key not in self._cache:
            stmt = (
                select(Membership.household_id, FeedRecord.person_id, Household.region_code, FeedRecord.event_date,
                       cast(FeedRecord.payload, Text))
                .join(Membership, self._member_household())
                .join(Household, Household.id == Membership.household_id)
                .where(FeedRecord.kind == kind, FeedRecord.event_date >= self.month_start,
                       FeedRecord.event_date <= self.month_end, self.scope.predicate(Household.region_code))
            )
            # The payload as its JSON text, decoded by polars with the feed's declared types: decoding each
            # record's JSON into a dict in Python took most of the read (265,000 records of the benchmark
            # province's month: about 4 s).
            rows = read_frame(self.session, stmt, {"household_id": pl.Int64, "person_id": pl.Int64,
                                                   "region_code": pl.Utf8, "event_date": pl.Date, "payload": pl.Utf8})
            payload = rows.select(pl.col("payload").str.json_decode(payload_dtype(FEEDS[kind]))).unnest("payload")
            base = rows.drop("payload")
            payload = payload.drop([c for c in base.columns if c in payload.columns])
            self._cache[key] = pl.concat([base, payload], how="horizontal") if payload.width else base
        return self._cache[key]

    def _flow_parts(self, baseline_months: int) -> list[tuple[dt.date, dt.date]]:
        """The window's months in :data:`FLOW_READS` runs as even as can be (first and last month of each)."""
        months = [shift_month(self.month_start, back) for back in range(-baseline_months, 1)]
        size, extra = divmod(len(months), min(FLOW_READS, len(months)))
        parts, at = [], 0
        for index in range(min(FLOW_READS, len(months))):
            length = size + (index < extra)
            parts.append((months[at], months[at + length - 1]))
            at += length
        return parts

    def _flows_read(self, baseline_months: int, first: dt.date | None = None,
                    last: dt.date | None = None) -> tuple[Select[Any], FrameSchema]:
        """The statement of :meth:`economic_flows`' window and its frame's schema; ``first``/``last``: only the
        items of those months (first days) and the months between, one part of the window."""
        window_start = shift_month(self.month_start, -baseline_months)
        until = self.month_end if last is None else shift_month(last, 1) - dt.timedelta(days=1)
        # The range and the grouping follow ix_economic_item_period_flows (period_start, period_end, kind,
        # household_id, source, amount): both engines read just the window from the index and can sum as
        # they read. The province's households are kept by a join in polars, not one lookup per item.
        if dialect_of(self.session) == "sqlite":
            # Kind, month and source as one text key of a few hundred values, read as a categorical: through
            # the cursor (a test's small file), where sqlite3 makes a Python object of every value, 3 values a
            # row instead of 5; through the reader process (a province's file), 8.7 million small codes and
            # one dictionary instead of 8.7 million strings (aidgraph.core.storage.sqlite_arrow;
            # bench/README.md has the figures of both). Source last: splitting at the first two separators
            # gives it back whole whatever it holds; kind and date hold none.
            label = EconomicItem.kind.concat(FLOW_KEY_SEPARATOR).concat(
                cast(EconomicItem.period_start, String)).concat(FLOW_KEY_SEPARATOR).concat(EconomicItem.source)
            columns: tuple[Any, ...] = (label.label("flow_key"),)
            schema: FrameSchema = {"household_id": pl.Int64, "flow_key": pl.Categorical, "amount": pl.Float64}
        else:
            columns = (EconomicItem.kind, EconomicItem.source, EconomicItem.period_start)
            schema = {"household_id": pl.Int64, "kind": pl.Utf8, "source": pl.Utf8, "period_start": pl.Date,
                      "amount": pl.Float64}
        stmt = (
            select(EconomicItem.household_id, *columns, cast(func.sum(EconomicItem.amount), Float))
            .where(EconomicItem.period_start >= (first or window_start), EconomicItem.period_start <= until,
                   EconomicItem.period_end <= self.month_end, EconomicItem.kind.in_(FLOW_KINDS))
            .group_by(EconomicItem.period_start, EconomicItem.period_end, EconomicItem.kind,
                      EconomicItem.household_id, EconomicItem.source)
        )
        return stmt, schema

    def economic_flows(self, kinds: Iterable[str], baseline_months: int) -> pl.DataFrame:
        """Monthly sums of economic items of ``kinds`` per household and data source, for the month and
        ``baseline_months`` before it. Columns: ``household_id``, ``source``, ``months_back`` (0 = this
        month), ``amount``.

        Only items whose period lies within the window count: monthly records from the income feed and the
        departments' monthly verification data are what a "sudden" change is measured on; annual declared
        income does not move month to month. Every income and expenditure kind of the window is read by one
        statement per run, whichever indicators ask.
        """
        key = ("flows", baseline_months)
        if key not in self._cache:
            stmt, schema = self._flows_read(baseline_months)
            # nearly a group per item: hashed, they spill to disk
            frame = self._large_read(key, stmt, schema, grouped=True)
            frame = frame.join(self.households_in_scope(), on="household_id", how="semi")
            self._cache[key] = FlowWindow.of(frame, self.month_start)
        window: FlowWindow = self._cache[key]
        return window.sums(kinds)


FLOW_READS = 2
"""In how many parts at once :meth:`IndicatorContext.prefetch_flows` reads the window where it can (SQLite's reader
process, a process each): each part a run of the window's months, read while the feed signals compute, then while
the run's own thread waits with its core free. The statement groups by month first, so no group spans two parts
and the parts one after the other are the whole window's frame, in its order. The 5,000,000-person province's
window (four months, 8,736,389 groups): see bench/README.md."""


FLOW_KEY_SEPARATOR = "\x1f"
"""Between kind, month and source in the one text key :meth:`IndicatorContext.economic_flows` reads on SQLite
(the ASCII unit separator: no kind or date holds it)."""


@dataclass(frozen=True)
class FlowWindow:
    """:meth:`IndicatorContext.economic_flows`' window as read, kept for the run: each read group's household,
    amount and ``code``, a small integer standing for its kind, month and source, whose values ``keys`` holds
    (a few dozen rows: ``code``, ``kind``, ``source``, ``months_back``).

    Every step over the millions of groups then works on integers: which kinds are asked for is decided on
    ``keys`` and becomes a set of codes, and the sums are grouped by household and a code of (source, month).
    Text (kind, month, source) is split, compared and attached per key or per sum, never per group read. The
    5,000,000-person province's window of 8,736,389 groups: 2.3-2.5 s a run against 4.7-4.8 s when each group carried
    its kind, source and month as text (bench/README.md)."""

    groups: pl.DataFrame
    """``household_id``, ``code`` (UInt32), ``amount``: one row per group read (month, period end, kind, source)."""
    keys: pl.DataFrame

    @classmethod
    def of(cls, frame: pl.DataFrame, month_start: dt.date) -> FlowWindow:
        """The window from :meth:`IndicatorContext._flows_read`'s frame: on SQLite ``flow_key``, a categorical of
        kind, month and source (:data:`FLOW_KEY_SEPARATOR` between them), whose codes are taken as they are;
        else ``kind``, ``source`` and ``period_start``, coded here."""
        if "flow_key" in frame.columns:
            groups = frame.select("household_id", pl.col("flow_key").to_physical().cast(pl.UInt32).alias("code"),
                                  "amount")
            # Each distinct key split once (splitting at the first two separators gives the source back whole).
            keys = frame.select(pl.col("flow_key").unique()).select(
                pl.col("flow_key").to_physical().cast(pl.UInt32).alias("code"),
                pl.col("flow_key").cast(pl.Utf8).str.splitn(FLOW_KEY_SEPARATOR, 3)
                .struct.rename_fields(["kind", "period_start", "source"]).alias("parts")).unnest("parts") \
                .with_columns(pl.col("period_start").str.slice(0, 10).str.to_date("%Y-%m-%d"))
        else:
            keys = frame.select("kind", "period_start", "source").unique().with_row_index("code")
            groups = frame.join(keys, on=["kind", "period_start", "source"]).select("household_id", "code", "amount")
        current = month_start.year * 12 + month_start.month - 1
        keys = keys.select("code", "kind", "source",
                           (pl.lit(current, pl.Int64) - month_index("period_start")).alias("months_back"))
        return cls(groups, keys)

    def sums(self, kinds: Iterable[str]) -> pl.DataFrame:
        """Per household, source and month (``months_back``) the sum of the groups of ``kinds``: the groups of
        one source and month (their kinds, their period ends) summed together. Columns ``household_id``,
        ``source``, ``months_back``, ``amount``."""
        chosen = self.keys.filter(pl.col("kind").is_in(sorted(kinds)))
        buckets = chosen.select("source", "months_back").unique().sort("source", "months_back") \
            .with_row_index("bucket")
        bucket_of = chosen.join(buckets, on=["source", "months_back"])
        return (self.groups.filter(pl.col("code").is_in(bucket_of["code"].implode()))
                .with_columns(pl.col("code").replace_strict(bucket_of["code"], bucket_of["bucket"]).alias("bucket"))
                .group_by("household_id", "bucket").agg(pl.col("amount").sum())
                .join(buckets, on="bucket")
                .select("household_id", "source", "months_back", "amount"))


def empty_hits() -> pl.DataFrame:
    return pl.DataFrame(schema=HITS_SCHEMA)


def as_hits(frame: pl.DataFrame, person: bool = True) -> pl.DataFrame:
    """The hit columns of ``frame`` (``person=False`` for household-level signals)."""
    if frame.is_empty():
        return empty_hits()
    person_col = pl.col("person_id") if person and "person_id" in frame.columns else pl.lit(None, pl.Int64)
    return frame.select(pl.col("household_id").cast(pl.Int64), person_col.cast(pl.Int64).alias("person_id"))
