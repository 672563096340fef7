"""Exports that people download (导出): household lists, alerts, audit reads, and kinds added above this floor
(eligibility gaps, 政策找人, by the app), as CSV (UTF-8 with BOM, so spreadsheet programs in China open it) or
XLSX, masked by the caller's rights exactly as the API masks (:mod:`aidgraph.core.graph.privacy`), watermarked
with who exported and when, and recorded as one audit row with the filter and the row count.

Authorisation is two decisions, both made once per export (never per row): the Casbin action
``export_<kind>`` on object ``export`` in the requested region (may this caller take this list away at
all?), and the kind's read scope (which rows: the same predicate the API's list applies in SQL, narrowed to the
region). A region outside either scope is refused before anything is read or written (:class:`ExportRefused`).

Rows are produced page by page (keyset on id) and encoded as they come: CSV goes out chunk by chunk; XLSX is
written by xlsxwriter in constant-memory mode into a temporary file and then streamed from disk. The audit row
is written (and sealed into the audit chain) when the last row has been encoded; an export that fails half-way
writes a ``export_failed`` audit row instead, so every file that left the server has its record.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from aidgraph.core.access.actor import Actor
from aidgraph.core.access.scope import Scope, is_level_code
from aidgraph.core.graph import audit, privacy, reads
from aidgraph.core.storage.models import Alert, AlertStatus, AuditLog, Enrollment, Household, LowIncomeCategory, Region, WarningLevel

FORMATS = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
EXPORT_OBJECT = "export"
PAGE = 1000
BOM = "\ufeff"
WATERMARK_MARK = "# aidgraph export"


class ExportRefused(Exception):
    """The caller may not export this (HTTP 403) or asked for something malformed (HTTP 400)."""

    def __init__(self, message: str, status: int = 403, code: str = "FORBIDDEN", field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.field = status, code, field

    def as_json(self) -> dict:
        return {"errors": [{"message": str(self), "field": self.field, "code": self.code}]}


@dataclass
class MaskingContext:
    """What :mod:`privacy` needs of a request: the actor (and the disclosures it notes, counted here)."""

    actor: Actor


Rows = Callable[["ExportJob", Any], AsyncIterator[list[list]]]


@dataclass(frozen=True)
class ExportKind:
    """One downloadable list: its columns and how its rows are read (already masked), page by page."""

    name: str
    title: str
    columns: tuple[tuple[str, str], ...]  # (key, header shown in the file: 中文 / English)
    read_action: str
    read_object: str
    rows: Rows
    filters: tuple[str, ...] = ()

    @property
    def action(self) -> str:
        return f"export_{self.name}"


@dataclass
class ExportJob:
    kind: ExportKind
    actor: Actor
    region_code: str
    filters: dict[str, str]
    fmt: str
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    scope: Scope = field(default_factory=Scope.nothing)
    context: MaskingContext | None = None
    rows_written: int = 0
    services: dict = field(default_factory=dict)
    category_programs: dict[str, str] = field(default_factory=dict)
    """Program key -> low-income category, from the deployment's program catalogue (``Program.category``)."""

    def watermark(self) -> list[str]:
        return [WATERMARK_MARK, f"exported by {self.actor.username} ({self.actor.display_name})",
                f"at {self.at.isoformat(timespec='seconds')}Z", f"kind {self.kind.name}",
                "filter " + json.dumps(self.filter_detail(), ensure_ascii=False, sort_keys=True),
                "仅限社会救助工作使用，不得扩散 (for social-assistance work only; do not pass on)"]

    def filter_detail(self) -> dict:
        return {"regionCode": self.region_code, **self.filters}

    def filename(self) -> str:
        return f"{self.kind.name}-{self.region_code}-{self.at.strftime('%Y%m%dT%H%M%S')}.{self.fmt}"


