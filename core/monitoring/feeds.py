"""Department feeds (部门数据比对): reading, validating and storing the monthly files departments send.

Departments (医保 medical insurance, 教育 education, 残联 disabled persons' federation, 人社 human resources and
social security, 公安/户籍 public security, and the economic-verification sources: tax, social insurance,
real estate, vehicles, banks) send CSV files with a header row, or JSON lines with the same keys, often in
GBK. Each kind has a declared schema (:data:`FEEDS`); every row is validated (ID number through
:mod:`aidgraph.core.graph.idnumber`, dates, months, amounts, codes), rejected rows are reported with their line number and
reason, and the good rows are kept. A row's ``row_hash`` (a keyed hash of its normalised values: the row holds
an ID number) makes re-importing the same row a no-op, whatever file it comes in.

The work is set-at-a-time: the whole file is validated as polars columns, persons are looked up by ID number
in one statement, feed records and their effects (person flags, outbox rows) are written in bulk
(:mod:`aidgraph.core.storage.bulk`: COPY on PostgreSQL), one transaction per batch, so an interrupted import can
simply be run again. The rows of the income and asset feeds are economic items and are stored once, as those
items (:data:`ITEM_FEEDS`); on PostgreSQL a large item file of one new month is stored in one transaction as
that month's partition, its indexes built after its rows (:func:`store_month`). A file naming most of the
province's persons reads every person while it is validated (:func:`read_person_directory`).
Persons the platform does not know are reported, never invented.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, Select, String, and_, cast, func, null, or_, select, update
from sqlalchemy.orm import Session

from aidgraph.core.graph import audit
from aidgraph.core.access.actor import Actor, system_actor
from aidgraph.core.storage.validity import valid_on
from aidgraph.core.storage.bulk import (
    Staged,
    StageImage,
    any_of,
    attached_stage,
    dialect_of,
    insert_frame,
    lock_for_writing,
    read_frame,
    stage_image,
)
from aidgraph.core.storage.checkpoints import background_checkpoints
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.crypto import sha256_hex_expr
from aidgraph.core.storage.encrypted import feed_row_hash_expr, id_number_index_expr
from aidgraph.core.storage.partitions import (
    Ensured,
    MonthLoad,
    ensure_months,
    load_month,
    month_is_empty,
    month_of,
    months_of,
    unhandled_triggers,
)
from aidgraph.core.graph.idnumber import CHECK_CHARS, EARLIEST_BIRTH, WEIGHTS, InvalidIdNumber
from aidgraph.core.graph.idnumber import parse as parse_id_number
from aidgraph.core.storage.models import (
    ASSET_KINDS,
    EXPENDITURE_KINDS,
    FED_ITEM_KEYS,
    INCOME_KINDS,
    DecisionStale,
    EconomicItem,
    FeedRecord,
    Household,
    Membership,
    Outbox,
    OutboxEntity,
    Person,
)

STORE_BATCH = 250_000
"""Rows per stored batch (one transaction each): an interrupted import keeps its finished batches, and
re-running it skips them by their row hashes. Large, because a batch rewrites the index pages it touches
once at its commit, however many of its rows land on each."""

MONTH_LOAD_MIN_ROWS = 50_000
"""An item file (:data:`ITEM_FEEDS`) with at least this many rows to store, all of one month whose partition is
still empty, is stored in one transaction as that month's new partition (PostgreSQL,
:func:`store_month`) instead of in batches through the parent table. An engineering setting: below it the
batches are quick anyway, and they hold no lock that makes other writers wait."""

STALE_GUARD = "EXISTS (SELECT 1 FROM decision_snapshot) OR EXISTS (SELECT 1 FROM household_frame_set)"
"""When a change to a household's facts is marked in ``decision_stale``: while decisions or household frames are
kept (the guard of the insert triggers of migrations 0011 and 0023, which a test compares with the live trigger
function). :func:`store_month` marks the households of the items it loads with it, as the trigger would."""

MAX_AMOUNT = 1_000_000_000_000  # Numeric(14, 2)


class FeedFileError(Exception):
    """The file as a whole cannot be read (missing, undecodable, wrong header): the import stops, exit non-zero."""


# --- declared schemas ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One declared column: its type decides how the value is validated and normalised.

    Types: ``id_number``, ``text``, ``date``, ``month`` (YYYY-MM), ``year``, ``amount`` (yuan, >= 0, at most
    two decimals), ``int`` (between ``minimum`` and ``maximum``), ``enum`` (one of ``choices``; ``aliases``
    maps accepted spellings, e.g. Chinese names, to a choice).
    """

    name: str
    type: str
    required: bool = True
    choices: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = 200


@dataclass(frozen=True)
class FeedSchema:
    """A feed kind: who sends it, its columns, and which column dates the event."""

    kind: str
    department: str
    columns: tuple[Column, ...]
    event_column: str

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The columns' names, in order (made once: the readers use them for every row)."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


_ID = Column("id_number", "id_number")
_NAME = Column("name", "text", required=False, max_length=50)

DISABILITY_CATEGORIES = ("VISUAL", "HEARING", "SPEECH", "PHYSICAL", "INTELLECTUAL", "MENTAL", "MULTIPLE")
"""残疾类别: 视力, 听力, 言语, 肢体, 智力, 精神, 多重 (the disabled persons' federation's seven categories)."""

_DISABILITY_ALIASES = {"视力": "VISUAL", "听力": "HEARING", "言语": "SPEECH", "肢体": "PHYSICAL", "智力": "INTELLECTUAL",
                       "精神": "MENTAL", "多重": "MULTIPLE"}

FLOW_KINDS = tuple(sorted(k.value for k in INCOME_KINDS | EXPENDITURE_KINDS))
ASSET_KIND_VALUES = tuple(sorted(k.value for k in ASSET_KINDS))
_ASSET_ALIASES = {"存款": "DEPOSIT", "证券": "SECURITIES", "不动产": "REAL_ESTATE", "车辆": "VEHICLE",
                  "住房公积金": "HOUSING_PROVIDENT_FUND", "商业保险": "COMMERCIAL_INSURANCE",
                  "互联网金融资产": "INTERNET_FINANCE"}
"""The registries' own words for the asset kinds (GD-2021 §5: 不动产登记、住房公积金缴存、车船登记，以及银行、商业保险、
证券、互联网金融资产)."""

ITEM_FEEDS = frozenset({"income", "assets"})
"""The feeds whose rows are economic items (家庭经济状况核对: a person's income of a month, an asset's value): each
row is stored once, as its ``economic_item`` with the row's hash, file and line (migration 0027); the other
feeds' rows are ``feed_record`` rows, whose payloads no other table holds."""

