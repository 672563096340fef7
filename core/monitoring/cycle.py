"""The monthly monitoring run (低收入人口动态监测): score, grade, raise alerts, route them to townships.

``aidgraph monitor run --province CODE --month YYYY-MM`` computes every indicator the plugins contribute for
the whole province at once (each a SQL statement or a polars expression, see :mod:`aidgraph.core.monitoring.indicators`),
weighs each hit by the province's dated parameter ``monitoring.weights.<key>``, sums the weights per person
and per household, and maps household scores to the province's warning bands (``monitoring.bands``:
Guangdong red, orange, yellow, blue, green, GD-2024; Gansu blue, yellow, orange, red from low to high,
GS-2024; the score thresholds are illustrative, no source gives them).

Households reaching a band get an alert (预警) routed to their township (the first 9 digits of the
household's region code), with an ALERT entry in the household's aid chain (一户一条救助链), an audit row and
an outbox row for the search index, all in the run's one transaction. A household with an open alert gets
that alert updated (highest level, highest score, union of indicators), never a second one. Re-running a
month changes nothing: the merge is idempotent, and a household whose alert for that month was already
closed by a caseworker is not alerted again for the same month.

Disposition (处置) of alerts by township caseworkers is :func:`dispose_alert`: START_VERIFICATION, then
ENROL (opens an application through the enrolment workflow), NO_ACTION_NEEDED or REFER.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Float, cast, or_, select
from sqlalchemy.orm import Session

from aidgraph.core.access.actor import Actor
from aidgraph.core.storage.bulk import any_of, dialect_of, insert_frame, read_frame, update_frame
from aidgraph.core.monitoring.indicators import IndicatorContext, month_bounds
from aidgraph.core.policy.contract import Indicator
from aidgraph.core.storage.models import (
    WARNING_SEVERITY,
    OPEN_ALERT_STATUSES,
    AidChainEvent,
    AidChainKind,
    Alert,
    AlertStatus,
    Outbox,
    OutboxEntity,
)
from aidgraph.core.access.scope import Scope
from aidgraph.core.storage.models import RECEIVING_ENROLLMENT_STATUSES, Enrollment
from aidgraph.core.graph import aidchain
from aidgraph.core.graph import audit
from aidgraph.core.graph import outbox
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found

BANDS_KEY = "monitoring.bands"
MONITORING_PROGRAM = "relapse_monitoring"
"""Alerts are recorded in the aid chain under the monitoring program (防止返贫监测)."""


class MonitoringError(ValueError):
    """The run cannot start: a bad or future month, a province with no bands or weights configured."""


# --- bands ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bands:
    """A province's warning bands: each level with the lowest household score that reaches it."""

    levels: tuple[tuple[str, float], ...]  # ascending by score

    @classmethod
    def from_value(cls, value: Any, where: str) -> "Bands":
        if not isinstance(value, dict) or not value:
            raise MonitoringError(f"{where}: must be a table of warning level = lowest score, e.g. "
                                  f"{{ RED = 80, ORANGE = 60 }}")
        levels = []
        for level, minimum in value.items():
            if level not in WARNING_SEVERITY:
                raise MonitoringError(f"{where}: {level!r} is not a warning level ({', '.join(WARNING_SEVERITY)})")
            if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or minimum <= 0:
                raise MonitoringError(f"{where}: {level} must be a positive score, not {minimum!r}")
            levels.append((level, float(minimum)))
        levels.sort(key=lambda lv: WARNING_SEVERITY[lv[0]])
        for (low, low_min), (high, high_min) in zip(levels, levels[1:]):
            if high_min <= low_min:
                raise MonitoringError(f"{where}: {high} ({high_min:g}) must need a higher score than {low} "
                                      f"({low_min:g})")
        return cls(tuple(levels))

    def classify(self, scores: np.ndarray) -> list[str | None]:
        """The level each score reaches, or None below the lowest band."""
        thresholds = np.array([m for _, m in self.levels])
        names = [None] + [lv for lv, _ in self.levels]
        positions = np.searchsorted(thresholds, scores, side="right")
        return [names[i] for i in positions]


def bands_for(params: Any, province: str, on: dt.date) -> Bands:
    where = f"province {province}: {BANDS_KEY}"
    param = getattr(params, "parameters", {}).get(BANDS_KEY)
    if param is not None:
        where = f"{param.file}: {BANDS_KEY}"
    value = params.value(BANDS_KEY, on, default=None)
    if value is None:
        raise MonitoringError(
            f"province {province} has no warning bands in force on {on.isoformat()}: set {BANDS_KEY} "
            f"(level = lowest score) in province_configs/{province}/parameters/monitoring.toml")
    return Bands.from_value(value, where)