KINDS: dict[str, ExportKind] = {}
FILTER_VALUES: dict[str, frozenset[str]] = {
    "category": frozenset(c.value for c in LowIncomeCategory),
    "warningLevel": frozenset(w.value for w in WarningLevel),
    "level": frozenset(w.value for w in WarningLevel),
    "status": frozenset(s.value for s in AlertStatus),
}


def register(kind: ExportKind) -> ExportKind:
    """Add a kind (the app adds eligibility gaps, which need the policy engine above this floor)."""
    KINDS[kind.name] = kind
    return kind


def prepare(actor: Actor, kind_name: str, region_code: str | None, filters: dict[str, str], fmt: str,
            services: dict | None = None, *, category_programs: dict[str, str]) -> ExportJob:
    """Check everything before a byte is read or written; raise :class:`ExportRefused` with the reason."""
    kind = KINDS.get(kind_name)
    if kind is None:
        raise ExportRefused(f"unknown export {kind_name!r} (known: {', '.join(sorted(KINDS))})", 404, "NOT_FOUND",
                            "kind")
    if fmt not in FORMATS:
        raise ExportRefused(f"format must be csv or xlsx, not {fmt!r}", 400, "VALIDATION", "format")
    if not region_code or not is_level_code(region_code):
        raise ExportRefused("regionCode must be a region code (2, 4, 6, 9 or 12 digits)", 400, "VALIDATION",
                            "regionCode")
    unknown = sorted(set(filters) - set(kind.filters))
    if unknown:
        raise ExportRefused(f"unknown filter {unknown[0]!r} for {kind.name} (known: {', '.join(kind.filters)})",
                            400, "VALIDATION", unknown[0])
    for name, value in filters.items():
        allowed = FILTER_VALUES.get(name)
        if allowed is not None and value not in allowed:
            raise ExportRefused(f"{name} must be one of {', '.join(sorted(allowed))}, not {value!r}", 400,
                                "VALIDATION", name)
    if "month" in filters and not (len(filters["month"]) == 7 and filters["month"][4] == "-"
                                   and filters["month"].replace("-", "").isdigit()):
        raise ExportRefused("month must be YYYY-MM", 400, "VALIDATION", "month")
    if "since" in filters:
        try:
            dt.date.fromisoformat(filters["since"])
        except ValueError:
            raise ExportRefused("since must be a date (YYYY-MM-DD)", 400, "VALIDATION", "since") from None
    if not actor.may(kind.action, region_code, EXPORT_OBJECT):
        raise ExportRefused(f"you may not export {kind.name} in region {region_code}", 403, "FORBIDDEN", "regionCode")
    read = actor.scope(kind.read_action, kind.read_object)
    if not read.contains(region_code):
        raise ExportRefused(f"region {region_code} is outside your data scope", 403, "FORBIDDEN", "regionCode")
    return ExportJob(kind=kind, actor=actor, region_code=region_code, filters=dict(filters), fmt=fmt,
                     scope=read.narrow(region_code), context=MaskingContext(actor), services=services or {},
                     category_programs=category_programs)


# --- encoders ---------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


