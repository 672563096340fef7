"""The monthly monitoring run (低收入人口动态监测): score, grade, raise alerts, route them to townships.

``aidgraph monitor run --province CODE --month YYYY-MM`` computes every indicator the plugins contribute for
the whole province at once (each a SQL statement or a polars expression, see :mod:`core.indicators`),
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from core.actor import Actor
from core.indicators import Indicator, IndicatorContext, month_bounds
from core.models import (
    AidChainEvent,
    AidChainKind,
    Alert,
    AlertStatus,
    AuditLog,
    Household,
    Outbox,
    OutboxEntity,
    WarningLevel,
)
from core.scope import Scope

BANDS_KEY = "monitoring.bands"
SEVERITY = {WarningLevel.GREEN.value: 1, WarningLevel.BLUE.value: 2, WarningLevel.YELLOW.value: 3,
            WarningLevel.ORANGE.value: 4, WarningLevel.RED.value: 5}
"""Warning levels from lowest to highest. Both sources agree on the order of the levels they use."""

OPEN_STATUSES = (AlertStatus.OPEN.value, AlertStatus.VERIFYING.value)
MONITORING_PROGRAM = "relapse_monitoring"
"""Alerts are recorded in the aid chain under the monitoring program (防止返贫监测)."""

CHUNK = 5000


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
            if level not in SEVERITY:
                raise MonitoringError(f"{where}: {level!r} is not a warning level ({', '.join(SEVERITY)})")
            if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or minimum <= 0:
                raise MonitoringError(f"{where}: {level} must be a positive score, not {minimum!r}")
            levels.append((level, float(minimum)))
        levels.sort(key=lambda lv: SEVERITY[lv[0]])
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
    """Every indicator for the whole province, then person and household scores: set-at-a-time."""
    parts = []
    counts: dict[str, int] = {}
    for ind in indicators:
        hits = ind.compute(ctx)
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


def _household_regions(session: Session, ids: list[int]) -> pl.DataFrame:
    rows: list[tuple] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows.extend(session.execute(select(Household.id, Household.region_code).where(Household.id.in_(chunk))).all())
    return pl.DataFrame(rows, schema={"household_id": pl.Int64, "region_code": pl.Utf8}, orient="row")


def township_of(region_code: str) -> str:
    """The township an alert is routed to: the household's region at township level (9 digits).

    A household registered above township level is routed to that region itself, the nearest office.
    """
    return region_code[:9] if len(region_code) >= 9 else region_code


def _existing_alerts(session: Session, scope: Scope, month: str) -> pl.DataFrame:
    stmt = select(Alert.id, Alert.household_id, Alert.status, Alert.level, Alert.score, Alert.indicators, Alert.month,
                  Alert.person_id, Alert.version).where(
        scope.predicate(Alert.region_code), or_(Alert.status.in_(OPEN_STATUSES), Alert.month == month))
    rows = session.execute(stmt).all()
    return pl.DataFrame(
        [(r[0], r[1], r[2], r[3], float(r[4]), list(r[5] or []), r[6], r[7], r[8]) for r in rows], orient="row",
        schema={"alert_id": pl.Int64, "household_id": pl.Int64, "status": pl.Utf8, "e_level": pl.Utf8,
                "e_score": pl.Float64, "e_indicators": pl.List(pl.Utf8), "e_month": pl.Utf8, "e_person_id": pl.Int64,
                "e_version": pl.Int64})


def _names(keys: list[str], names: dict[str, str]) -> str:
    return "、".join(names.get(k, k) for k in keys)


def write_alerts(session: Session, province: str, month: str, graded: pl.DataFrame, actor: Actor,
                 indicator_names: dict[str, str], summary: RunSummary) -> None:
    """Raise alerts for newly graded households, update open ones; aid chain, audit and outbox rows in bulk."""
    scope = Scope.of([province])
    existing = _existing_alerts(session, scope, month)
    open_ = existing.filter(pl.col("status").is_in(OPEN_STATUSES))
    closed_this_month = existing.filter(~pl.col("status").is_in(OPEN_STATUSES) & (pl.col("e_month") == month))
    skipped = graded.join(open_.select("household_id"), on="household_id", how="anti") \
        .join(closed_this_month.select("household_id").unique(), on="household_id", how="semi")
    summary.skipped_closed_this_month = skipped.height
    new = graded.join(open_.select("household_id"), on="household_id", how="anti") \
        .join(closed_this_month.select("household_id"), on="household_id", how="anti")
    severity = pl.col("level").replace_strict(SEVERITY, return_dtype=pl.Int32)
    e_severity = pl.col("e_level").replace_strict(SEVERITY, return_dtype=pl.Int32)
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
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    chain: list[dict] = []
    audits: list[dict] = []
    outbox: list[dict] = []
    if new.height:
        rows = [
            {"household_id": h, "person_id": p, "region_code": r, "township_code": township_of(r), "level": lv,
             "score": s, "status": AlertStatus.OPEN.value, "indicators": ind, "month": month, "raised_at": now,
             "updated_at": now, "version": 1}
            for h, p, r, lv, s, ind in zip(*(new[c].to_list() for c in
                                              ("household_id", "person_id", "region_code", "level", "score",
                                               "indicators")))
        ]
        conn = session.connection()
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(Alert.__table__), rows[start:start + CHUNK])
        # A household has at most one open alert (partial unique index), so its id is found by household;
        # cheaper on both engines than RETURNING row by row.
        ids_by_household: dict[int, int] = {}
        households = [r["household_id"] for r in rows]
        for start in range(0, len(households), CHUNK):
            ids_by_household.update(conn.execute(
                select(Alert.household_id, Alert.id).where(Alert.household_id.in_(households[start:start + CHUNK]),
                                                           Alert.status == AlertStatus.OPEN.value)).all())
        ids = [ids_by_household[h] for h in households]
        for alert_id, row in zip(ids, rows):
            chain.append({"household_id": row["household_id"], "at": now, "kind": AidChainKind.ALERT.value,
                          "summary": f"监测预警 {row['level']} (score {row['score']:g}, {month}): "
                                     f"{_names(row['indicators'], indicator_names)}; "
                                     f"routed to township {row['township_code']}",
                          "program_key": MONITORING_PROGRAM, "ref_type": "alert", "ref_id": alert_id,
                          "actor": actor.username})
            audits.append({"at": now, "actor": actor.username, "action": "raise_alert", "object_type": "alert",
                           "object_id": str(alert_id), "region_code": row["region_code"],
                           "remote_addr": actor.remote_addr,
                           "detail": {"month": month, "level": row["level"], "score": row["score"],
                                      "indicators": row["indicators"]}})
            outbox.append({"entity": OutboxEntity.ALERT.value, "entity_id": alert_id, "version": 1,
                           "deleted": False, "created_at": now})
    if changed.height:
        updates = [
            {"id": a, "level": lv, "score": s, "indicators": ind, "month": m, "person_id": p, "version": v + 1,
             "updated_at": now}
            for a, lv, s, ind, m, p, v in zip(*(changed[c].to_list() for c in
                                                ("alert_id", "m_level", "m_score", "m_indicators", "m_month",
                                                 "m_person_id", "e_version")))
        ]
        session.execute(update(Alert), updates, execution_options={"synchronize_session": False})
        for u, h, r, old_level, old_score in zip(updates, *(changed[c].to_list() for c in
                                                            ("household_id", "region_code", "e_level", "e_score"))):
            chain.append({"household_id": h, "at": now, "kind": AidChainKind.ALERT.value,
                          "summary": f"监测预警更新 {old_level}→{u['level']} (score {old_score:g}→{u['score']:g}, "
                                     f"{month}): {_names(u['indicators'], indicator_names)}",
                          "program_key": MONITORING_PROGRAM, "ref_type": "alert", "ref_id": u["id"],
                          "actor": actor.username})
            audits.append({"at": now, "actor": actor.username, "action": "update_alert", "object_type": "alert",
                           "object_id": str(u["id"]), "region_code": r, "remote_addr": actor.remote_addr,
                           "detail": {"month": month, "level": u["level"], "score": u["score"],
                                      "indicators": u["indicators"]}})
            outbox.append({"entity": OutboxEntity.ALERT.value, "entity_id": u["id"], "version": u["version"],
                           "deleted": False, "created_at": now})
    for model, rows in ((AidChainEvent, chain), (AuditLog, audits), (Outbox, outbox)):
        for start in range(0, len(rows), CHUNK):
            # Core inserts: these rows need no ORM identity, and the ORM bulk path costs more per row.
            session.connection().execute(insert(model.__table__), rows[start:start + CHUNK])
    summary.alerts_raised = new.height
    summary.alerts_updated = changed.height


Progress = Callable[[str], None]


def run_month(session: Session, province: str, month: str, *, params: Any, indicators: list[Indicator],
              actor: Actor, today: dt.date | None = None, progress: Progress | None = None) -> RunSummary:
    """Score the province for ``month`` and raise or update alerts; the caller owns the transaction."""
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
    ctx = IndicatorContext(session, province, month, params)
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
    regions = _household_regions(session, graded["household_id"].to_list())
    graded = graded.join(regions, on="household_id", how="inner").with_columns(pl.lit(month).alias("month"))
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


VerifyFn = Callable[[Any, int], Any]
"""async (session, household_id) -> Verification."""
EnrolFn = Callable[..., Any]
"""async (session, actor, household_id, program_key) -> enrolment id (the workflow's apply_for_aid)."""


async def policy_verification(session, policy_engine: Any, household_id: int, on: dt.date | None = None
                              ) -> Verification:
    """Eligibility of every program enabled in the household's province, by the policy engine (the same
    evaluation as EligibilityGaps), and the programs the household receives now."""
    from core.models import RECEIVING_ENROLLMENT_STATUSES, Enrollment

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
                        program_key: str | None = None) -> Disposition:
    """Move an alert one step of its disposition; aid chain, audit and outbox rows in the same transaction.

    Never commits. Raises DomainError: NOT_FOUND (unknown or out of the caller's scope), FORBIDDEN (visible
    but not the caller's to dispose), VALIDATION (empty note), INVALID_TRANSITION (e.g. ENROL before
    verification).
    """
    from core import aidchain, audit, outbox
    from core.errors import DomainError, ErrorCode, not_found

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
    alert.status = to_status
    alert.disposition = disposition
    alert.disposition_note = note
    alert.version = alert.version + 1
    alert.updated_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    outbox.emit(session, OutboxEntity.ALERT, alert.id, alert.version)
    audit.record(session, actor, "dispose_alert", "alert", alert.id, alert.region_code, detail)
    await session.flush()
    return result