def weights_for(params: Any, province: str, indicators: Iterable[Indicator], on: dt.date) -> dict[str, float]:
    missing, weights = [], {}
    for ind in indicators:
        value = params.value(ind.weight_key, on, default=None)
        if value is None:
            missing.append(ind.weight_key)
        else:
            weights[ind.key] = float(value)
    if missing:
        raise MonitoringError(f"province {province} has no weight in force on {on.isoformat()} for: "
                              f"{', '.join(missing)} (province_configs/{province}/parameters/monitoring.toml)")
    return weights


def check_month(month: str, today: dt.date) -> tuple[dt.date, dt.date]:
    try:
        start, end = month_bounds(month)
    except ValueError as exc:
        raise MonitoringError(str(exc)) from None
    if start > today.replace(day=1):
        raise MonitoringError(f"month {month} is in the future (today is {today.isoformat()})")
    return start, end


# --- scoring -------------------------------------------------------------------------------------------------


@dataclass
class Scores:
    """The month's scores: every person and household with at least one hit (the rest score 0)."""

    hits: pl.DataFrame  # household_id, person_id, key, weight
    persons: pl.DataFrame  # person_id, household_id, score
    households: pl.DataFrame  # household_id, score, indicators (list), person_id (highest-scoring member)
    hits_by_indicator: dict[str, int]


def score_month(ctx: IndicatorContext, indicators: list[Indicator], weights: dict[str, float]) -> Scores:
    """Every indicator for the whole province, then person and household scores: set-at-a-time.

    First every indicator's ``prefetch`` (:class:`aidgraph.core.policy.contract.Indicator`) begins the large
    reads it will make, then each computes in turn: a read begun runs while the indicators before it compute."""
    parts = []
    counts: dict[str, int] = {}
    for ind in indicators:
        if ind.prefetch is not None:
            ind.prefetch(ctx)
    for ind in indicators:
        hits = ctx.hits(ind)
        missing = {"household_id", "person_id"} - set(hits.columns)
        if missing:
            raise TypeError(f"indicator {ind.key} returned no {', '.join(sorted(missing))} column")
        hits = hits.select(pl.col("household_id").cast(pl.Int64), pl.col("person_id").cast(pl.Int64))
        counts[ind.key] = hits.height
        if weights[ind.key] > 0 and hits.height:
            parts.append(hits.with_columns(pl.lit(ind.key).alias("key"),
                                           pl.lit(weights[ind.key], pl.Float64).alias("weight")))
    schema = {"household_id": pl.Int64, "person_id": pl.Int64, "key": pl.Utf8, "weight": pl.Float64}
    # One hit per (household, person, indicator): two hospital stays in a month are one hospitalisation signal.
    hits = pl.concat(parts).unique(["household_id", "person_id", "key"]) if parts else pl.DataFrame(schema=schema)
    persons = (hits.filter(pl.col("person_id").is_not_null())
               .group_by("person_id", "household_id").agg(pl.col("weight").sum().alias("score")))
    top = (persons.sort(["score", "person_id"], descending=[True, False])
           .unique("household_id", keep="first").select("household_id", "person_id"))
    households = (
        hits.group_by("household_id")
        .agg(pl.col("weight").sum().round(2).alias("score"), pl.col("key").unique().sort().alias("indicators"))
        .join(top, on="household_id", how="left")
    )
    return Scores(hits, persons, households, counts)


# --- alerts ---------------------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    province: str
    month: str
    persons_scored: int = 0
    households_scored: int = 0
    hits_by_indicator: dict[str, int] = field(default_factory=dict)
    households_by_level: dict[str, int] = field(default_factory=dict)
    alerts_raised: int = 0
    alerts_updated: int = 0
    alerts_unchanged: int = 0
    skipped_closed_this_month: int = 0
    illustrative: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def township_expr(region: pl.Expr) -> pl.Expr:
    """The township an alert is routed to: the household's region at township level (9 digits).

    A household registered above township level is routed to that region itself, the nearest office.
    """
    return pl.when(region.str.len_chars() >= 9).then(region.str.slice(0, 9)).otherwise(region)