async def _csv(job: ExportJob, pages: AsyncIterator[list[list]]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(job.watermark())
    writer.writerow([header for _, header in job.kind.columns])
    async for page in pages:
        for row in page:
            writer.writerow([_cell(v) for v in row])
            job.rows_written += 1
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    writer.writerow([WATERMARK_MARK + " end", f"{job.rows_written} rows", job.actor.username,
                     job.at.isoformat(timespec="seconds") + "Z"])
    yield buffer.getvalue().encode("utf-8")


async def _xlsx(job: ExportJob, pages: AsyncIterator[list[list]]) -> AsyncIterator[bytes]:
    import xlsxwriter  # local: ~20 ms at import, only XLSX exports need it (not every CLI or server start)

    fd, path = tempfile.mkstemp(prefix="aidgraph-export-", suffix=".xlsx")
    os.close(fd)
    try:
        book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_numbers": False,
                                          "strings_to_formulas": False, "strings_to_urls": False})
        mark = " ".join(job.watermark()[1:3])
        book.set_properties({"title": f"aidgraph {job.kind.name}", "author": job.actor.username,
                             "comments": " | ".join(job.watermark()), "created": job.at})
        sheet = book.add_worksheet(job.kind.name[:31])
        sheet.set_header(f"&L{mark}&R{job.kind.title}")
        sheet.set_footer("&L仅限社会救助工作使用，不得扩散&R&P / &N")
        bold = book.add_format({"bold": True})
        sheet.write_row(0, 0, job.watermark())
        sheet.write_row(1, 0, [header for _, header in job.kind.columns], bold)
        r = 2
        async for page in pages:
            for row in page:
                sheet.write_row(r, 0, [_cell(v) for v in row])
                r += 1
                job.rows_written += 1
        sheet.write_row(r, 0, [WATERMARK_MARK + " end", f"{job.rows_written} rows", job.actor.username,
                               job.at.isoformat(timespec="seconds") + "Z"])
        book.close()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 16):
                yield chunk
    finally:
        os.unlink(path)


async def stream(job: ExportJob, session_factory) -> AsyncIterator[bytes]:
    """The file's bytes as they are produced; the audit row is committed before the last chunk is handed out."""
    encode = _csv if job.fmt == "csv" else _xlsx
    disclosed: dict[str, int] = {}  # field -> records shown in full (the API writes a row per record; an
    ok = False                      # export writes one row naming the filter that reproduces them)

    async def counted(pages: AsyncIterator[list[list]]) -> AsyncIterator[list[list]]:
        async for page in pages:
            for entry in privacy.disclosures(job.context).values():
                for f in entry["fields"]:
                    disclosed[f] = disclosed.get(f, 0) + 1
            privacy.disclosures(job.context).clear()
            yield page

    try:
        async with session_factory() as session:
            pending: bytes | None = None
            async for chunk in encode(job, counted(job.kind.rows(job, session))):
                if pending is not None:
                    yield pending
                pending = chunk
            await session.rollback()
            _record(session, job, "export", disclosed)
            await session.commit()
            ok = True
            if pending is not None:
                yield pending
    finally:
        if not ok:
            async with session_factory() as session:
                _record(session, job, "export_failed", disclosed)
                await session.commit()


def _record(session, job: ExportJob, action: str, disclosed: dict[str, int]) -> None:
    audit.record(session, job.actor, action, EXPORT_OBJECT, None, job.region_code,
                 {"kind": job.kind.name, "format": job.fmt, "filter": job.filter_detail(), "rows": job.rows_written,
                  "at": job.at.isoformat(timespec="seconds"), "disclosed": dict(sorted(disclosed.items()))})


# --- the core's kinds -----------------------------------------------------------------------------------


async def _household_rows(job: ExportJob, session) -> AsyncIterator[list[list]]:
    clauses = reads.household_filter_clauses(job.filters.get("category"), job.filters.get("warningLevel"),
                                             job.filters.get("programKey"), job.filters.get("nameContains"),
                                             job.category_programs)
    where = [job.scope.predicate(Household.region_code), *clauses]
    enrollment_visible = job.actor.scope("read", "enrollment").predicate(Enrollment.region_code)
    after = 0
    while True:
        rows = list((await session.execute(select(Household, Region.name).join(Region, Region.code == Household.region_code)
                                           .where(*where, Household.id > after).order_by(Household.id)
                                           .limit(PAGE))).all())
        if not rows:
            return
        ids = [h.id for h, _ in rows]
        heads = await reads.heads_by_household(session, job.scope, ids)
        counts = await reads.member_counts(session, job.scope, ids)
        categories = await reads.categories_by_household(session, enrollment_visible, ids, job.category_programs)
        levels = await reads.warning_levels_by_household(session, job.actor.scope("read", "alert"), ids)
        page = []
        for h, region_name in rows:
            head = heads.get(h.id)
            page.append([h.id, h.household_number, h.region_code, region_name, h.address,
                         head.name if head else None,
                         privacy.id_number(job.context, head) if head else None,
                         privacy.phone(job.context, head) if head else None,
                         counts.get(h.id, 0), categories.get(h.id, []), levels.get(h.id)])
        yield page
        after = ids[-1]