FEEDS: dict[str, FeedSchema] = {
    s.kind: s
    for s in (
        FeedSchema("hospitalisation", "医保 medical insurance bureau", (
            _ID, _NAME, Column("admission_date", "date"), Column("discharge_date", "date", required=False),
            Column("hospital", "text"), Column("diagnosis", "text", required=False), Column("total_cost", "amount"),
            Column("compliant_cost", "amount"), Column("insurance_paid", "amount"),
        ), "admission_date"),
        FeedSchema("disease", "卫健/医保 health and medical insurance", (
            _ID, _NAME, Column("disease_kind", "enum", choices=("CHRONIC", "MAJOR"),
                               aliases={"慢性病": "CHRONIC", "重大疾病": "MAJOR", "大病": "MAJOR"}),
            Column("diagnosis", "text"), Column("certified_date", "date"),
        ), "certified_date"),
        FeedSchema("college_admission", "教育 education department", (
            _ID, _NAME, Column("admission_year", "year"), Column("institution", "text"),
            # A college admission is higher education: the contract's VOCATIONAL (高职) is a higher vocational
            # college (JUNIOR_COLLEGE, one of GS-2024's 本专科生), not secondary vocational school.
            Column("stage", "enum", choices=("UNDERGRADUATE", "JUNIOR_COLLEGE", "PREPARATORY", "SECOND_DEGREE",
                                             "POSTGRADUATE"),
                   aliases={"本科": "UNDERGRADUATE", "专科": "JUNIOR_COLLEGE", "高职": "JUNIOR_COLLEGE",
                            "VOCATIONAL": "JUNIOR_COLLEGE", "vocational": "JUNIOR_COLLEGE", "预科": "PREPARATORY",
                            "第二学士学位": "SECOND_DEGREE", "研究生": "POSTGRADUATE"}),
            Column("annual_tuition", "amount"),
        ), "admission_year"),
        FeedSchema("disability", "残联 disabled persons' federation", (
            _ID, _NAME, Column("disability_category", "enum", choices=DISABILITY_CATEGORIES,
                               aliases=_DISABILITY_ALIASES),
            Column("disability_level", "int", minimum=1, maximum=4), Column("certified_date", "date"),
        ), "certified_date"),
        FeedSchema("unemployment", "人社 human resources and social security", (
            _ID, _NAME, Column("registered_date", "date"),
            Column("status", "enum", choices=("REGISTERED", "REEMPLOYED"),
                   aliases={"登记失业": "REGISTERED", "再就业": "REEMPLOYED"}),
        ), "registered_date"),
        FeedSchema("income", "税务/社保/民政 tax, social insurance, civil affairs", (
            _ID, Column("period", "month"), Column("kind", "enum", choices=FLOW_KINDS),
            Column("amount", "amount"), Column("source", "text", max_length=40),
        ), "period"),
        FeedSchema("household_event", "公安/户籍 public security", (
            _ID, Column("event", "enum", choices=("DEATH", "BIRTH", "MOVE_IN", "MOVE_OUT", "MARRIAGE", "DIVORCE"),
                        aliases={"死亡": "DEATH", "出生": "BIRTH", "迁入": "MOVE_IN", "迁出": "MOVE_OUT",
                                 "结婚": "MARRIAGE", "离婚": "DIVORCE"}),
            Column("event_date", "date"), Column("household_number", "text", required=False, max_length=24),
        ), "event_date"),
        FeedSchema("assets", "不动产/车管/公积金/银行/保险/证券/互联网金融 real estate, vehicles, provident fund, banks, "
                             "insurance, securities, internet finance", (
            _ID, Column("kind", "enum", choices=ASSET_KIND_VALUES, aliases=_ASSET_ALIASES), Column("amount", "amount"),
            Column("as_of", "date"), Column("source", "text", max_length=40),
        ), "as_of"),
    )
}

ACADEMIC_YEAR_START = (9, 1)
"""College admission is dated to the start of the academic year (秋季入学, 1 September of admission_year):
the feed gives the year only, and the tuition burden begins then."""


# --- reading --------------------------------------------------------------------------------------------------


@dataclass
class RawFeed:
    """The file's rows as strings, before validation."""

    columns: tuple[str, ...]
    frame: pl.DataFrame  # one Utf8 column per declared column, plus "line" (Int64)
    early_rejects: list[tuple[int, str, dict]]  # (line, reason, raw values): rows that could not even be split
    encoding: str
    format: str