def _existing_alerts(session: Session, scope: Scope, month: str) -> pl.DataFrame:
    stmt = select(Alert.id, Alert.household_id, Alert.status, Alert.level, cast(Alert.score, Float), Alert.indicators,
                  Alert.month, Alert.person_id, Alert.version).where(
        scope.predicate(Alert.region_code), or_(Alert.status.in_(OPEN_ALERT_STATUSES), Alert.month == month))
    rows = session.connection().execute(stmt).all()
    return pl.DataFrame(
        [(*r[:5], list(r[5] or []), *r[6:]) for r in rows], orient="row",
        schema={"alert_id": pl.Int64, "household_id": pl.Int64, "status": pl.Utf8, "e_level": pl.Utf8,
                "e_score": pl.Float64, "e_indicators": pl.List(pl.Utf8), "e_month": pl.Utf8, "e_person_id": pl.Int64,
                "e_version": pl.Int64})


def _indicator_names(keys: pl.Expr, names: dict[str, str]) -> pl.Expr:
    """The indicators' Chinese names joined with 、 (unknown keys as they are)."""
    return keys.list.eval(pl.element().replace(names)).list.join("、")


def write_alerts(session: Session, province: str, month: str, graded: pl.DataFrame, actor: Actor,
                 indicator_names: dict[str, str], summary: RunSummary) -> None:
    """Raise alerts for newly graded households, update open ones; aid chain, audit and outbox rows in bulk.

    Set-at-a-time (:mod:`aidgraph.core.storage.bulk`): the alerts, their aid-chain entries, audit rows and outbox rows are
    frames written in a few statements, whatever the number of alerts; ids of new alerts are found by
    household (at most one open alert each, a partial unique index).
    """
    scope = Scope.of([province])
    dialect = dialect_of(session)
    existing = _existing_alerts(session, scope, month)
    open_ = existing.filter(pl.col("status").is_in(OPEN_ALERT_STATUSES))
    closed_this_month = existing.filter(~pl.col("status").is_in(OPEN_ALERT_STATUSES) & (pl.col("e_month") == month))
    not_open = graded.join(open_.select("household_id"), on="household_id", how="anti")
    summary.skipped_closed_this_month = not_open.join(
        closed_this_month.select("household_id").unique(), on="household_id", how="semi").height
    new = not_open.join(closed_this_month.select("household_id"), on="household_id", how="anti")
    severity = pl.col("level").replace_strict(WARNING_SEVERITY, return_dtype=pl.Int32)
    e_severity = pl.col("e_level").replace_strict(WARNING_SEVERITY, return_dtype=pl.Int32)
    merged = (
        graded.join(open_, on="household_id", how="inner")
        .with_columns(
            pl.when(severity >= e_severity).then(pl.col("level")).otherwise(pl.col("e_level")).alias("m_level"),
            pl.max_horizontal("score", "e_score").alias("m_score"),
            pl.concat_list("indicators", "e_indicators").list.unique().list.sort().alias("m_indicators"),
            pl.max_horizontal("month", "e_month").alias("m_month"),
            pl.coalesce("e_person_id", "person_id").alias("m_person_id"),
        )
        .with_columns(
            ((pl.col("m_level") != pl.col("e_level")) | (pl.col("m_score") != pl.col("e_score"))
             | (pl.col("m_indicators").list.join(",") != pl.col("e_indicators").list.join(","))
             | (pl.col("m_month") != pl.col("e_month"))).alias("changed"))
    )
    changed = merged.filter(pl.col("changed"))
    summary.alerts_unchanged = merged.height - changed.height
    now = pl.lit(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), pl.Datetime("us"))
    names = _indicator_names(pl.col("indicators"), indicator_names)
    detail = pl.struct(pl.lit(month).alias("month"), "level", "score", "indicators").struct.json_encode()
    events: list[pl.DataFrame] = []  # alert_id, household_id, region_code, level, score, indicators, version, summary

    if new.height:
        # In household order: each row's foreign-key checks and index entries then visit the household and person
        # tables' pages in sequence (283,290 alerts of the benchmark province: 8.5 s against 12.0 s in random order).
        new = new.sort("household_id").with_columns(township_expr(pl.col("region_code")).alias("township_code"))
        insert_frame(session, Alert.__tablename__, new.select(
            "household_id", "person_id", "region_code", "township_code", "level", "score",
            pl.lit(AlertStatus.OPEN.value).alias("status"), _json_list(pl.col("indicators")).alias("indicators"),
            pl.lit(month).alias("month"), now.alias("raised_at"), now.alias("updated_at"), pl.lit(1).alias("version")))
        ids = read_frame(session, select(Alert.household_id, Alert.id).where(
            any_of(Alert.household_id, new["household_id"].to_list(), dialect), Alert.status == AlertStatus.OPEN.value),
            {"household_id": pl.Int64, "alert_id": pl.Int64})
        events.append(new.join(ids, on="household_id").select(
            "alert_id", "household_id", "region_code", "level", "score", "indicators",
            pl.lit(1, pl.Int64).alias("version"),
            pl.format("监测预警 {} (score {}, {}): {}; routed to township {}", "level", _score_text("score"),
                      pl.lit(month), names, "township_code").alias("summary"),
            pl.lit("raise_alert").alias("action")))
    if changed.height:
        changed = changed.with_columns((pl.col("e_version") + 1).cast(pl.Int64).alias("version"))
        update_frame(session, Alert.__tablename__, changed.select(
            pl.col("alert_id").alias("id"), pl.col("m_level").alias("level"), pl.col("m_score").alias("score"),
            _json_list(pl.col("m_indicators")).alias("indicators"), pl.col("m_month").alias("month"),
            pl.col("m_person_id").alias("person_id"), "version", now.alias("updated_at")))
        events.append(changed.select(
            "alert_id", "household_id", "region_code", pl.col("m_level").alias("level"),
            pl.col("m_score").alias("score"), pl.col("m_indicators").alias("indicators"), "version",
            pl.format("监测预警更新 {}→{} (score {}→{}, {}): {}", "e_level", "m_level", _score_text("e_score"),
                      _score_text("m_score"), pl.lit(month), _indicator_names(pl.col("m_indicators"),
                                                                              indicator_names)).alias("summary"),
            pl.lit("update_alert").alias("action")))
    if events:
        done = pl.concat(events)
        sealed = done.select(
            now.alias("at"), pl.lit(actor.username).alias("actor"), "action", pl.lit("alert").alias("object_type"),
            pl.col("alert_id").cast(pl.Utf8).alias("object_id"), "region_code",
            pl.lit(actor.remote_addr, pl.Utf8).alias("remote_addr"), detail.alias("detail"))
        insert_frame(session, AidChainEvent.__tablename__, done.select(
            "household_id", now.alias("at"), pl.lit(AidChainKind.ALERT.value).alias("kind"), "summary",
            pl.lit(MONITORING_PROGRAM).alias("program_key"), pl.lit("alert").alias("ref_type"),
            pl.col("alert_id").alias("ref_id"), pl.lit(actor.username).alias("actor")))
        insert_frame(session, Outbox.__tablename__, done.select(
            pl.lit(OutboxEntity.ALERT.value).alias("entity"), pl.col("alert_id").alias("entity_id"), "version",
            pl.lit(False).alias("deleted"), now.alias("created_at")))
        # Sealed as written, last: the chain's head is held from here to the commit.
        audit.append_sealed_frame(session, sealed)
    summary.alerts_raised = new.height
    summary.alerts_updated = changed.height


