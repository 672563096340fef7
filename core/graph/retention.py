"""Retention and deletion of personal data (PIPL Art. 19, 47: 保存期限应当为实现处理目的所必要的最短时间;
期限届满应当删除，法律、行政法规规定的保存期限未届满的，停止除存储和采取必要的安全保护措施之外的处理).

Each record class has a dated province parameter (``retention.<class>_months``: how long after it ended a record
stays live) and, where a statutory period applies, a hold (``retention.<class>_hold_months``: how long it must
still be stored). A run, for each class:

- deletes what is past its keeping period and past any hold;
- moves to ``retained_record`` (storage only) what is past its keeping period while the hold still runs: out of
  every live table, so no read path returns it, and out of search (a ``deleted`` outbox event per record);
- deletes stored-only records whose hold has ended.

A record another live record still references (for example an ended enrolment a newer one was transferred from)
is kept and counted. The audit log is pruned as a prefix of its hash chain, never below the legal minimum of six
months (网络安全法 第二十一条: 留存相关的网络日志不少于六个月), which the core declares here and the
parameter schema enforces when a province loads. Every run writes one audit row and returns a report;
running it again the same day finds nothing more to do.

The periods come from the policy floor (province parameters) as plain numbers: this floor only applies them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Table, and_, delete, func, or_, select

from aidgraph.core.access.actor import Actor
from aidgraph.core.graph import audit, outbox
from aidgraph.core.storage.models import (
    AidChainEvent,
    Alert,
    AlertStatus,
    AuditLog,
    Base,
    Enrollment,
    EnrollmentStatus,
    EnrollmentStep,
    OutboxEntity,
    Payment,
    RetainedRecord,
)

AUDIT_MINIMUM_MONTHS = 6
"""网络安全法 第二十一条: network logs are kept at least six months. A province configuring less fails to load."""


@dataclass(frozen=True)
class RecordClass:
    key: str
    description: str
    legal_minimum_months: int = 0
    hold: bool = False  # may a statutory storage period follow the keeping period?


ENDED_ENROLLMENTS = RecordClass("ended_enrollment", "ended, rejected or withdrawn enrolments with their payments, "
                                "steps and aid-chain entries", hold=True)
CLOSED_ALERTS = RecordClass("closed_alert", "resolved or dismissed monitoring alerts with their aid-chain entries",
                            hold=True)
REJECTED_FEED_ROWS = RecordClass("rejected_feed_row", "rows of department feeds rejected at import "
                                 "(FILE.rejected.csv beside the imported file)")
AUDIT_ROWS = RecordClass("audit", "audit log rows (who did or saw what, when, from where)",
                         legal_minimum_months=AUDIT_MINIMUM_MONTHS)
RECORD_CLASSES = (ENDED_ENROLLMENTS, CLOSED_ALERTS, REJECTED_FEED_ROWS, AUDIT_ROWS)

ENDED_STATUSES = (EnrollmentStatus.ENDED.value, EnrollmentStatus.REJECTED.value, EnrollmentStatus.WITHDRAWN.value)
CLOSED_ALERT_STATUSES = (AlertStatus.RESOLVED.value, AlertStatus.DISMISSED.value)


def months_before(day: dt.date, months: int) -> dt.date:
    """``day`` minus whole months (the last day of a shorter month when the day does not exist)."""
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def months_after(day: dt.date, months: int) -> dt.date:
    return months_before(day, -months)


@dataclass(frozen=True)
class Periods:
    """One province's periods in force on the run's day (months; hold None: no statutory storage period)."""

    province_code: str
    keep: dict[str, int]
    hold: dict[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for c in RECORD_CLASSES:
            if c.key not in self.keep:
                raise ValueError(f"province {self.province_code}: no retention period for {c.key}")
            if self.keep[c.key] < c.legal_minimum_months:
                raise ValueError(f"province {self.province_code}: retention.{c.key}_months {self.keep[c.key]} is "
                                 f"below the legal minimum of {c.legal_minimum_months} months")


@dataclass
class Report:
    today: dt.date
    dry_run: bool
    deleted: Counter = field(default_factory=Counter)
    stored_only: Counter = field(default_factory=Counter)
    kept_referenced: Counter = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    audit_pruned_through: int | None = None

    def as_dict(self) -> dict:
        return {"today": self.today.isoformat(), "dry_run": self.dry_run, "deleted": dict(sorted(self.deleted.items())),
                "stored_only": dict(sorted(self.stored_only.items())),
                "kept_referenced": dict(sorted(self.kept_referenced.items())), "files_deleted": self.files,
                "audit_pruned_through_seq": self.audit_pruned_through}


def _jsonable(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row_dict(table: Table, row) -> dict:
    return {c.name: _jsonable(getattr(row, c.name)) for c in table.columns}


def _referencing(table: Table, exclude: Iterable[str]) -> list:
    """Columns of other tables holding a foreign key to ``table.id`` (declared by anyone, plugins included)."""
    found = []
    for other in Base.metadata.tables.values():
        if other.name in exclude:
            continue
        for fk in other.foreign_keys:
            if fk.column.table is table:
                found.append(fk.parent)
    return found


def _chunks(ids: list[int], n: int = 500):
    for i in range(0, len(ids), n):
        yield ids[i:i + n]


Progress = Callable[[str, int], None]


def run(session, actor: Actor, periods: list[Periods], *, today: dt.date | None = None, dry_run: bool = False,
        progress: Progress | None = None) -> Report:
    """Apply every province's periods in the caller's transaction; the caller commits (or, dry run, rolls back)."""
    today = today or dt.date.today()
    report = Report(today=today, dry_run=dry_run)
    step = progress or (lambda _label, _n: None)
    for p in periods:
        _enrollments(session, p, today, report, dry_run, step)
        _alerts(session, p, today, report, dry_run, step)
    _release_holds(session, today, report, dry_run, step)
    if periods:
        _rejected_files(session, max(p.keep[REJECTED_FEED_ROWS.key] for p in periods), today, report, dry_run)
        _audit(session, max(p.keep[AUDIT_ROWS.key] for p in periods), today, report, dry_run, step)
    if not dry_run:
        audit.record(session, actor, "retention", "retention", None, None, report.as_dict())
    return report


def _dependants_clause(column, referencing: list):
    clauses = [~column.in_(select(ref).where(ref.is_not(None)).scalar_subquery()) for ref in referencing]
    return and_(*clauses) if clauses else None


def _enrollments(session, p: Periods, today, report: Report, dry_run: bool, step: Progress) -> None:
    key = ENDED_ENROLLMENTS.key
    cutoff = months_before(today, p.keep[key])
    moment = dt.datetime.combine(cutoff, dt.time())
    ended_before = or_(and_(Enrollment.end_date.is_not(None), Enrollment.end_date < cutoff),
                       and_(Enrollment.end_date.is_(None), Enrollment.decided_at.is_not(None),
                            Enrollment.decided_at < moment),
                       and_(Enrollment.end_date.is_(None), Enrollment.decided_at.is_(None),
                            Enrollment.updated_at < moment))
    table = Base.metadata.tables["enrollment"]
    referencing = _referencing(table, {"payment", "enrollment_step"})
    base = [Enrollment.region_code.startswith(p.province_code), Enrollment.status.in_(ENDED_STATUSES),
            ended_before]
    due = session.execute(select(Enrollment.id).where(*base)).scalars().all()
    free_clause = _dependants_clause(Enrollment.id, referencing)
    free = set(session.execute(select(Enrollment.id).where(*base, free_clause)).scalars().all()) \
        if free_clause is not None else set(due)
    report.kept_referenced[key] += len(due) - len(free)
    ids = sorted(free)
    hold = p.hold.get(key)
    for chunk in _chunks(ids):
        rows = session.execute(select(Enrollment).where(Enrollment.id.in_(chunk))).scalars().all()
        for e in rows:
            end = e.end_date or (e.decided_at or e.updated_at).date()
            hold_until = months_after(end, hold) if hold is not None else None
            keep_stored = hold_until is not None and hold_until > today
            if keep_stored:
                report.stored_only[key] += 1
            else:
                report.deleted[key] += 1
            if dry_run:
                continue
            payments = session.execute(select(Payment).where(Payment.enrollment_id == e.id)).scalars().all()
            if keep_stored:
                steps = session.execute(select(EnrollmentStep).where(EnrollmentStep.enrollment_id == e.id)).scalars()
                session.add(RetainedRecord(
                    record_class=key, object_type="enrollment", object_id=e.id, region_code=e.region_code,
                    ended_on=end, hold_until=hold_until,
                    payload={"enrollment": _row_dict(table, e),
                             "payment": [_row_dict(Base.metadata.tables["payment"], x) for x in payments],
                             "enrollment_step": [_row_dict(Base.metadata.tables["enrollment_step"], s)
                                                 for s in steps]}))
            payment_ids = [x.id for x in payments]
            session.execute(delete(AidChainEvent).where(or_(
                and_(AidChainEvent.ref_type == "enrollment", AidChainEvent.ref_id == e.id),
                and_(AidChainEvent.ref_type == "payment", AidChainEvent.ref_id.in_(payment_ids or [-1])))))
            session.execute(delete(Payment).where(Payment.enrollment_id == e.id))
            session.execute(delete(EnrollmentStep).where(EnrollmentStep.enrollment_id == e.id))
            session.execute(delete(Enrollment).where(Enrollment.id == e.id))
            outbox.emit(session, OutboxEntity.ENROLLMENT, e.id, (e.version or 1) + 1, deleted=True)
        step(key, len(rows))


def _alerts(session, p: Periods, today, report: Report, dry_run: bool, step: Progress) -> None:
    key = CLOSED_ALERTS.key
    cutoff = dt.datetime.combine(months_before(today, p.keep[key]), dt.time())
    table = Base.metadata.tables["alert"]
    referencing = _referencing(table, set())
    base = [Alert.region_code.startswith(p.province_code), Alert.status.in_(CLOSED_ALERT_STATUSES),
            Alert.updated_at < cutoff]
    due = session.execute(select(Alert.id).where(*base)).scalars().all()
    free_clause = _dependants_clause(Alert.id, referencing)
    ids = sorted(session.execute(select(Alert.id).where(*base, free_clause)).scalars().all()) \
        if free_clause is not None else sorted(due)
    report.kept_referenced[key] += len(due) - len(ids)
    hold = p.hold.get(key)
    for chunk in _chunks(ids):
        rows = session.execute(select(Alert).where(Alert.id.in_(chunk))).scalars().all()
        for a in rows:
            end = a.updated_at.date()
            hold_until = months_after(end, hold) if hold is not None else None
            keep_stored = hold_until is not None and hold_until > today
            (report.stored_only if keep_stored else report.deleted)[key] += 1
            if dry_run:
                continue
            if keep_stored:
                session.add(RetainedRecord(record_class=key, object_type="alert", object_id=a.id,
                                           region_code=a.region_code, ended_on=end, hold_until=hold_until,
                                           payload={"alert": _row_dict(table, a)}))
        if not dry_run:
            session.execute(delete(AidChainEvent).where(AidChainEvent.ref_type == "alert",
                                                        AidChainEvent.ref_id.in_(chunk)))
            session.execute(delete(Alert).where(Alert.id.in_(chunk)))
            for a in rows:
                outbox.emit(session, OutboxEntity.ALERT, a.id, (a.version or 1) + 1, deleted=True)
        step(key, len(rows))


def _release_holds(session, today, report: Report, dry_run: bool, step: Progress) -> None:
    """Stored-only records whose statutory period has ended are deleted for good."""
    ended = session.execute(select(RetainedRecord.record_class, func.count()).where(RetainedRecord.hold_until <= today)
                            .group_by(RetainedRecord.record_class)).all()
    for record_class, n in ended:
        report.deleted[f"{record_class} (stored only, hold ended)"] += n
        step(record_class, n)
    if not dry_run and ended:
        session.execute(delete(RetainedRecord).where(RetainedRecord.hold_until <= today))


def _rejected_files(session, keep_months: int, today, report: Report, dry_run: bool) -> None:
    key = REJECTED_FEED_ROWS.key
    cutoff = dt.datetime.combine(months_before(today, keep_months), dt.time()).timestamp()
    seen: set[str] = set()
    for detail in session.execute(select(AuditLog.detail).where(AuditLog.action == "import_feed")).scalars():
        source = (detail or {}).get("file") if isinstance(detail, dict) else None
        if not source:
            continue
        path = Path(str(source) + ".rejected.csv")
        if str(path) in seen or not path.is_file():
            continue
        seen.add(str(path))
        if os.stat(path).st_mtime < cutoff:
            report.deleted[key] += sum(1 for _ in path.open("rb")) - 1  # rows, without the header
            report.files.append(str(path))
            if not dry_run:
                path.unlink()


def _audit(session, keep_months: int, today, report: Report, dry_run: bool, step: Progress) -> None:
    key = AUDIT_ROWS.key
    if keep_months < AUDIT_MINIMUM_MONTHS:  # Periods refuses this already; a second guard where rows are deleted
        raise ValueError(f"audit rows are kept at least {AUDIT_MINIMUM_MONTHS} months")
    cutoff = dt.datetime.combine(months_before(today, keep_months), dt.time())
    audit.seal(session)
    # The chain can only lose a prefix: stop before the oldest row that must stay.
    first_kept = session.execute(select(func.min(AuditLog.seq)).where(AuditLog.at >= cutoff)).scalar()
    last_old = session.execute(select(func.max(AuditLog.seq)).where(AuditLog.at < cutoff)).scalar()
    if last_old is None:
        return
    through = last_old if first_kept is None else min(last_old, first_kept - 1)
    n = session.execute(select(func.count()).select_from(AuditLog).where(AuditLog.seq <= through)).scalar_one()
    if not n:
        return
    report.deleted[key] += n
    report.audit_pruned_through = through
    step(key, n)
    if not dry_run:
        audit.announce_pruning(session, through)
        session.execute(delete(AuditLog).where(AuditLog.seq <= through))


def write_report(report: Report, directory: Path) -> Path:
    """The run's deletion report as JSON in ``directory`` (one file per run, named by time)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"retention-{stamp}{'-dry-run' if report.dry_run else ''}.json"
    path.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return path