async def _alert_rows(job: ExportJob, session) -> AsyncIterator[list[list]]:
    where = [job.scope.predicate(Alert.region_code)]
    if job.filters.get("level"):
        where.append(Alert.level == job.filters["level"])
    if job.filters.get("status"):
        where.append(Alert.status == job.filters["status"])
    if job.filters.get("month"):
        where.append(Alert.month == job.filters["month"])
    after = 0
    while True:
        rows = list((await session.execute(select(Alert, Household.household_number)
                                           .join(Household, Household.id == Alert.household_id)
                                           .where(*where, Alert.id > after).order_by(Alert.id).limit(PAGE))).all())
        if not rows:
            return
        yield [[a.id, hn, a.region_code, a.township_code, a.level, float(a.score), a.status, a.month,
                privacy.visible_indicators(job.context, a.region_code, list(a.indicators or [])), a.raised_at,
                privacy.free_text(job.context, a.region_code, a.disposition)] for a, hn in rows]
        after = rows[-1][0].id


async def _audit_rows(job: ExportJob, session) -> AsyncIterator[list[list]]:
    since = dt.date.fromisoformat(job.filters["since"]) if job.filters.get("since") else None
    where = privacy.audit_filter(job.scope, job.filters.get("user"), since, job.filters.get("action"))
    after = 0
    while True:
        rows = list((await session.execute(select(AuditLog).where(*where, AuditLog.id > after)
                                           .order_by(AuditLog.id).limit(PAGE))).scalars())
        if not rows:
            return
        yield [[r.id, r.seq, r.at, r.actor, r.action, r.object_type, r.object_id, r.region_code, r.remote_addr,
                privacy.audit_detail(job.context, r.region_code, r.object_type, r.detail), r.row_hash] for r in rows]
        after = rows[-1].id


HOUSEHOLDS = register(ExportKind(
    "households", "户籍家庭名单 household list",
    (("id", "ID"), ("household_number", "户编号 household number"), ("region_code", "区划代码 region code"),
     ("region_name", "区划 region"), ("address", "地址 address"), ("head_name", "户主 head"),
     ("head_id_number", "户主身份证号 head ID number"), ("head_phone", "电话 phone"), ("members", "人数 members"),
     ("categories", "低收入类别 categories"), ("warning_level", "预警等级 warning level")),
    "read", "household", _household_rows, ("category", "warningLevel", "programKey", "nameContains")))

ALERTS = register(ExportKind(
    "alerts", "监测预警 alerts",
    (("id", "ID"), ("household_number", "户编号 household number"), ("region_code", "区划代码 region code"),
     ("township_code", "乡镇 township"), ("level", "预警等级 level"), ("score", "分值 score"),
     ("status", "状态 status"), ("month", "月份 month"), ("indicators", "指标 indicators"),
     ("raised_at", "预警时间 raised at"), ("disposition", "处置 disposition")),
    "read", "alert", _alert_rows, ("level", "status", "month")))

AUDIT = register(ExportKind(
    "audit", "审计日志 audit log",
    (("id", "ID"), ("seq", "链序号 chain position"), ("at", "时间 at (UTC)"), ("actor", "用户 user"),
     ("action", "操作 action"), ("object_type", "对象 object"), ("object_id", "对象ID object id"),
     ("region_code", "区划代码 region code"), ("remote_addr", "来源 from"), ("detail", "详情 detail"),
     ("row_hash", "哈希 row hash")),
    "audit_read", "audit", _audit_rows, ("user", "since", "action")))