def _json_list(values: pl.Expr) -> pl.Expr:
    """A list-of-text column as JSON arrays (the JSON column's stored form): the value of a one-field object."""
    return pl.struct(values.alias("v")).struct.json_encode().str.slice(len('{"v":')).str.strip_suffix("}")


def _score_text(column: str) -> pl.Expr:
    """A score as Python's ``{:g}`` prints it for the scores we have (two decimals at most): 45, 45.5, 45.25."""
    return pl.col(column).round(2).cast(pl.Utf8).str.replace(r"\.0$", "")


Progress = Callable[[str], None]


def run_month(session: Session, province: str, month: str, *, params: Any, indicators: list[Indicator],
              category_programs: Mapping[str, str], actor: Actor, today: dt.date | None = None,
              progress: Progress | None = None) -> RunSummary:
    """Score the province for ``month`` and raise or update alerts; the caller owns the transaction.

    ``category_programs`` is the low-income table (program key -> category, from the plugins' declarations:
    :func:`aidgraph.core.policy.host.category_programs`) the indicators read a household's identity from."""
    today = today or dt.date.today()
    if not (province.isdigit() and len(province) == 2):
        raise MonitoringError(f"--province must be a 2-digit province code, not {province!r}")
    _, month_end = check_month(month, today)
    on = min(month_end, today)
    bands = bands_for(params, province, on)
    if not indicators:
        raise MonitoringError("no monitoring indicators are registered (is the relapse_monitoring plugin installed?)")
    weights = weights_for(params, province, indicators, on)
    summary = RunSummary(province, month)
    summary.illustrative = sorted(k for k in [BANDS_KEY, *(i.weight_key for i in indicators)]
                                  if getattr(params, "is_illustrative", lambda _k: False)(k))
    step = time.perf_counter()
    ctx = IndicatorContext(session, province, month, params, category_programs)
    scores = score_month(ctx, indicators, weights)
    summary.seconds["scoring"] = time.perf_counter() - step
    summary.persons_scored = scores.persons.height
    summary.households_scored = scores.households.height
    summary.hits_by_indicator = scores.hits_by_indicator
    if progress:
        progress("scored")
    step = time.perf_counter()
    households = scores.households
    levels = bands.classify(households["score"].to_numpy()) if households.height else []
    graded = households.with_columns(pl.Series("level", levels, dtype=pl.Utf8)).filter(pl.col("level").is_not_null())
    summary.households_by_level = dict(graded.group_by("level").len().iter_rows())
    # Each household's region, as the scoring read the province's households (a household outside it is not
    # the province's run's to alert)
    graded = graded.join(ctx.households_in_scope(), on="household_id", how="inner") \
        .with_columns(pl.lit(month).alias("month"))
    write_alerts(session, province, month, graded, actor, {i.key: i.name for i in indicators}, summary)
    summary.seconds["alerting"] = time.perf_counter() - step
    if progress:
        progress("alerted")
    return summary