def decode(data: bytes, encoding: str | None, path: Path) -> tuple[str, str]:
    """The file's text and the encoding used: the given one, else UTF-8 (with or without BOM), else GB18030/GBK."""
    if encoding:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise FeedFileError(f"{path.name}: unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise FeedFileError(f"{path.name}: not valid {encoding} at line {line} (byte {exc.start})") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            # GB18030 is a superset of GBK and GB2312, the encodings departments' exports use.
            return data.decode("gb18030"), "gbk"
        except UnicodeDecodeError:
            line = data[: utf8_error.start].count(b"\n") + 1
            raise FeedFileError(
                f"{path.name}: neither UTF-8 nor GBK (first bad byte at line {line}); pass --encoding"
            ) from None


def _header_error(path: Path, schema: FeedSchema, found: Iterable[str]) -> FeedFileError | None:
    found_list = list(found)
    missing = [c for c in schema.names if c not in found_list]
    unknown = [c for c in found_list if c not in schema.names]
    duplicated = sorted({c for c in found_list if found_list.count(c) > 1})
    if not (missing or unknown or duplicated):
        return None
    parts = []
    if missing:
        parts.append("missing columns: " + ", ".join(missing))
    if unknown:
        parts.append("unknown columns: " + ", ".join(unknown))
    if duplicated:
        parts.append("repeated columns: " + ", ".join(duplicated))
    return FeedFileError(f"{path.name}: wrong header for feed kind {schema.kind!r}: {'; '.join(parts)} "
                         f"(expected {', '.join(schema.names)})")


def _normalise_key(key: str) -> str:
    return key.strip().lstrip("\ufeff").strip().lower()


def read_feed(path: Path, schema: FeedSchema, encoding: str | None = None) -> RawFeed:
    """Read a CSV (with header) or JSON-lines file into string columns with their line numbers."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FeedFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    text, used = decode(data, encoding, path)
    stripped = text.lstrip()
    if not stripped:
        raise FeedFileError(f"{path.name}: the file is empty (expected a header: {', '.join(schema.names)})")
    if stripped[0] == "{":
        return _read_jsonl(text, schema, path, used)
    if '"' not in text and text.count("\r") == text.count("\r\n"):
        # No quoting and no bare carriage return: every physical line is one record (the common export).
        return _read_unquoted_csv(text, schema, path, used)
    return _read_quoted_csv(text, schema, path, used)


def _raw_feed(schema: FeedSchema, columns: dict[str, list[str]], lines: list[int],
              early: list[tuple[int, str, dict]], encoding: str, fmt: str) -> RawFeed:
    frame = pl.DataFrame({"line": pl.Series(lines, dtype=pl.Int64),
                          **{c: pl.Series(v, dtype=pl.Utf8) for c, v in columns.items()}})
    return RawFeed(schema.names, frame, early, encoding, fmt)


def _read_jsonl(text: str, schema: FeedSchema, path: Path, encoding: str) -> RawFeed:
    """JSON lines: one object per line with the same keys as the CSV header; the first object's keys play the
    header's part (a wrong set is a whole-file error), a later line with other keys is a rejected row."""
    columns: dict[str, list[str]] = {c: [] for c in schema.names}
    lines: list[int] = []
    early: list[tuple[int, str, dict]] = []
    header_checked = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            early.append((number, f"not valid JSON: {exc.msg}", {"raw": line[:200]}))
            continue
        if not isinstance(obj, dict):
            early.append((number, "not a JSON object", {"raw": line[:200]}))
            continue
        obj = {_normalise_key(str(k)): v for k, v in obj.items()}
        if not header_checked:
            error = _header_error(path, schema, obj.keys())
            if error:
                raise error
            header_checked = True
        missing = [c for c in schema.names if c not in obj]
        unknown = [k for k in obj if k not in columns]
        if missing or unknown:
            reason = "; ".join(filter(None, [
                "missing keys: " + ", ".join(missing) if missing else "",
                "unknown keys: " + ", ".join(unknown) if unknown else ""]))
            early.append((number, reason, {k: _as_text(v) for k, v in obj.items() if k in columns}))
            continue
        for c in schema.names:
            columns[c].append(_as_text(obj[c]))
        lines.append(number)
    if not header_checked:
        raise FeedFileError(f"{path.name}: no JSON object found")
    return _raw_feed(schema, columns, lines, early, encoding, "jsonl")


def _read_quoted_csv(text: str, schema: FeedSchema, path: Path, encoding: str) -> RawFeed:
    """CSV through the ``csv`` module: quoted fields may hold commas, quotes and line breaks; a record's line
    number is the line it ends on."""
    columns: dict[str, list[str]] = {c: [] for c in schema.names}
    lines: list[int] = []
    early: list[tuple[int, str, dict]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise FeedFileError(f"{path.name}: header cannot be read: {exc}") from None
    header = [_normalise_key(h) for h in header]
    error = _header_error(path, schema, header)
    if error:
        raise error
    # Each column's list's append and its field's position in a row, looked up once
    appends = [(columns[c].append, header.index(c)) for c in schema.names]
    width = len(header)
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                early.append((reader.line_num, f"expected {width} fields, found {len(row)}", dict(zip(header, row))))
                continue
            for append, position in appends:
                append(row[position])
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise FeedFileError(f"{path.name}, line {reader.line_num}: {exc}") from None
    return _raw_feed(schema, columns, lines, early, encoding, "csv")


def _read_unquoted_csv(text: str, schema: FeedSchema, path: Path, encoding: str) -> RawFeed:
    """A CSV file without any quote character, split as polars columns: the same rows, line numbers and
    reasons as the ``csv`` module gives for such a file, without a Python loop per row."""
    physical = pl.Series("raw", text.split("\n"), dtype=pl.Utf8).str.strip_suffix("\r")
    header = [_normalise_key(h) for h in physical[0].split(",")]
    error = _header_error(path, schema, header)
    if error:
        raise error
    width = len(header)
    body = (physical.to_frame().with_row_index("line", offset=1).slice(1)
            .filter(pl.col("raw").str.strip_chars() != "")
            .with_columns(pl.col("line").cast(pl.Int64), pl.col("raw").str.split(",").alias("fields"))
            .with_columns(pl.col("fields").list.len().alias("width")))
    ragged = body.filter(pl.col("width") != width)
    early = [(line, f"expected {width} fields, found {n}", dict(zip(header, fields)))
             for line, fields, n in ragged.select("line", "fields", "width").iter_rows()]
    rows = body.filter(pl.col("width") == width)
    frame = rows.select("line", *[pl.col("fields").list.get(header.index(c)).alias(c) for c in schema.names])
    return RawFeed(schema.names, frame, early, encoding, "csv")


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- validation -----------------------------------------------------------------------------------------------


@dataclass
class Validated:
    """Rows that passed every check (normalised, hashed) and the rejected ones (line, reason)."""

    good: pl.DataFrame
    rejected: pl.DataFrame  # line, reason, plus the raw columns


_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_MONTH_RE = r"^\d{4}-\d{2}$"
_AMOUNT_RE = r"^\d+(\.\d{1,2})?$"
_INT_RE = r"^\d+$"


def _column_checks(col: Column, today: dt.date) -> tuple[pl.Expr, pl.Expr]:
    """(normalised value, reason or null) for one column, as polars expressions over the raw strings."""
    raw = pl.col(col.name).str.strip_chars()
    empty = raw == ""
    name = pl.lit(col.name)
    missing_reason = pl.when(empty).then(pl.format("{}: value is required", name)) if col.required else None

    def reason(*parts: tuple[pl.Expr, pl.Expr]) -> pl.Expr:
        chain: Any = missing_reason  # polars' When/Then/ChainedThen builders: no common public type
        for condition, message in parts:
            chain = pl.when(condition).then(message) if chain is None else chain.when(condition).then(message)
        return chain.otherwise(pl.lit(None, pl.Utf8))

    if col.type in ("text", "id_number"):
        value = pl.when(empty).then(None).otherwise(raw)
        return value, reason((~empty & (raw.str.len_chars() > col.max_length),
                              pl.format("{}: longer than {} characters", name, pl.lit(col.max_length))))
    if col.type == "date":
        parsed = raw.str.to_date("%Y-%m-%d", strict=False)
        value = pl.when(empty).then(None).otherwise(parsed)
        return value, reason(
            (~empty & ~raw.str.contains(_DATE_RE), pl.format("{}: '{}' is not a date (YYYY-MM-DD)", name, raw)),
            (~empty & parsed.is_null(), pl.format("{}: '{}' is not a real date", name, raw)),
            (~empty & (parsed > pl.lit(today)), pl.format("{}: {} is in the future", name, raw)),
            (~empty & (parsed < pl.lit(dt.date(1900, 1, 1))), pl.format("{}: {} is before 1900", name, raw)),
        )
    if col.type == "month":
        parsed = (raw + "-01").str.to_date("%Y-%m-%d", strict=False)
        value = pl.when(empty).then(None).otherwise(parsed)
        return value, reason(
            (~empty & ~raw.str.contains(_MONTH_RE), pl.format("{}: '{}' is not a month (YYYY-MM)", name, raw)),
            (~empty & parsed.is_null(), pl.format("{}: '{}' is not a real month", name, raw)),
            (~empty & (parsed > pl.lit(today.replace(day=1))), pl.format("{}: {} is in the future", name, raw)),
            (~empty & (parsed < pl.lit(dt.date(1900, 1, 1))), pl.format("{}: {} is before 1900", name, raw)),
        )
    if col.type == "year":
        parsed = raw.cast(pl.Int32, strict=False)
        value = pl.when(empty).then(None).otherwise(parsed)
        return value, reason(
            (~empty & (~raw.str.contains(r"^\d{4}$") | parsed.is_null()),
             pl.format("{}: '{}' is not a year (YYYY)", name, raw)),
            (~empty & (parsed > today.year), pl.format("{}: {} is in the future", name, raw)),
            (~empty & (parsed < 1950), pl.format("{}: {} is before 1950", name, raw)),
        )
    if col.type == "amount":
        parsed = raw.cast(pl.Float64, strict=False)
        value = pl.when(empty).then(None).otherwise(parsed.round(2))
        return value, reason(
            (~empty & ~raw.str.contains(_AMOUNT_RE),
             pl.format("{}: '{}' is not an amount in yuan (digits, at most 2 decimals, not negative)", name, raw)),
            (~empty & (parsed >= MAX_AMOUNT), pl.format("{}: {} is implausibly large", name, raw)),
        )
    if col.type == "int":
        parsed = raw.cast(pl.Int32, strict=False)
        value = pl.when(empty).then(None).otherwise(parsed)
        return value, reason(
            (~empty & (~raw.str.contains(_INT_RE) | parsed.is_null()),
             pl.format("{}: '{}' is not a whole number", name, raw)),
            (~empty & ((parsed < col.minimum) | (parsed > col.maximum)),
             pl.format("{}: {} is not between {} and {}", name, raw, pl.lit(col.minimum), pl.lit(col.maximum))),
        )
    if col.type == "enum":
        upper = raw.str.to_uppercase()
        mapped = raw.replace_strict(col.aliases, default=upper) if col.aliases else upper
        value = pl.when(empty).then(None).otherwise(mapped)
        return value, reason((~empty & ~mapped.is_in(list(col.choices)),
                              pl.format("{}: '{}' is not one of {}", name, raw, pl.lit(", ".join(col.choices)))))
    raise ValueError(f"unknown column type {col.type!r}")


def _cross_checks(schema: FeedSchema) -> list[pl.Expr]:
    """Checks between columns of one row, over the normalised values (null when fine)."""
    c = pl.col
    if schema.kind == "hospitalisation":
        return [
            pl.when(c("discharge_date") < c("admission_date"))
            .then(pl.lit("discharge_date: before admission_date")),
            pl.when(c("compliant_cost") > c("total_cost")).then(pl.lit("compliant_cost: more than total_cost")),
            pl.when(c("insurance_paid") > c("total_cost")).then(pl.lit("insurance_paid: more than total_cost")),
        ]
    return []


_CHECK_CHARS = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)
_WEIGHTS = np.array(WEIGHTS, dtype=np.int64)


def _id_valid(values: pl.Series, today: dt.date) -> pl.Series:
    """GB 11643 validity of raw ID numbers, vectorised (the same checks as :func:`aidgraph.core.graph.idnumber.parse`:
    length and characters, a real birth date from 1880 to today, the MOD 11-2 check character).

    The check character is computed by numpy over the numbers' bytes, 18 a number (3.1 million numbers: a
    polars expression of 17 slices and casts took seconds)."""
    number = values.str.strip_chars().str.to_uppercase()
    shaped = number.str.contains(r"^\d{17}[\dX]$").fill_null(False)
    birth = number.str.slice(6, 8).str.to_date("%Y%m%d", strict=False)
    dated = (shaped & birth.is_not_null() & (birth >= EARLIEST_BIRTH) & (birth <= today)).fill_null(False)
    checked = np.zeros(len(values), dtype=bool)
    rows = np.flatnonzero(shaped.to_numpy())
    if len(rows):
        text = number.gather(rows).str.join("").item()
        digits = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(-1, 18)
        expected = _CHECK_CHARS[(digits[:, :17].astype(np.int64) - ord("0")) @ _WEIGHTS % 11]
        checked[rows] = digits[:, 17] == expected
    return dated & pl.Series(checked)


def _id_reasons(values: pl.Series, today: dt.date) -> pl.DataFrame:
    """Each distinct raw ID number with its normalised form, or the reason :mod:`aidgraph.core.graph.idnumber` gives.

    The vectorised check passes the valid numbers in bulk; only the others go through
    :func:`aidgraph.core.graph.idnumber.parse`, which names what is wrong (and has the last word).
    """
    distinct = pl.DataFrame({"id_number": values.unique()})
    checked = distinct.with_columns(_id_valid(distinct["id_number"], today).alias("_ok"))
    good = checked.filter(pl.col("_ok")).select(
        "id_number", pl.col("id_number").str.strip_chars().str.to_uppercase().alias("_id_norm"),
        pl.lit(None, pl.Utf8).alias("_id_reason"))
    raws: list[str | None] = []
    norms: list[str | None] = []
    reasons: list[str | None] = []
    for raw in checked.filter(~pl.col("_ok"))["id_number"].to_list():
        raws.append(raw)
        if raw is None or not raw.strip():
            norms.append(None)
            reasons.append("id_number: value is required")
            continue
        try:
            norms.append(parse_id_number(raw, today=today).number)
            reasons.append(None)
        except InvalidIdNumber as exc:
            norms.append(None)
            reasons.append(f"id_number: {exc.reason}")
    bad = pl.DataFrame({"id_number": pl.Series(raws, dtype=pl.Utf8), "_id_norm": pl.Series(norms, dtype=pl.Utf8),
                        "_id_reason": pl.Series(reasons, dtype=pl.Utf8)})
    return pl.concat([good, bad])


def _event_date(schema: FeedSchema) -> pl.Expr:
    if schema.kind == "college_admission":
        month, day = ACADEMIC_YEAR_START
        return pl.date(pl.col("admission_year"), month, day)
    return pl.col(schema.event_column)


def validate(raw: RawFeed, schema: FeedSchema, today: dt.date | None = None) -> Validated:
    """Check every row, vectorised; return normalised good rows (with ``row_hash``) and rejected rows."""
    today = today or dt.date.today()
    frame = raw.frame
    ids = _id_reasons(frame["id_number"], today)
    normalised, reasons = [], []
    for col in schema.columns:
        if col.type == "id_number":
            continue
        value, reason = _column_checks(col, today)
        normalised.append(value.alias(col.name))
        reasons.append(reason)
    checked = (
        frame.join(ids, on="id_number", how="left", nulls_equal=True)
        .with_columns(pl.coalesce([pl.col("_id_reason"), *reasons]).alias("_reason"))
        .with_columns([pl.col("_id_norm").alias("_id_number"), *[e.alias("_n_" + c.name) for e, c in
                                                                 zip(normalised, [c for c in schema.columns
                                                                                  if c.type != "id_number"])]])
    )
    # Cross-field checks read the normalised values; give them the plain column names for the expressions.
    plain = checked.select(
        "line", "_reason", pl.col("_id_number").alias("id_number"),
        *[pl.col("_n_" + c.name).alias(c.name) for c in schema.columns if c.type != "id_number"],
    )
    cross = _cross_checks(schema)
    if cross:
        plain = plain.with_columns(pl.coalesce([pl.col("_reason"), *cross]).alias("_reason"))
    plain = plain.with_columns(_event_date(schema).alias("event_date"))
    # The hashes are most of the validation's work (3.2 million rows: 5.8 s of 11.9): the streaming engine
    # computes them in parallel morsels, in the rows' order (2.7-3.1 s on this 2-core machine).
    plain = plain.lazy().with_columns(_row_hash_expr(schema).alias("row_hash")).collect(engine="streaming")
    # A row repeated in the same file is kept once; the repeats are reported as duplicates.
    first_line = plain.filter(pl.col("_reason").is_null()).group_by("row_hash").agg(pl.col("line").min().alias("_first"))
    plain = plain.join(first_line, on="row_hash", how="left").with_columns(
        pl.when(pl.col("_reason").is_null() & (pl.col("line") != pl.col("_first")))
        .then(pl.format("duplicate of line {}", pl.col("_first")))
        .otherwise(pl.col("_reason")).alias("_reason")
    ).drop("_first")
    bad_lines = plain.filter(pl.col("_reason").is_not_null()).select("line", pl.col("_reason").alias("reason"))
    rejected = bad_lines.join(frame, on="line", how="left")
    good = plain.filter(pl.col("_reason").is_null()).drop("_reason")
    if raw.early_rejects:
        early = pl.DataFrame(
            {"line": [r[0] for r in raw.early_rejects], "reason": [r[1] for r in raw.early_rejects],
             **{c: [r[2].get(c) for r in raw.early_rejects] for c in schema.names}},
            schema={"line": pl.Int64, "reason": pl.Utf8, **{c: pl.Utf8 for c in schema.names}},
        )
        rejected = pl.concat([rejected, early], how="diagonal")
    return Validated(good=good, rejected=rejected.sort("line"))


UNKEYED_DIGITS = 58
"""Hex digits of the row's sha256 that the keyed hash is computed over (what revision 0003 left stored)."""
ROW_HASH_MARK = "k"
"""After the event month: marks a keyed row hash (not a hex digit, so an unkeyed one never looks keyed)."""
ROW_HASH_DIGITS = 57
"""Hex digits of the keyed hash kept (228 bits), so that month, mark and digits fit ``row_hash``'s 64 characters."""


def _row_hash_expr(schema: FeedSchema) -> pl.Expr:
    """The event month (YYYYMM), the mark ``k``, then a keyed hash of the row: the same row hashes the same in
    any file or format, and nobody without the key can tell which row (which ID number) a hash stands for.

    A feed row holds the resident's ID number, and a region's ID numbers are few enough to try every one: an
    unkeyed hash of the row would give the number back. The keyed hash is an HMAC
    (:func:`aidgraph.core.storage.encrypted.feed_row_hash_expr`, computed by polars) of the first
    :data:`UNKEYED_DIGITS` digits of the row's sha256 (:func:`_row_digest_expr`), so that revision 0014 could turn
    the hashes stored before it (those very digits) into the keyed ones without the rows, whose ID number and name
    a feed record does not keep.

    The month comes first so that a unique index on ``row_hash`` keeps each month's rows together: a monthly
    import inserts into one region of the index, whose pages stay in cache across a batch, instead of into
    random pages of years of history (one page write per row on a province-sized table). Within the month the
    hashes are random; SQLite's economic items are therefore kept unique by person before hash
    (:data:`aidgraph.core.storage.models.FED_ITEM_KEYS`), in the order the import writes them.
    """
    unkeyed = sha256_hex_expr(_row_text_expr(schema)).str.slice(0, UNKEYED_DIGITS)
    return pl.concat_str([pl.col("event_date").dt.strftime("%Y%m"), pl.lit(ROW_HASH_MARK),
                          feed_row_hash_expr(unkeyed).str.slice(0, ROW_HASH_DIGITS)])


def _row_text_expr(schema: FeedSchema) -> pl.Expr:
    """The kind and every normalised value, joined: what a row's hashes are computed over."""
    parts = [pl.lit(schema.kind)]
    for c in schema.columns:
        e = pl.col(c.name)
        if c.type == "amount":
            # In fen, so that 100, 100.0 and 100.00 hash alike. An amount too large for 64 bits of fen (an ID
            # number in the column) is refused by its check; its row's hash, never used, takes it as empty.
            e = (e * 100).round(0).cast(pl.Int64, strict=False)
        parts.append(e.cast(pl.Utf8).fill_null(""))
    return pl.concat_str(parts, separator="\x1f")


def _row_digest_expr(schema: FeedSchema, digits: int = 64) -> pl.Expr:
    """The first ``digits`` hex digits of the (unkeyed) sha256 of the row: what revisions before 0014 stored."""
    return sha256_hex_expr(_row_text_expr(schema)).str.slice(0, digits)


# --- persons ----------------------------------------------------------------------------------------------------


WHOLE_INDEX_SHARE = 0.25
""":func:`lookup_persons` reads the whole ``person`` ID-number index instead of searching it number by number when
the file names at least this share of the persons (estimated by the largest person id). Measured on the
5,000,000-person benchmark province (SQLite): 3,107,574 numbers searched in 10.4 s, the whole index of 5,007,294
read in 4.1 s; a search costs about four times a read entry."""


PERSON_COLUMNS = {"person_id": pl.Int64, "person_name": pl.Utf8, "household_id": pl.Int64, "person_region": pl.Utf8}
"""What :func:`lookup_persons` gives for each ID number found, and their polars types."""


def _person_details(on: dt.date) -> Select:
    """Each person's id, name, household on ``on`` and region (their own, else their household's, else their
    hukou region's): one row per current membership, one with no household for a person without one."""
    current = and_(Membership.person_id == Person.id, valid_on(Membership, on))
    return (select(Person.id, Person.name, Membership.household_id,
                   func.coalesce(Person.region_code, Household.region_code, Person.hukou_region_code))
            .outerjoin(Membership, current).outerjoin(Household, Household.id == Membership.household_id))


def read_person_directory(engine: Engine, on: dt.date, names: bool = True) -> pl.DataFrame:
    """Every person's ID-number blind index with :data:`PERSON_COLUMNS` (a person with several households on
    ``on`` once): what :func:`lookup_persons` joins a file naming most of the province's persons with, read in
    one statement (on PostgreSQL one ``COPY``) in a transaction of its own, so :func:`import_feed` can read it
    while it validates the file. ``names=False``: ``person_name`` left empty, for a file without names."""
    stmt = _person_details(on).add_columns(Person.id_number_index)
    if not names:
        stmt = stmt.with_only_columns(*[c if c.key != "name" else cast(null(), String).label("name")
                                        for c in stmt.selected_columns])
    with session_scope(engine) as session:
        frame = read_frame(session.connection(), stmt, {**PERSON_COLUMNS, "id_number_index": pl.Utf8}, large=True)
    return frame.unique("person_id", keep="first")


def names_most_persons(session: Session, rows: int) -> bool:
    """Would ``rows`` ID numbers name at least :data:`WHOLE_INDEX_SHARE` of the persons (estimated by the largest
    person id: one index probe)? Then reading every person costs less than searching for each."""
    largest = session.scalar(select(func.max(Person.id))) or 0
    return rows > 0 and rows >= WHOLE_INDEX_SHARE * largest


def lookup_persons(session: Session, id_numbers: Sequence[str] | pl.Series, on: dt.date,
                   directory: pl.DataFrame | None = None) -> pl.DataFrame:
    """Persons by ID number, with their household on ``on``: ``id_number`` and :data:`PERSON_COLUMNS` for each
    number found; three statements for the whole list (the largest person id, the ID numbers, the persons), or
    none when ``directory`` (:func:`read_person_directory`, read beforehand) is given: then the session is not
    used, and the lookup is polars' work alone (:func:`import_feeds` does it on a thread beside a store).
    ``id_numbers`` may repeat a number, and may be a polars Series (a file's column, not made Python strings).

    First the ID numbers alone, by their blind indexes (HMAC, :mod:`aidgraph.core.storage.encrypted`: the numbers
    are stored encrypted), probed in sorted order in the unique index (which holds the person's id, so no
    table row is read), or, for a file naming a large share of the persons (:data:`WHOLE_INDEX_SHARE`), that
    index read whole and joined; then the persons' rows and current memberships by id, in ascending id order, which is
    the tables' own order. On a province-sized table this reads pages in sequence instead of jumping to a
    random page for each of millions of persons.
    """
    # Sorted and made unique by polars: a Python sort of three million strings took 2.7 s of the lookup.
    numbers = pl.DataFrame({"id_number": pl.Series(id_numbers, dtype=pl.Utf8)}).unique().sort("id_number")
    numbers = numbers.lazy().with_columns(id_number_index_expr(pl.col("id_number")).alias("id_number_index")) \
        .collect(engine="streaming")  # in parallel morsels, as validate()'s row hashes
    if directory is not None:
        return numbers.join(directory, on="id_number_index").select("id_number", *PERSON_COLUMNS)
    dialect = dialect_of(session)
    conn = session.connection()
    by_index = select(Person.id_number_index, Person.id)
    if not names_most_persons(session, numbers.height):
        by_index = by_index.where(any_of(Person.id_number_index, numbers["id_number_index"].sort().to_list(), dialect))
    # else: so many of the persons that reading the whole unique index (no table row) costs less than searching it
    # for each number; the join below keeps the numbers asked for.
    found = read_frame(conn, by_index, {"id_number_index": pl.Utf8, "person_id": pl.Int64})
    found = numbers.join(found, on="id_number_index").drop("id_number_index")
    details = read_frame(conn, _person_details(on).where(any_of(Person.id, found["person_id"].sort().to_list(), dialect)),
                         PERSON_COLUMNS)
    return found.join(details.unique("person_id", keep="first"), on="person_id", how="left")


# --- storing ----------------------------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    kind: str
    file: str
    encoding: str
    format: str
    read: int = 0
    stored: int = 0
    already_stored: int = 0
    rejected: int = 0
    persons_updated: int = 0
    economic_items: int = 0
    partitions_created: list[str] = field(default_factory=list)
    """Monthly partitions (PostgreSQL) made for the months the file writes (:func:`prepare_partitions`)."""
    rejected_file: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each phase: read, validate, persons (lookup), store (records and effects). In a job whose
    persons are found in the directory (:func:`import_feeds`), a file's ``persons`` is the time the job waited
    for them: they are found while the file before is stored."""

    @property
    def elapsed(self) -> float:
        """The file's own seconds: its four phases (the steps of ``store`` are inside it)."""
        return sum(self.seconds.get(phase, 0.0) for phase in ("read", "validate", "persons", "store"))

    def as_dict(self) -> dict:
        return {"kind": self.kind, "file": self.file, "encoding": self.encoding, "format": self.format,
                "read": self.read, "stored": self.stored, "already_stored": self.already_stored,
                "rejected": self.rejected, "persons_updated": self.persons_updated,
                "economic_items": self.economic_items}


def existing_hashes(session: Session, kind: str, hashes: list[str], first: dt.date, last: dt.date,
                    legacy: bool | None = None) -> set[str]:
    """The row hashes among ``hashes`` (rows of feed ``kind``) already stored: one statement, two for an item
    feed whose dates hold rows imported before revision 0027.

    ``first`` / ``last``: the event dates of the rows hashed. A row's hash covers its event date, so a stored
    row with the same hash has a date in that range; on PostgreSQL, where ``feed_record`` and ``economic_item``
    are partitioned by month (:mod:`aidgraph.core.storage.partitions`), the lookup then probes only those
    months' partitions.

    An item feed's rows (:data:`ITEM_FEEDS`) are economic items, found by their hash and dates. PostgreSQL
    probes ``uq_economic_item_row_hash`` for each hash. SQLite's fed-item index has the person before the hash
    (:data:`aidgraph.core.storage.models.FED_ITEM_KEYS`), so there the dates' fed items are read and compared;
    SQLite's import calls this only for dates holding rows imported before revision 0027 (else the insert skips
    the stored rows itself: :func:`store_batch`). Rows of
    those feeds imported before revision 0027 are feed records: they are looked up too, but only when the
    ``(kind, event_date)`` index shows records of the kind in those dates (a monthly import of a new month
    pays one index probe for this; ``legacy`` is that probe's answer when the caller has it already)."""
    dialect = dialect_of(session)
    records = and_(any_of(FeedRecord.row_hash, hashes, dialect), FeedRecord.event_date >= first,
                   FeedRecord.event_date <= last)
    if kind not in ITEM_FEEDS:
        return set(session.scalars(select(FeedRecord.row_hash).where(records)))
    found = {h for h in session.scalars(select(EconomicItem.row_hash).where(
        EconomicItem.row_hash.is_not(None), any_of(EconomicItem.row_hash, hashes, dialect),
        EconomicItem.period_start >= first, EconomicItem.period_start <= last)) if h is not None}
    if legacy if legacy is not None else legacy_records(session, kind, first, last):
        found |= set(session.scalars(select(FeedRecord.row_hash).where(records)))
    return found


def legacy_records(session: Session, kind: str, first: dt.date, last: dt.date) -> bool:
    """Are there feed records of item feed ``kind`` dated ``first`` to ``last`` (rows imported before revision
    0027, when those feeds' rows were stored as feed records too)? One probe of ``ix_feed_record_kind_event_date``."""
    return session.scalar(select(FeedRecord.id).where(FeedRecord.kind == kind, FeedRecord.event_date >= first,
                                                      FeedRecord.event_date <= last).limit(1)) is not None


FED_ITEM_CONFLICT = f"({', '.join(FED_ITEM_KEYS['sqlite'][1])}) WHERE row_hash IS NOT NULL"
"""SQLite's fed-item unique index (:data:`aidgraph.core.storage.models.FED_ITEM_KEYS`) as an ``ON CONFLICT``
target: an economic item already stored for a feed row. Only SQLite's import skips rows in the insert."""


def _payload_columns(schema: FeedSchema) -> list[str]:
    return [c.name for c in schema.columns if c.name not in ("id_number", "name")]


PAYLOAD_JSON_TYPES: dict[str, type[pl.DataType]] = {"amount": pl.Float64, "int": pl.Int64, "year": pl.Int64}
"""How a stored payload's values read back, by column type: amounts as JSON numbers with a fraction, counts and
years as integers; every other value (dates and months as ``YYYY-MM-DD``, codes, text) as the text it was."""


def payload_dtype(schema: FeedSchema) -> pl.Struct:
    """The stored payload of a feed record (:func:`store_batch` writes it from the normalised columns) as a polars
    struct, to decode the JSON with (a column missing from an older record reads as null)."""
    return pl.Struct({c.name: PAYLOAD_JSON_TYPES.get(c.type, pl.Utf8) for c in schema.columns
                      if c.name in _payload_columns(schema)})


def _update_flags(session: Session, ids: list[int], values: dict, where=None) -> list[tuple[int, int]]:
    """Set ``values`` on the persons in ``ids`` whose values differ (or match ``where``), bumping their version.

    Returns (id, new version) of the persons changed, for the outbox. Persons already in that state are left
    alone, so a re-import or a repeated event does not churn versions.
    """
    if where is None:
        where = or_(*[getattr(Person, k).is_distinct_from(v) for k, v in values.items()])
    if not ids:
        return []
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    # In id order: the table's pages are visited once each, in sequence.
    stmt = (update(Person).where(any_of(Person.id, sorted(ids), dialect_of(session)), where)
            .values(**values, version=Person.version + 1, updated_at=now)
            .returning(Person.id, Person.version))
    return [(r[0], r[1]) for r in session.execute(stmt, execution_options={"synchronize_session": False})]


def _items(schema: FeedSchema, rows: pl.DataFrame, actor: Actor, source_file: str, now: dt.datetime
           ) -> pl.DataFrame:
    """The economic items an item feed's rows are (:data:`ITEM_FEEDS`), as ``economic_item`` columns: an income
    row covers its month, an asset row is a valuation on its date; each carries the row's hash, file and line."""
    recorded = [pl.lit(actor.username).alias("recorded_by"), pl.lit(now, pl.Datetime("us")).alias("recorded_at"),
                pl.col("row_hash"), pl.lit(source_file[-255:]).alias("source_file"),
                pl.col("line").cast(pl.Int32).alias("line_number")]
    if schema.kind == "income":
        return rows.select("household_id", "person_id", "kind", "source", "amount",
                           pl.col("period").alias("period_start"), pl.col("period").dt.month_end().alias("period_end"),
                           *recorded)
    if schema.kind == "assets":
        return rows.select("household_id", "person_id", "kind", "source", "amount",
                           pl.col("as_of").alias("period_start"), pl.col("as_of").alias("period_end"), *recorded)
    raise ValueError(f"{schema.kind} is not an item feed")


def apply_effects(session: Session, schema: FeedSchema, rows: pl.DataFrame, actor: Actor, source_file: str,
                  skip_stored: bool = False, staged: Staged | None = None) -> tuple[int, int]:
    """The feed's effects on the graph, set-at-a-time: (persons updated, economic items written).

    An item feed's rows (:data:`ITEM_FEEDS`) are written here as economic items carrying the row's hash, file
    and line: that is how they are stored (there is no feed record of them). ``skip_stored`` (SQLite): rows whose
    item is already stored are skipped by the insert itself (:data:`FED_ITEM_CONFLICT`) and not counted.
    ``staged``: those items already made from ``rows`` and staged (:func:`stage_items`), written as they are."""
    kind = schema.kind
    changed: list[tuple[int, int]] = []
    items: pl.DataFrame | Staged | None = None
    latest = rows.sort(["event_date", "line"]).unique("person_id", keep="last", maintain_order=True)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    if kind in ITEM_FEEDS:
        items = staged if staged is not None else _items(schema, rows, actor, source_file, now)
    elif kind == "hospitalisation":
        ids = rows["person_id"].unique().to_list()
        changed += _update_flags(session, ids, {"hospitalised": True})
    elif kind == "disease":
        for disease_kind, column in (("CHRONIC", Person.chronic_disease), ("MAJOR", Person.major_disease)):
            ids = rows.filter(pl.col("disease_kind") == disease_kind)["person_id"].unique().to_list()
            changed += _update_flags(session, ids, {column.key: True})
    elif kind == "disability":
        for (category, level), group in latest.group_by(["disability_category", "disability_level"]):
            changed += _update_flags(
                session, group["person_id"].to_list(), {"disability_category": category, "disability_level": level})
    elif kind == "unemployment":
        for status, employment in (("REGISTERED", "UNEMPLOYED"), ("REEMPLOYED", "EMPLOYED")):
            ids = latest.filter(pl.col("status") == status)["person_id"].to_list()
            changed += _update_flags(session, ids, {"employment_status": employment})
    elif kind == "college_admission":
        for (stage,), group in latest.group_by(["stage"]):
            changed += _update_flags(session, group["person_id"].to_list(),
                                     {"student_stage": stage, "employment_status": "STUDENT"})
    elif kind == "household_event":
        deaths = rows.filter(pl.col("event") == "DEATH").sort("event_date").unique("person_id", keep="first")
        for (day,), group in deaths.group_by(["event_date"]):
            # The first reported death date stands; a later feed does not move it.
            changed += _update_flags(session, group["person_id"].to_list(), {"death_date": day},
                                     Person.death_date.is_(None))
    written = 0 if items is None else insert_frame(session, EconomicItem.__tablename__, items,
                                                   skip_conflicts_on=FED_ITEM_CONFLICT if skip_stored else None)
    if changed:
        insert_frame(session, Outbox.__tablename__, pl.DataFrame(
            changed, orient="row", schema={"entity_id": pl.Int64, "version": pl.Int64}).select(
            pl.lit(OutboxEntity.PERSON.value).alias("entity"), "entity_id", "version", pl.lit(False).alias("deleted"),
            pl.lit(now, pl.Datetime("us")).alias("created_at")))
    return len({pid for pid, _ in changed}), written


def store_batch(session: Session, schema: FeedSchema, rows: pl.DataFrame, source_file: str, actor: Actor,
                staged: Staged | None = None) -> tuple[int, int, int, int]:
    """Store one batch of validated rows (person_id resolved) and apply their effects; never commits.

    The batch's transaction takes the write lock first (:func:`aidgraph.core.storage.bulk.lock_for_writing`;
    ``feed_record``'s lock is every import's, whichever table its rows go to), so the rows found already stored
    cannot change before the new ones are written, even with two imports running. A row is stored as a feed
    record, or, for an item feed (:data:`ITEM_FEEDS`), as the economic item it is (:func:`apply_effects`).
    Returns (stored, already stored, persons updated, economic items).

    On SQLite an item feed's rows already stored are found by the unique index as the items are inserted
    (:data:`FED_ITEM_CONFLICT`) instead of by a lookup before: the insert searches that index for each row
    anyway. Not when the batch's dates hold rows imported before revision 0027 (:func:`legacy_records`), which
    only the lookup finds; not on PostgreSQL, whose COPY cannot skip a row.

    ``staged`` (SQLite, an item feed): ``rows``' items already staged on the session's connection
    (:func:`stage_items`); used when the insert skips the rows already stored, since only then are they the
    items written (else the items are made again from the rows not yet stored).
    """
    if rows.is_empty():
        return 0, 0, 0, 0
    lock_for_writing(session, [FeedRecord.__tablename__])
    days = rows["event_date"].unique().sort().to_list()
    item_feed = schema.kind in ITEM_FEEDS
    legacy = item_feed and legacy_records(session, schema.kind, days[0], days[-1])
    skip_in_insert = item_feed and not legacy and dialect_of(session) == "sqlite"
    if skip_in_insert:
        new = rows  # the insert skips the rows already stored and counts the others
    else:
        known = existing_hashes(session, schema.kind, rows["row_hash"].to_list(), days[0], days[-1], legacy)
        new = rows.filter(~pl.col("row_hash").is_in(list(known))) if known else rows
        if new.is_empty():
            return 0, len(rows), 0, 0
    if not item_feed:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        records = new.select(
            pl.lit(schema.kind).alias("kind"), "person_id", "event_date",
            # The person is the record's person_id; the ID number and name are not copied into every payload.
            pl.struct(_payload_columns(schema)).struct.json_encode().alias("payload"), "row_hash",
            pl.lit(source_file[-255:]).alias("source_file"), pl.col("line").cast(pl.Int32).alias("line_number"),
            pl.lit(now, pl.Datetime("us")).alias("imported_at"))
        insert_frame(session, FeedRecord.__tablename__, records)
    persons, items = apply_effects(session, schema, new, actor, source_file, skip_stored=skip_in_insert,
                                   staged=staged if skip_in_insert else None)
    stored = items if skip_in_insert else len(new)
    if stored:
        # "lines": the first and last line of the rows stored (of the batch, when the insert skipped some).
        table = EconomicItem.__tablename__ if item_feed else FeedRecord.__tablename__
        audit.record(session, actor, "import_feed", table, None, None,
                     {"kind": schema.kind, "file": source_file, "rows": stored,
                      "lines": [int(new["line"].min()), int(new["line"].max())]})  # type: ignore[arg-type]  # min() is any scalar to polars
    return stored, len(rows) - stored, persons, items


def whole_month(engine: Engine, schema: FeedSchema, rows: pl.DataFrame, today: dt.date,
                min_rows: int = MONTH_LOAD_MIN_ROWS) -> dt.date | None:
    """The month :func:`store_month` could store ``rows`` as: PostgreSQL, an item feed, at least ``min_rows``
    rows, all dated in one month that has a partition of its own (:func:`months_of`); else ``None``."""
    if engine.dialect.name != "postgresql" or schema.kind not in ITEM_FEEDS or rows.height < max(min_rows, 1):
        return None
    months = {month_of(d) for d in rows["event_date"].unique().to_list()}
    if len(months) != 1 or months_of(months, today) != list(months):
        return None
    return months.pop()


MONTH_LOAD_TRIGGERS = frozenset({"decision_stale_economic_item_insert", "decision_stale_economic_item_update",
                                 "decision_stale_economic_item_delete"})
"""The triggers on ``economic_item`` (migration 0011) and what :func:`store_month` does for them: the insert
trigger's marks are made by :func:`store_month` itself (:data:`STALE_GUARD`); no row is updated or deleted (rows
moved from the month's old partition keep their facts)."""


def store_month(session: Session, schema: FeedSchema, rows: pl.DataFrame, month: dt.date, source_file: str,
                actor: Actor, progress: Progress | None = None) -> MonthLoad | None:
    """Store a whole month of an item feed's rows (see :func:`whole_month`) as the month's new ``economic_item``
    partition, in the session's transaction (:func:`aidgraph.core.storage.partitions.load_month`): the items
    are copied into a table without indexes, its indexes and foreign keys built in one pass each, and the table
    takes the place of the month's empty partition. What :func:`store_batch` would store, at a fraction of the
    cost (5,000,000 persons' month, 3.19M items: 80 s through the parent, 26-29 s this way; bench/README.md).

    Takes the import's write lock first (:func:`store_batch`'s), then returns ``None``, having written nothing,
    unless the month's partition is still empty and holds no rows imported before revision 0027 (a re-import,
    a second file of the month: those go in batches, which skip the rows already stored), and the table has no
    trigger but those :data:`MONTH_LOAD_TRIGGERS` stands in for (the batches fire any other). Else returns the
    items stored and the seconds of each step."""
    lock_for_writing(session, [FeedRecord.__tablename__])
    conn = session.connection()
    table = EconomicItem.__tablename__
    first, last = rows["event_date"].min(), rows["event_date"].max()
    if (not month_is_empty(conn, table, month) or unhandled_triggers(conn, table, MONTH_LOAD_TRIGGERS)
            or legacy_records(session, schema.kind, first, last)):  # type: ignore[arg-type]  # min() is any scalar to polars
        return None
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    def write(staging: str) -> int:
        written = 0
        for start in range(0, rows.height, STORE_BATCH):
            written += insert_frame(session, staging,
                                    _items(schema, rows.slice(start, STORE_BATCH), actor, source_file, now))
            if progress:
                progress("stored", written, rows.height)
        return written

    def mark_stale(staging: str) -> None:
        conn.exec_driver_sql(f"INSERT INTO {DecisionStale.__tablename__} (household_id) SELECT DISTINCT "
                             f"household_id FROM {staging} WHERE ({STALE_GUARD}) AND household_id IS NOT NULL")

    loaded = load_month(conn, table, month, write, handled_triggers=MONTH_LOAD_TRIGGERS, before_swap=mark_stale)
    audit.record(session, actor, "import_feed", table, None, None,
                 {"kind": schema.kind, "file": source_file, "rows": loaded.rows,
                  "lines": [int(rows["line"].min()), int(rows["line"].max())]})  # type: ignore[arg-type]  # min() is any scalar to polars
    return loaded


def prepare_partitions(engine: Engine, schema: FeedSchema, rows: pl.DataFrame, today: dt.date) -> Ensured:
    """Create the monthly partitions (PostgreSQL) of the months the rows are about to be written to, in a short
    transaction of its own before the batches: the feed records by event date, or for an item feed
    (:data:`ITEM_FEEDS`, whose rows are stored as economic items only) the economic items, whose
    ``period_start`` is the row's event date (the month, or the valuation date). A month outside the partitions'
    window goes to the default partition (:mod:`aidgraph.core.storage.partitions`). Nothing on SQLite."""
    if engine.dialect.name != "postgresql" or rows.is_empty():
        return Ensured([])
    months = months_of(rows["event_date"].unique().to_list(), today)
    table = EconomicItem.__tablename__ if schema.kind in ITEM_FEEDS else FeedRecord.__tablename__
    with engine.begin() as conn:
        return ensure_months(conn, table, months)


def resolve_persons(session: Session, good: pl.DataFrame, schema: FeedSchema, province: str | None,
                    today: dt.date, directory: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Attach person and household to each good row; reject unknown persons, other provinces, name mismatches.
    ``directory``: see :func:`lookup_persons`."""
    persons = lookup_persons(session, good["id_number"], today, directory)
    joined = good.join(persons, on="id_number", how="left")
    region = pl.col("person_region")
    name_given = pl.col("name").str.replace_all(r"\s", "") if "name" in good.columns else None
    checks = [
        pl.when(pl.col("person_id").is_null())
        .then(pl.lit("id_number: no person with this ID number is registered (persons are not created from feeds)")),
    ]
    if province:
        checks.append(pl.when(~region.str.starts_with(province))
                      .then(pl.format("id_number: the person lives outside province {} (region {})",
                                      pl.lit(province), region)))
    if name_given is not None:
        checks.append(pl.when(name_given.is_not_null() & (name_given != pl.col("person_name").str.replace_all(r"\s", "")))
                      .then(pl.format("name: '{}' does not match the name registered for this ID number",
                                      pl.col("name"))))
    if schema.kind in ITEM_FEEDS:
        checks.append(pl.when(pl.col("household_id").is_null())
                      .then(pl.lit("id_number: the person belongs to no household; economic items are "
                                   "recorded per household")))
    joined = joined.with_columns(pl.coalesce(checks).alias("_reason"))
    bad = joined.filter(pl.col("_reason").is_not_null()).select("line", pl.col("_reason").alias("reason"))
    good = joined.filter(pl.col("_reason").is_null()).drop("_reason", "person_name", "person_region")
    return good, bad


def write_rejected(path: Path, rejected: pl.DataFrame, columns: Iterable[str]) -> Path | None:
    """``FILE.rejected.csv`` beside the input: line, reason and the row as read. Removed when nothing is rejected."""
    target = path.with_name(path.name + ".rejected.csv")
    if rejected.is_empty():
        target.unlink(missing_ok=True)
        return None
    cols = ["line", "reason", *columns]
    rejected.select([pl.col(c) if c in rejected.columns else pl.lit(None, pl.Utf8).alias(c) for c in cols]) \
        .sort("line").write_csv(target)
    return target


Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): called as batches complete."""


def _lap(summary: ImportSummary, phase: str, since: float) -> float:
    now = time.perf_counter()
    summary.seconds[phase] = now - since
    return now


def import_feed(engine: Engine, kind: str, path: Path, *, encoding: str | None = None, province: str | None = None,
                actor: Actor | None = None, progress: Progress | None = None, today: dt.date | None = None,
                batch_size: int = STORE_BATCH, month_load_min_rows: int = MONTH_LOAD_MIN_ROWS) -> ImportSummary:
    """Import one department file: the job boundary (one transaction per batch, safe to re-run).

    A large item file of one new month is stored in one transaction as the month's partition instead
    (:func:`store_month`, PostgreSQL; ``month_load_min_rows``: :data:`MONTH_LOAD_MIN_ROWS`)."""
    return import_feeds(engine, [(kind, Path(path))], encoding=encoding, province=province, actor=actor,
                        progress=progress, today=today, batch_size=batch_size,
                        month_load_min_rows=month_load_min_rows)[0]


def import_feeds(engine: Engine, files: Sequence[tuple[str, Path]], *, encoding: str | None = None,
                 province: str | None = None, actor: Actor | None = None, progress: Progress | None = None,
                 today: dt.date | None = None, batch_size: int = STORE_BATCH,
                 month_load_min_rows: int = MONTH_LOAD_MIN_ROWS) -> list[ImportSummary]:
    """Import several department files, ``(kind, path)`` each, as one job: a month's files as they arrive
    together (``aidgraph import-month``). Each file is stored as :func:`import_feed` stores it alone, in the
    order given, in transactions of its own (safe to re-run, file by file); one summary per file.

    What they share: every file is read and validated before any is stored (a file that cannot be read stops
    the job before anything is written), and, when together they name most of the province's persons
    (:func:`names_most_persons`, on the sum of their rows), the person directory is read once, in a
    transaction of its own while the files are validated (:func:`read_person_directory`), and every file's
    persons are found in it instead of searched for file by file. A feed's effects change facts of persons
    (flags, dates), never what the directory holds (ID number, name, household, region), so one read serves
    every file of the job. The 5,000,000-person province's month: the six smaller files' person searches took
    12.7 s on their own, the directory is read for the income file anyway (bench/README.md); the next file's
    persons are then found while a file is stored (polars' work beside the database's). On SQLite the
    job's commits leave the checkpoints to a thread of their own (:func:`aidgraph.core.storage.checkpoints.
    background_checkpoints`); what the job wrote is in the database file when it returns.
    """
    unknown = [kind for kind, _ in files if kind not in FEEDS]
    if unknown:
        raise FeedFileError(f"unknown feed kind {unknown[0]!r}; known kinds: {', '.join(FEEDS)}")
    if province is not None and (not province.isdigit() or len(province) != 2):
        raise FeedFileError(f"--province must be a 2-digit province code, not {province!r}")
    today = today or dt.date.today()
    jobs: list[tuple[FeedSchema, Path, RawFeed, ImportSummary]] = []
    for kind, path in files:
        clock = time.perf_counter()
        raw = read_feed(Path(path), FEEDS[kind], encoding)
        summary = ImportSummary(kind, str(path), raw.encoding, raw.format,
                                read=raw.frame.height + len(raw.early_rejects))
        _lap(summary, "read", clock)
        jobs.append((FEEDS[kind], Path(path), raw, summary))
    with background_checkpoints(engine), ThreadPoolExecutor(1, thread_name_prefix="person-directory") as reader:
        # Files naming most of the province's persons: every person is read meanwhile (the database's work
        # and polars' parsing, on the other core) instead of searched for after the validation.
        with session_scope(engine) as session:
            most = names_most_persons(session, sum(raw.frame.height for _, _, raw, _ in jobs))
        names = any("name" in schema.names for schema, *_ in jobs)
        directory = reader.submit(read_person_directory, engine, today, names) if most else None
        checked: list[Validated] = []
        for schema, _, raw, summary in jobs:
            clock = time.perf_counter()
            checked.append(validate(raw, schema, today))
            _lap(summary, "validate", clock)
            if progress:
                progress("validated", 0, checked[-1].good.height)
        def resolve(index: int) -> tuple[pl.DataFrame, pl.DataFrame]:
            with session_scope(engine) as session:
                return resolve_persons(session, checked[index].good, jobs[index][0], province, today,
                                       directory.result() if directory is not None else None)

        # With the directory, finding a file's persons is polars' work alone (no database): the files' persons
        # are found one file after another on the reader's thread while the files before are stored, on the core
        # SQLite's single writer leaves idle. Without it, each file's persons are searched for in the database
        # when the file's turn comes.
        ahead = [reader.submit(resolve, index) for index in range(len(jobs))] if directory is not None else []
        try:
            for index, ((schema, path, raw, summary), valid) in enumerate(zip(jobs, checked)):
                clock = time.perf_counter()
                good, bad = ahead[index].result() if ahead else resolve(index)
                clock = _lap(summary, "persons", clock)
                _store_file(engine, schema, path, raw, valid, good, bad, summary, clock,
                            actor or system_actor(f"import:{schema.kind}"), progress, today, batch_size,
                            month_load_min_rows)
        finally:  # a file's store failed: the lookups not begun yet are not run, the job's error is not held up
            for pending in ahead:
                pending.cancel()
    return [summary for *_, summary in jobs]


def stage_items(schema: FeedSchema, rows: pl.DataFrame, actor: Actor, source_file: str
                ) -> tuple[pl.DataFrame, StageImage]:
    """An item feed's batch of rows as the economic items :func:`apply_effects` writes (:func:`_items`), with
    their staging image (:func:`aidgraph.core.storage.bulk.stage_image`); needs no connection."""
    items = _items(schema, rows, actor, source_file, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    return items, stage_image(items)


def _store_batches(engine: Engine, schema: FeedSchema, good: pl.DataFrame, source_file: str, actor: Actor,
                   batch_size: int) -> Iterator[tuple[int, tuple[int, int, int, int]]]:
    """Store ``good`` in batches of ``batch_size`` rows, each in a transaction of its own
    (:func:`store_batch`); yields each batch's first row and what :func:`store_batch` returned.

    An item feed on SQLite: the next batch's items are made and staged (:func:`stage_items`) on a thread of
    their own while the database inserts the batch before, and handed to the batch's connection between its
    transactions (:func:`aidgraph.core.storage.bulk.attached_stage`): the Python half of the insert off its
    path (figures in :func:`aidgraph.core.storage.bulk.stage_image`). The batches and their transactions are
    the same as without; an item's ``recorded_at`` is when its batch was made, at most one batch earlier."""
    starts = range(0, good.height, batch_size)
    if engine.dialect.name != "sqlite" or schema.kind not in ITEM_FEEDS or not starts:
        for start in starts:
            with session_scope(engine) as session:
                yield start, store_batch(session, schema, good.slice(start, batch_size), source_file, actor)
        return
    with (engine.connect() as conn, attached_stage(conn) as load,
          ThreadPoolExecutor(1, thread_name_prefix="stage-items") as stager):
        def stage(start: int) -> Future[tuple[pl.DataFrame, StageImage]]:
            return stager.submit(stage_items, schema, good.slice(start, batch_size), actor, source_file)

        pending = stage(starts[0])
        for start in starts:
            items, image = pending.result()
            if start + batch_size < good.height:
                pending = stage(start + batch_size)
            staged = load(items, image)
            with session_scope(conn) as session:
                done = store_batch(session, schema, good.slice(start, batch_size), source_file, actor, staged)
            yield start, done


def _store_file(engine: Engine, schema: FeedSchema, path: Path, raw: RawFeed, checked: Validated,
                good: pl.DataFrame, bad: pl.DataFrame, summary: ImportSummary, clock: float, actor: Actor,
                progress: Progress | None, today: dt.date, batch_size: int, month_load_min_rows: int) -> None:
    """One file's validated rows, persons found, stored: the month's partition or batches, then the rejects."""
    rejected_parts = [checked.rejected]
    if not bad.is_empty():
        rejected_parts.append(bad.join(raw.frame, on="line", how="left"))
    # In household and person order, whatever the file's: consecutive rows then go to neighbouring entries of
    # the household and person indexes they are written to, so each batch touches those indexes' pages once each
    # and in sequence instead of at random across years of history (a department's file follows its own order).
    good = good.sort(["household_id", "person_id", "line"], nulls_last=True)
    total = good.height
    summary.partitions_created = prepare_partitions(engine, schema, good, today).created
    if progress:
        progress("persons found", 0, total)
    month = whole_month(engine, schema, good, today, month_load_min_rows)
    if month is not None:
        with session_scope(engine) as session:
            loaded = store_month(session, schema, good, month, path.name, actor, progress)
        if loaded is not None:
            summary.stored = summary.economic_items = loaded.rows
            summary.seconds.update({f"store: {step}": seconds for step, seconds in loaded.seconds.items()})
            total = 0  # stored: no batches
    for start, (stored, skipped, persons, items) in _store_batches(engine, schema, good.head(total), path.name,
                                                                   actor, batch_size):
        summary.stored += stored
        summary.already_stored += skipped
        summary.persons_updated += persons
        summary.economic_items += items
        if progress:
            progress("stored", min(start + batch_size, total), total)
    _lap(summary, "store", clock)
    rejected = pl.concat(rejected_parts, how="diagonal") if len(rejected_parts) > 1 else rejected_parts[0]
    summary.rejected = rejected.height
    summary.rejected_file = write_rejected(path, rejected, schema.names)