# --- disposition (预警处置) -------------------------------------------------------------------------------------

ALERT_TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    # action: (statuses it may start from, status it leads to, disposition recorded)
    "START_VERIFICATION": (frozenset({"OPEN"}), "VERIFYING", "VERIFYING"),
    "ENROL": (frozenset({"VERIFYING"}), "RESOLVED", "ENROLLED"),
    "NO_ACTION_NEEDED": (frozenset({"VERIFYING"}), "DISMISSED", "NO_ACTION_NEEDED"),
    "REFER": (frozenset({"VERIFYING"}), "RESOLVED", "REFERRED"),
}
"""The township's disposition: verify first (入户核查), then enrol, find no action needed, or refer (转办)."""


@dataclass(frozen=True)
class Candidate:
    """A program the verification lists: due but not received (already aided) or appearing eligible."""

    program_key: str
    program_name: str
    reasons: tuple[str, ...]
    monthly_amount: float | None


@dataclass
class Verification:
    """What the caseworker is shown when verification starts (GS-2024: 已纳入救助的 check that every due
    policy is applied; 未纳入的 check eligibility through a home visit and economic verification)."""

    aided: bool
    receiving: tuple[str, ...]
    candidates: tuple[Candidate, ...]

    def summary(self) -> str:
        names = "、".join(f"{c.program_name} ({c.program_key})" for c in self.candidates) or "none"
        if self.aided:
            return f"already receives {', '.join(self.receiving)}; due programs not yet received: {names}"
        return f"receives no aid; programs the household appears eligible for: {names}"


@dataclass
class Disposition:
    alert_id: int
    status: str
    verification: Verification | None = None
    enrollment_id: int | None = None
    referral_id: int | None = None


VerifyFn = Callable[[Any, int], Any]
"""async (session, household_id) -> Verification."""
EnrolFn = Callable[..., Any]
"""async (session, actor, household_id, program_key) -> enrolment id (the workflow's apply_for_aid)."""
ReferFn = Callable[..., Any]
"""async (session, actor, household_id, note) -> referral id (the workflow's casework.create_referral: REFER
writes a referral record to a department; the monitoring floor cannot import the workflow floor)."""


async def policy_verification(session, policy_engine: Any, household_id: int, on: dt.date | None = None
                              ) -> Verification:
    """Eligibility of every program enabled in the household's province, by the policy engine (the same
    evaluation as EligibilityGaps), and the programs the household receives now."""

    receiving = tuple(sorted((await session.execute(
        select(Enrollment.program_key).where(Enrollment.household_id == household_id,
                                             Enrollment.status.in_([s.value for s in RECEIVING_ENROLLMENT_STATUSES]))
        .distinct())).scalars().all()))
    result = await policy_engine.evaluate(session, on=on, household_ids=[household_id])
    due = result.filter(pl.col("eligible") & ~pl.col("enrolled"))
    candidates = []
    for row in due.iter_rows(named=True):
        program = policy_engine.province(row["region_code"][:2]).program(row["program"])
        candidates.append(Candidate(row["program"], program.name if program else row["program"],
                                    tuple(row["reasons"] or ()), row["monthly_amount"]))
    return Verification(bool(receiving), receiving, tuple(candidates))


async def dispose_alert(session, actor: Actor, alert_id: int | None, action: str, note: str, *,
                        verify: VerifyFn | None = None, enrol: EnrolFn | None = None,
                        program_key: str | None = None, refer: ReferFn | None = None) -> Disposition:
    """Move an alert one step of its disposition; aid chain, audit and outbox rows in the same transaction.

    Never commits. Raises DomainError: NOT_FOUND (unknown or out of the caller's scope), FORBIDDEN (visible
    but not the caller's to dispose), VALIDATION (empty note), INVALID_TRANSITION (e.g. ENROL before
    verification).
    """

    if alert_id is None:
        raise not_found("alert", "alertId")
    alert = (await session.execute(
        select(Alert).where(Alert.id == alert_id, actor.scope("read", "alert").predicate(Alert.region_code))
        .with_for_update())).scalar_one_or_none()
    if alert is None:
        raise not_found("alert", "alertId")
    if not actor.may("dispose_alert", alert.region_code, "alert"):
        raise DomainError.single(ErrorCode.FORBIDDEN, "you may not dispose of alerts in this region", "alertId")
    if action not in ALERT_TRANSITIONS:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown action {action!r}", "action")
    if not note or not note.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "a note is required: say what was found or done", "note")
    allowed_from, to_status, disposition = ALERT_TRANSITIONS[action]
    if alert.status not in allowed_from:
        hint = " (start verification first)" if alert.status == "OPEN" else ""
        raise DomainError.single(ErrorCode.INVALID_TRANSITION,
                                 f"cannot {action} an alert that is {alert.status}{hint}", "action")
    note = note.strip()
    result = Disposition(alert.id, to_status)
    household_id = alert.household_id
    detail: dict[str, Any] = {"action": action, "from": alert.status, "to": to_status, "note": note}
    if action == "START_VERIFICATION":
        if verify is None:
            raise RuntimeError("dispose_alert needs a verify function for START_VERIFICATION")
        result.verification = await verify(session, household_id)
        summary = f"预警核实开始 (alert {alert.level}): {result.verification.summary()}. Note: {note}"
        detail["candidates"] = [c.program_key for c in result.verification.candidates]
        aidchain.append(session, household_id, AidChainKind.VERIFICATION, summary, program_key=MONITORING_PROGRAM,
                        ref_type="alert", ref_id=alert.id, actor=actor.username)
    elif action == "ENROL":
        if enrol is None:
            raise RuntimeError("dispose_alert needs an enrol function for ENROL")
        key = program_key or MONITORING_PROGRAM
        result.enrollment_id = await enrol(session, actor, household_id, key)
        detail.update(program=key, enrollment_id=result.enrollment_id)
        aidchain.append(session, household_id, AidChainKind.ALERT,
                        f"预警处置: 纳入救助 — application {result.enrollment_id} for {key}. Note: {note}",
                        program_key=key, ref_type="alert", ref_id=alert.id, actor=actor.username)
    elif action == "NO_ACTION_NEEDED":
        aidchain.append(session, household_id, AidChainKind.VERIFICATION,
                        f"预警核实: 无需救助 (no action needed). Note: {note}", program_key=MONITORING_PROGRAM,
                        ref_type="alert", ref_id=alert.id, actor=actor.username)
    else:
        aidchain.append(session, household_id, AidChainKind.REFERRAL, f"预警转办 (referred): {note}",
                        program_key=MONITORING_PROGRAM, ref_type="alert", ref_id=alert.id, actor=actor.username)
        if refer is not None:
            result.referral_id = await refer(session, actor, household_id, note)
            detail["referral_id"] = result.referral_id
    alert.status = to_status
    alert.disposition = disposition
    alert.disposition_note = note
    alert.version = alert.version + 1
    alert.updated_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    outbox.emit(session, OutboxEntity.ALERT, alert.id, alert.version)
    audit.record(session, actor, "dispose_alert", "alert", alert.id, alert.region_code, detail)
    await session.flush()
    return result
