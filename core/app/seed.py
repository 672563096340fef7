"""Synthetic province seeding (合成数据): a province-sized household graph that looks like a real caseload.

Search, monitoring, eligibility ("policy finds people", 政策找人) and every benchmark need millions of
plausible persons in the real region tree of a province, reproducibly. ``aidgraph seed --province 44
--households 2000000 --seed 7`` builds them here:

* Households (家庭) live in the province's real villages (the ``region`` table, level VILLAGE, for 44, 35 and
  62) or townships (other provinces), in shapes seen in the field: elderly living alone (独居老人), elderly
  couples, single adults, couples, nuclear families, single parents (单亲), three generations, grandparents
  raising grandchildren whose parents work elsewhere (隔代/留守), siblings. Exactly one SELF member each.
* Persons get Chinese names (the province's common surnames), sex, birth dates from the shape's age ranges,
  valid GB 11643 ID numbers whose address code is the real county code of the household's region,
  disability (残疾类别 and level 1-4), chronic and major disease, labour capacity and employment status
  consistent with age and health, student stage (学段) for the young, and phones.
* Family relationships (SPOUSE, PARENT, GUARDIAN, SUPPORT_OBLIGOR 赡养/抚养义务人), including adult children
  who live in another household than their elderly parents, and migrant parents of left-behind children.
* Economic items (家庭经济状况核对): monthly wages, pensions and transfers for the 12 calendar months before
  ``as_of``, annual business, rental, medical and education amounts, and deposits, securities, real estate
  and vehicles as of the month end before ``as_of``. A share of households is low-income (低收入) so that
  the dibao and near-dibao rules have cases to find.

Every rate and amount below is an illustrative synthetic-data setting (:class:`SeedProfile`), not a policy
figure: no source document gives these numbers and nothing in the platform's rules reads them.

How it scales and why it can be re-run:

* Set-at-a-time: a chunk (default 50,000 households) is drawn as numpy arrays from a
  ``numpy.random.Generator`` seeded by (seed, province, chunk start), turned into polars frames, and written
  with PostgreSQL ``COPY`` or SQLite ``executemany`` inside ONE transaction per chunk. Ids are allocated
  explicitly after the current maximum (PostgreSQL: under a table lock, then the serial sequences are moved
  past them), so rows reference each other without round trips.
* Household numbers are ``S`` + province (2) + seed (5 digits) + index (9 digits), for example
  ``S4400007000001234``; the API's register service uses ``H`` + region code + sequence
  (:mod:`aidgraph.core.graph.households`), so the two never collide. A chunk's households are found with one range query
  on that unique column: complete chunks are skipped, an interrupted or smaller earlier run is completed.
  Re-running the same command changes nothing; another seed or a larger N adds households.
* ID numbers never collide: the 17-digit stems already stored for the province are loaded once, and a
  person whose drawn sequence number (顺序码, parity = sex) is taken moves to the next free one of the same
  parity, deterministically.
* Deterministic: for a given database state, the same province, N, seed, chunk size and ``as_of`` give the
  same rows; on an empty database, the same rows whether the run was interrupted or not.
* One audit row per written chunk (action ``seed``, in the chunk's transaction) says who seeded which
  households; a skipped chunk writes nothing at all.
* No outbox rows: for bulk seeds the search index is built by ``aidgraph reindex`` (one pass over the
  tables), not by millions of outbox events drained one batch at a time.
* PostgreSQL: a run that wrote rows ends with ``VACUUM (ANALYZE)`` of the tables it wrote
  (:func:`vacuum_written`), as after any bulk load: the planner gets its statistics and the visibility map is
  set, so index-only scans (the monitoring window's flows) do not visit the table for every row. Otherwise both
  wait for autovacuum, which may come in the middle of the first month's work.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, text

from aidgraph.core.storage.bulk import copy_sql, copy_text, insert_sql, sqlite_rows
from aidgraph.core.storage.encrypted import ID_NUMBER, PHONE, id_number_index_expr, open_values, seal_values
from aidgraph.core.storage.partitions import add_months, ensure_months, month_of, months_of
from aidgraph.core.monitoring.feeds import DISABILITY_CATEGORIES
from aidgraph.core.graph.idnumber import CHECK_CHARS, WEIGHTS
from aidgraph.core.graph.regions import DIVISIONS_DIR

DEFAULT_CHUNK_HOUSEHOLDS = 50_000
MAX_SEED = 99_999
MAX_HOUSEHOLDS = 999_999_999
HOUSEHOLD_NUMBER_PREFIX = "S"
RECORDED_BY = "seed"
AUDIT_ACTION = "seed"
SQLITE_CACHE_PAGES = -262144
"""SQLite page cache while seeding (negative: KiB, so 256 MiB): the random-order ID number index stays in memory."""


class SeedError(ValueError):
    """The seed cannot run as asked (unknown province, no regions loaded, bad argument); the message says why."""


# --- illustrative synthetic-data settings -----------------------------------------------------------------

# Roles inside a household, in the order their members are laid out (SELF first).
ROLE_SELF, ROLE_SPOUSE, ROLE_CHILD, ROLE_PARENT, ROLE_OTHER, ROLE_GRANDCHILD, ROLE_SIBLING = range(7)
ROLE_RELATION = np.array(["SELF", "SPOUSE", "CHILD", "PARENT", "OTHER", "GRANDCHILD", "SIBLING"])
N_ROLES = 7


@dataclass(frozen=True)
class HouseholdShape:
    """One household shape and how its members are drawn (illustrative)."""

    key: str
    weight: float
    head_age: tuple[float, float]
    head_age_beta: tuple[float, float]
    head_male: float
    spouse: float
    children: tuple[float, ...] = (1.0,)
    parents: tuple[float, ...] = (1.0,)
    other: float = 0.0
    grandchildren: tuple[float, ...] = (1.0,)
    siblings: float = 0.0
    low_income_odds: float = 1.0


SHAPES: tuple[HouseholdShape, ...] = (
    HouseholdShape("ELDERLY_ALONE", 0.11, (65, 96), (1.4, 2.6), 0.40, 0.0, low_income_odds=2.5),   # 独居老人
    HouseholdShape("ELDERLY_COUPLE", 0.13, (60, 92), (1.6, 2.8), 0.90, 1.0, low_income_odds=1.6),
    HouseholdShape("SINGLE_ADULT", 0.13, (18, 64), (1.3, 1.8), 0.62, 0.0, low_income_odds=1.0),
    HouseholdShape("COUPLE", 0.10, (22, 64), (1.2, 1.5), 0.85, 1.0, low_income_odds=0.6),
    HouseholdShape("NUCLEAR", 0.25, (25, 58), (2.0, 2.0), 0.82, 1.0, children=(0, 0.55, 0.35, 0.10),
                   low_income_odds=0.7),
    HouseholdShape("SINGLE_PARENT", 0.06, (24, 56), (2.0, 2.0), 0.30, 0.0, children=(0, 0.65, 0.30, 0.05),
                   low_income_odds=2.2),                                                             # 单亲
    HouseholdShape("THREE_GENERATIONS", 0.10, (28, 56), (2.0, 2.0), 0.80, 0.92,
                   children=(0.15, 0.45, 0.32, 0.08), parents=(0, 0.55, 0.45), low_income_odds=0.9),
    HouseholdShape("GRANDPARENT_HEADED", 0.06, (50, 80), (2.0, 2.0), 0.80, 0.80, children=(0, 1.0), other=0.75,
                   grandchildren=(0, 0.55, 0.38, 0.07), low_income_odds=0.9),
    HouseholdShape("SKIPPED_GENERATION", 0.03, (52, 80), (2.0, 2.0), 0.60, 0.70,
                   grandchildren=(0, 0.55, 0.35, 0.10), low_income_odds=2.0),                    # 隔代/留守
    HouseholdShape("SIBLINGS", 0.03, (20, 75), (1.5, 1.5), 0.55, 0.0, siblings=1.0, low_income_odds=1.5),
)
SHAPE_INDEX = {s.key: i for i, s in enumerate(SHAPES)}

CLASS_ORDINARY, CLASS_NEAR_POOR, CLASS_POOR = 0, 1, 2


@dataclass(frozen=True)
class SeedProfile:
    """Rates and amounts of the synthetic population. Illustrative demo values, not policy or statistics."""

    poor_share: float = 0.08           # before each shape's low-income odds
    near_poor_share: float = 0.09
    # disability (残疾) probability by age band <18, 18-59, 60-79, 80+; multiplied by the economic class factor
    disability_by_age: tuple[float, float, float, float] = (0.01, 0.03, 0.08, 0.15)
    disability_category_p: tuple[float, ...] = (0.14, 0.15, 0.01, 0.48, 0.07, 0.08, 0.07)  # DISABILITY_CATEGORIES
    disability_level_p: tuple[float, float, float, float] = (0.12, 0.18, 0.30, 0.40)
    chronic_by_age: tuple[float, ...] = (0.02, 0.06, 0.18, 0.35, 0.45)   # <18, 18-44, 45-59, 60-74, 75+
    major_by_age: tuple[float, ...] = (0.003, 0.005, 0.015, 0.03, 0.03)
    health_class_factor: tuple[float, float, float] = (0.8, 1.5, 2.5)   # ordinary, near-poor, poor
    employed_p: tuple[float, float, float] = (0.85, 0.65, 0.40)
    unemployed_p: tuple[float, float, float] = (0.06, 0.15, 0.30)
    retired_p: tuple[float, float, float] = (0.55, 0.30, 0.15)          # urban employee pension (60+)
    # monthly amounts in yuan: lognormal (median, sigma)
    wage: tuple[tuple[float, float], ...] = ((4200, 0.55), (1900, 0.35), (950, 0.45))
    employee_pension: tuple[tuple[float, float], ...] = ((3300, 0.35), (2000, 0.30), (1300, 0.30))
    resident_pension: tuple[float, float] = (220, 0.30)
    transfer_p: tuple[float, float, float] = (0.05, 0.25, 0.35)
    transfer: tuple[tuple[float, float], ...] = ((1500, 0.6), (500, 0.5), (300, 0.5))
    # annual amounts
    business_p: tuple[float, float, float] = (0.06, 0.04, 0.01)
    business: tuple[tuple[float, float], ...] = ((60000, 0.8), (15000, 0.6), (6000, 0.6))
    rent_p: tuple[float, float, float] = (0.04, 0.01, 0.0)
    rent: tuple[float, float] = (24000, 0.6)
    medical_major: tuple[float, float] = (40000, 0.8)
    medical_chronic_p: float = 0.6
    medical_chronic: tuple[float, float] = (3000, 0.7)
    tuition: dict[str, float] = field(default_factory=lambda: {
        "HIGH_SCHOOL": 3000, "VOCATIONAL": 4000, "UNDERGRADUATE": 9000, "POSTGRADUATE": 12000})
    # assets as of the month end
    deposit: tuple[tuple[float, float], ...] = ((40000, 1.1), (5000, 0.9), (1200, 0.9))
    securities_p: tuple[float, float, float] = (0.08, 0.01, 0.0)
    securities: tuple[float, float] = (50000, 1.2)
    real_estate_p: tuple[float, float, float] = (0.35, 0.05, 0.01)
    real_estate: tuple[tuple[float, float], ...] = ((600000, 0.7), (200000, 0.6), (100000, 0.6))
    vehicle_p: tuple[float, float, float] = (0.30, 0.05, 0.01)
    vehicle: tuple[tuple[float, float], ...] = ((90000, 0.6), (30000, 0.5), (15000, 0.5))
    phone_p_adult: float = 0.95
    phone_p_old: float = 0.60          # 75 and over
    elderly_child_link_p: float = 0.7  # elderly households linked to an adult child living elsewhere


DEFAULT_PROFILE = SeedProfile()

# Surnames with rough national weights (per cent); provinces reweight a few (illustrative, for realism only).
_SURNAMES = (
    "王7.1 李7.0 张6.7 刘5.4 陈4.5 杨3.1 黄2.2 赵2.0 吴1.9 周1.9 徐1.5 孙1.5 马1.4 朱1.3 胡1.3 郭1.2 何1.2 林1.1 "
    "高1.1 罗1.0 郑1.0 梁0.9 谢0.8 宋0.8 唐0.8 许0.7 韩0.7 冯0.7 邓0.7 曹0.7 彭0.6 曾0.6 肖0.6 田0.6 董0.5 袁0.5 "
    "潘0.5 蒋0.5 蔡0.5 余0.5 杜0.5 叶0.5 程0.5 魏0.4 苏0.4 吕0.4 丁0.4 任0.4 卢0.4 姚0.4 沈0.4 钟0.4 姜0.4 崔0.4 "
    "谭0.4 陆0.3 范0.3 汪0.3 廖0.3 石0.3 金0.3 韦0.3 贾0.3 夏0.3 付0.3 方0.3 邹0.3 熊0.3 白0.3 孟0.3 秦0.3 邱0.3 "
    "侯0.3 江0.3 尹0.3 薛0.2 闫0.2 段0.2 雷0.2 龙0.2 黎0.2 史0.2 陶0.2 贺0.2 毛0.2 郝0.2 顾0.2 龚0.2 邵0.2 万0.2 "
    "覃0.2 武0.2 钱0.2 戴0.2 严0.2 莫0.2 孔0.2 向0.2 常0.2 汤0.2 洪0.1 麦0.05"
)
SURNAMES = np.array([s[0] for s in _SURNAMES.split()])
SURNAME_WEIGHTS = np.array([float(s[1:]) for s in _SURNAMES.split()])
PROVINCE_SURNAME_FACTORS: dict[str, dict[str, float]] = {
    "44": {"陈": 2.5, "黄": 2.2, "梁": 2.5, "李": 1.2, "林": 1.5, "张": 0.7, "刘": 0.8, "王": 0.6, "冯": 1.5,
           "罗": 1.5, "何": 1.5, "钟": 2.0, "叶": 2.0, "曾": 2.0, "邓": 1.5, "麦": 8.0, "赵": 0.5},
    "35": {"陈": 3.0, "林": 4.0, "黄": 2.5, "郑": 2.5, "吴": 1.5, "王": 0.8, "张": 0.8, "李": 0.8, "刘": 0.8,
           "蔡": 2.0, "许": 1.5, "叶": 1.5, "洪": 6.0, "苏": 1.5, "赵": 0.5},
    "62": {"张": 1.4, "王": 1.4, "李": 1.3, "刘": 1.2, "杨": 1.2, "马": 2.5, "赵": 1.3, "陈": 0.6, "黄": 0.3,
           "林": 0.3, "梁": 0.6, "何": 0.6},
}
GIVEN_MALE = np.array(list("伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳建国志文海峰东亮成宏晨博子轩睿泽豪然翔航振荣德"))
GIVEN_FEMALE = np.array(list("芳娜敏静丽艳娟霞秀英玲燕萍红梅琳雪慧莉婷欣怡佳琪颖璐晶倩蕾悦诗涵梓萱雨思月妍淑兰凤桂珍玉"))
PHONE_PREFIXES = np.array([130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157,
                           158, 159, 166, 177, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 198, 199],
                          dtype=np.int64)
DISABILITY = np.array(DISABILITY_CATEGORIES)
_VILLAGE_SUFFIXES = ("居民委员会", "村民委员会", "社区居委会", "村委会", "居委会")

# economic item sources (家庭经济状况核对 data sources)
SOURCE_TAX, SOURCE_SOCIAL_INSURANCE, SOURCE_SELF_DECLARED = "TAX", "SOCIAL_INSURANCE", "SELF_DECLARED"
SOURCE_BANK, SOURCE_SECURITIES, SOURCE_REAL_ESTATE, SOURCE_VEHICLE = "BANK", "SECURITIES", "REAL_ESTATE", "VEHICLE"
SOURCE_MEDICAL_INSURANCE, SOURCE_EDUCATION = "MEDICAL_INSURANCE", "EDUCATION"

# --- table layouts written by the seed -------------------------------------------------------------------

COLUMNS: dict[str, tuple[str, ...]] = {
    "household": ("id", "household_number", "region_code", "address", "version", "created_at", "updated_at"),
    "person": ("id", "id_number", "id_number_index", "name", "sex", "birth_date", "hukou_region_code", "region_code",
               "disability_category", "disability_level", "chronic_disease", "major_disease", "hospitalised",
               "labour_capacity", "employment_status", "student_stage", "phone", "version", "created_at",
               "updated_at"),
    "membership": ("id", "household_id", "person_id", "relation_to_head", "valid_from"),
    "relationship": ("id", "from_person_id", "to_person_id", "kind", "valid_from"),
    "economic_item": ("id", "household_id", "person_id", "kind", "source", "amount", "period_start", "period_end",
                      "recorded_at", "recorded_by"),
}
TABLES = tuple(COLUMNS)  # insertion order: parents before children


# --- the province ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvinceRegions:
    """The regions households are placed in: villages where the tree has them, else townships."""

    province: str
    level: str
    codes: np.ndarray          # region codes, sorted
    counties: np.ndarray       # their county codes (6 digits) as int64
    address_prefix: np.ndarray  # township + village short name
    weights: np.ndarray        # relative population weight of each region (drawn once per seed)


def known_provinces() -> dict[str, str]:
    """The provinces of the bundled NBS division tree: code -> name."""
    with (DIVISIONS_DIR / "provinces.csv").open(encoding="utf-8", newline="") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}


def _short_village(name: str) -> str:
    for suffix in _VILLAGE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_province(engine: Engine, province: str, seed: int) -> ProvinceRegions:
    """Read the province's villages (or townships) from the region table; raise :class:`SeedError` if absent."""
    provinces = known_provinces()
    if province not in provinces:
        raise SeedError(f"unknown province code {province!r}: expected one of the 2-digit NBS codes "
                        f"({', '.join(sorted(provinces))})")
    with engine.connect() as conn:
        counts: dict[str, int] = dict(conn.execute(text(
            "SELECT level, count(*) FROM region WHERE province_code = :p GROUP BY level"), {"p": province}).all())
        level = "VILLAGE" if counts.get("VILLAGE") else "TOWNSHIP"
        if not counts.get(level):
            raise SeedError(f"province {province} ({provinces[province]}) has no regions in the database: "
                            f"run `aidgraph load-regions` first")
        rows = conn.execute(text(
            "SELECT r.code, r.name, p.name FROM region r JOIN region p ON p.code = r.parent_code "
            "WHERE r.province_code = :p AND r.level = :level ORDER BY r.code"), {"p": province, "level": level}).all()
        county_codes = {c for (c,) in conn.execute(text(
            "SELECT code FROM region WHERE province_code = :p AND level = 'COUNTY'"), {"p": province}).all()}
    codes = np.array([r[0] for r in rows])
    missing = sorted({c[:6] for c in codes} - county_codes)
    if missing:
        raise SeedError(f"province {province}: regions {missing[:5]} have no county in the region tree; "
                        f"run `aidgraph load-regions` again")
    if level == "VILLAGE":
        prefix = np.array([f"{town}{_short_village(name)}" for _, name, town in rows])
    else:
        prefix = np.array([name for _, name, _ in rows])
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(province), 0x7E610]))
    weights = rng.lognormal(0.0, 0.6, len(codes))
    return ProvinceRegions(province, level, codes, np.array([int(c[:6]) for c in codes], dtype=np.int64), prefix,
                           weights / weights.sum())


def household_number(province: str, seed: int, index: int) -> str:
    """``S`` + province + 5-digit seed + 9-digit index: the seeded household's number (unique, sortable)."""
    return f"{HOUSEHOLD_NUMBER_PREFIX}{province}{seed:05d}{index:09d}"


# --- ID numbers already taken ------------------------------------------------------------------------------


class UsedIdStems:
    """The sorted 17-digit stems of ID numbers already stored (or written by this run) for the province."""

    def __init__(self, stems: np.ndarray | None = None):
        self.stems = np.sort(stems) if stems is not None else np.empty(0, dtype=np.int64)

    @classmethod
    def load(cls, engine: Engine, province: str) -> "UsedIdStems":
        upper = f"{int(province) + 1:02d}"
        # the ID number is stored encrypted: select by its address code (hukou_region_code, its first six
        # digits), then decrypt
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT id_number FROM person WHERE hukou_region_code >= :lo "
                                       "AND hukou_region_code < :hi"), {"lo": province, "hi": upper}).scalars().all()
        series = pl.Series(open_values(stored, ID_NUMBER), dtype=pl.Utf8).str.slice(0, 17).cast(pl.Int64, strict=False).drop_nulls()
        return cls(series.to_numpy())

    def contains(self, stems: np.ndarray) -> np.ndarray:
        if len(self.stems) == 0:
            return np.zeros(len(stems), dtype=bool)
        pos = np.searchsorted(self.stems, stems)
        pos = np.minimum(pos, len(self.stems) - 1)
        return self.stems[pos] == stems

    def add(self, stems: np.ndarray) -> None:
        new = np.sort(stems)
        self.stems = np.insert(self.stems, np.searchsorted(self.stems, new), new)


def id_numbers_from_stems(stems: np.ndarray) -> np.ndarray:
    """18-character ID numbers (ISO 7064 MOD 11-2 check character appended) from 17-digit integer stems."""
    total = np.zeros(len(stems), dtype=np.int64)
    for i, weight in enumerate(WEIGHTS):
        total += (stems // 10 ** (16 - i)) % 10 * weight
    check = np.array(list(CHECK_CHARS))[total % 11]
    return np.char.add(stems.astype("U17"), check)


def _resolve_stems(address: np.ndarray, ymd: np.ndarray, male: np.ndarray, draw: np.ndarray,
                   used: UsedIdStems) -> np.ndarray:
    """Give every person a sequence number (顺序码, odd for men) not taken in the database nor in this chunk.

    Clashing persons move to the next number of the same parity; among persons drawing the same number the
    one moved fewest times, then the earliest, keeps it, so the result is deterministic.
    """
    base = address * 10**11 + ymd * 1000 + male.astype(np.int64)
    slot = draw.astype(np.int64)
    moves = np.zeros(len(base), dtype=np.int64)
    order_index = np.arange(len(base))
    for _ in range(600):
        stems = base + 2 * slot
        clash = used.contains(stems)
        order = np.lexsort((order_index, moves, stems))
        sorted_stems = stems[order]
        dup_sorted = np.zeros(len(stems), dtype=bool)
        dup_sorted[1:] = sorted_stems[1:] == sorted_stems[:-1]
        clash[order[dup_sorted]] = True
        if not clash.any():
            return stems
        slot[clash] = (slot[clash] + 1) % 500
        moves[clash] += 1
        if (moves >= 500).any():
            i = int(np.argmax(moves >= 500))
            raise SeedError(f"no free ID sequence number for county {address[i]} born {ymd[i]}")
    raise SeedError("could not assign unique ID numbers")


# --- drawing one chunk -------------------------------------------------------------------------------------


@dataclass
class ChunkFrames:
    """One chunk's rows with chunk-local ids (``local``); :func:`with_ids` turns them into table rows."""

    households: pl.DataFrame
    persons: pl.DataFrame
    memberships: pl.DataFrame
    relationships: pl.DataFrame
    economic_items: pl.DataFrame
    audit: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"household": self.households.height, "person": self.persons.height,
                "membership": self.memberships.height, "relationship": self.relationships.height,
                "economic_item": self.economic_items.height}


def _pick(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category per row of a (rows x categories) probability matrix, vectorised."""
    cdf = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities))[:, None] * cdf[:, -1:]
    return (u > cdf).sum(axis=1)


def _pad(values: tuple[float, ...], width: int) -> list[float]:
    return list(values) + [0.0] * (width - len(values))


def _shape_matrix(attr: str, width: int) -> np.ndarray:
    return np.array([_pad(getattr(s, attr), width) for s in SHAPES])


def _lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: np.ndarray | float, n: int) -> np.ndarray:
    return np.asarray(median) * np.exp(rng.normal(0.0, 1.0, n) * np.asarray(sigma))


def _by_class(rng, pairs, klass):
    medians = np.array([p[0] for p in pairs])[klass]
    sigmas = np.array([p[1] for p in pairs])[klass]
    return _lognormal(rng, medians, sigmas, len(klass))


def _strings(values: np.ndarray, present: np.ndarray) -> pl.Series:
    """A string column that is null where ``present`` is false."""
    return pl.select(pl.when(pl.Series(present)).then(pl.Series(values, dtype=pl.Utf8))).to_series()


def _ymd(dates: np.ndarray) -> np.ndarray:
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    return years * 10000 + months * 100 + days


def _months_before(as_of: dt.date, count: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """The first and last days of the ``count`` calendar months before ``as_of``'s month, oldest first."""
    this_month = np.datetime64(as_of, "M")
    months = this_month - np.arange(count, 0, -1)
    starts = months.astype("datetime64[D]")
    ends = (months + 1).astype("datetime64[D]") - 1
    return starts, ends


@dataclass(frozen=True)
class SeedPlan:
    """What one ``aidgraph seed`` run writes: the province, the number of households, the seed and the date."""

    regions: ProvinceRegions
    households: int
    seed: int
    as_of: dt.date
    chunk_size: int = DEFAULT_CHUNK_HOUSEHOLDS
    profile: SeedProfile = DEFAULT_PROFILE

    @property
    def province(self) -> str:
        return self.regions.province

    def chunks(self) -> list[tuple[int, int]]:
        return [(start, min(start + self.chunk_size, self.households))
                for start in range(0, self.households, self.chunk_size)]

    def number(self, index: int) -> str:
        return household_number(self.province, self.seed, index)


def generate_chunk(plan: SeedPlan, start: int, stop: int, used: UsedIdStems,
                   skip: np.ndarray | None = None, now: dt.datetime | None = None) -> ChunkFrames:
    """Draw households ``start .. stop-1`` of the plan; ``skip`` (bool per household) drops ones already stored.

    The draws depend only on (seed, province, start, stop), so a chunk is the same in every run; the ID
    sequence numbers also depend on ``used``, which the caller extends with the returned persons' stems.
    """
    p = plan.profile
    rng = np.random.default_rng(np.random.SeedSequence([plan.seed, int(plan.province), start, stop]))
    as_of = np.datetime64(plan.as_of, "D")
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    n = stop - start
    shape_w = np.array([s.weight for s in SHAPES])

    # households: shape, region, economic class
    shape = rng.choice(len(SHAPES), size=n, p=shape_w / shape_w.sum())
    region = rng.choice(len(plan.regions.codes), size=n, p=plan.regions.weights)
    odds = np.array([s.low_income_odds for s in SHAPES])[shape]
    u = rng.random(n)
    klass = np.where(u < p.poor_share * odds, CLASS_POOR,
                     np.where(u < (p.poor_share + p.near_poor_share) * odds, CLASS_NEAR_POOR, CLASS_ORDINARY))

    # composition: counts per role
    counts = np.zeros((n, N_ROLES), dtype=np.int64)
    counts[:, ROLE_SELF] = 1
    counts[:, ROLE_SPOUSE] = rng.random(n) < np.array([s.spouse for s in SHAPES])[shape]
    counts[:, ROLE_CHILD] = _pick(rng, _shape_matrix("children", 4)[shape])
    counts[:, ROLE_PARENT] = _pick(rng, _shape_matrix("parents", 3)[shape])
    counts[:, ROLE_OTHER] = rng.random(n) < np.array([s.other for s in SHAPES])[shape]
    counts[:, ROLE_GRANDCHILD] = _pick(rng, _shape_matrix("grandchildren", 4)[shape])
    counts[:, ROLE_SIBLING] = rng.random(n) < np.array([s.siblings for s in SHAPES])[shape]
    has_spouse = counts[:, ROLE_SPOUSE] > 0
    has_other = counts[:, ROLE_OTHER] > 0

    # household-level ages (years) that members are drawn against
    lo = np.array([s.head_age[0] for s in SHAPES])[shape]
    hi = np.array([s.head_age[1] for s in SHAPES])[shape]
    a = np.array([s.head_age_beta[0] for s in SHAPES])[shape]
    b = np.array([s.head_age_beta[1] for s in SHAPES])[shape]
    head_age = lo + (hi - lo) * rng.beta(a, b)
    head_male = rng.random(n) < np.array([s.head_male for s in SHAPES])[shape]
    # 20.5: no spouse below the legal marriage age (法定婚龄 20 for women, 22 for men)
    spouse_age = np.clip(head_age + np.where(head_male, -2.0, 2.0) + np.clip(rng.normal(0, 3, n), -6, 6), 20.5, 100)
    youngest_parent = np.where(has_spouse, np.minimum(head_age, spouse_age), head_age)
    adult_child_age = np.maximum(youngest_parent - rng.uniform(22, 34, n), 20.5)
    adult_child_male = rng.random(n) < 0.8
    other_age = np.clip(adult_child_age + np.clip(rng.normal(0, 3, n), -6, 6), 20.5, 100)
    young_parent = np.where(has_other, np.minimum(adult_child_age, other_age), adult_child_age)
    father_age = np.minimum(head_age + rng.uniform(24, 36, n), 101)
    mother_age = np.maximum(father_age - rng.uniform(0, 4, n), head_age + 20)
    lone_parent_male = rng.random(n) < 0.35
    formed_years = rng.uniform(0.3, 1.0, n) * np.clip(head_age - 18, 0.5, 40)

    # persons: one row per member, laid out by role
    sizes = counts.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    role_end = np.cumsum(counts, axis=1)
    role_start = role_end - counts
    m = int(sizes.sum())
    hh = np.repeat(np.arange(n), sizes)
    pos = np.arange(m) - offsets[hh]
    role = (pos[:, None] >= role_end[hh]).sum(axis=1)
    ordinal = pos - role_start[hh, role]
    shape_p = shape[hh]
    adult_child_shape = shape_p == SHAPE_INDEX["GRANDPARENT_HEADED"]

    child_cap = np.clip(youngest_parent - 20, 0.5, 30)[hh]
    gc_cap = np.clip(young_parent - 20, 0.5, 25)[hh]
    draws = rng.random(m)
    age = np.select(
        [role == ROLE_SELF, role == ROLE_SPOUSE,
         (role == ROLE_CHILD) & adult_child_shape, role == ROLE_CHILD,
         (role == ROLE_PARENT) & (ordinal == 0), role == ROLE_PARENT,
         role == ROLE_OTHER,
         (role == ROLE_GRANDCHILD) & (shape_p == SHAPE_INDEX["SKIPPED_GENERATION"]), role == ROLE_GRANDCHILD],
        [head_age[hh], spouse_age[hh],
         adult_child_age[hh], draws * child_cap,
         father_age[hh], mother_age[hh],
         other_age[hh],
         1 + draws * np.minimum(15, np.maximum(youngest_parent[hh] - 40, 1)), draws * gc_cap],
        default=np.clip(head_age[hh] + rng.normal(0, 4, m), 16, 95),
    )
    male_draw = rng.random(m)
    two_parents = counts[hh, ROLE_PARENT] == 2
    male = np.select(
        [role == ROLE_SELF, role == ROLE_SPOUSE,
         (role == ROLE_CHILD) & adult_child_shape, role == ROLE_CHILD,
         (role == ROLE_PARENT) & two_parents, role == ROLE_PARENT,
         role == ROLE_OTHER],
        [head_male[hh], ~head_male[hh],
         adult_child_male[hh], male_draw < 0.515,
         ordinal == 0, lone_parent_male[hh],
         ~adult_child_male[hh]],
        default=male_draw < 0.515,
    )
    age_days = np.maximum(np.round(age * 365.2425).astype(np.int64), 1)
    birth = as_of - age_days
    age_years = np.floor(age).astype(np.int64)
    klass_p = klass[hh]

    # health: disability (残疾), chronic and major disease
    class_factor = np.array(p.health_class_factor)[klass_p]
    band4 = np.digitize(age_years, [18, 60, 80])
    band5 = np.digitize(age_years, [18, 45, 60, 75])
    disabled = rng.random(m) < np.array(p.disability_by_age)[band4] * class_factor
    category = rng.choice(len(DISABILITY), size=m, p=np.array(p.disability_category_p) / sum(p.disability_category_p))
    level = rng.choice(4, size=m, p=np.array(p.disability_level_p)) + 1
    chronic = rng.random(m) < np.minimum(np.array(p.chronic_by_age)[band5] * class_factor, 0.9)
    major = rng.random(m) < np.array(p.major_by_age)[band5] * class_factor
    hospital_draw = rng.random(m)
    hospitalised = np.where(major, hospital_draw < 0.25, np.where(chronic, hospital_draw < 0.04,
                                                                   hospital_draw < 0.003))

    # education stage (学段) by age
    stage_draw = rng.random(m)
    college_factor = np.array([1.0, 0.85, 0.7])[klass_p]
    stage = np.full(m, None, dtype=object)
    stage[(age_years >= 3) & (age_years < 6) & (stage_draw < 0.9)] = "PRESCHOOL"
    stage[(age_years >= 6) & (age_years < 15) & (stage_draw < 0.99)] = "COMPULSORY"
    teen = (age_years >= 15) & (age_years < 18)
    stage[teen & (stage_draw < 0.6)] = "HIGH_SCHOOL"
    stage[teen & (stage_draw >= 0.6) & (stage_draw < 0.9)] = "VOCATIONAL"
    young = (age_years >= 18) & (age_years < 22)
    stage[young & (stage_draw < 0.40 * college_factor)] = "UNDERGRADUATE"
    stage[young & (stage_draw >= 0.40 * college_factor) & (stage_draw < 0.55 * college_factor)] = "VOCATIONAL"
    stage[(age_years >= 22) & (age_years < 26) & (stage_draw < 0.06 * college_factor)] = "POSTGRADUATE"
    severe = disabled & (level <= 2)
    stage[severe & (age_years >= 15)] = None  # severely disabled youths mostly out of school (home teaching aside)
    student = stage != None  # noqa: E711 (object array comparison)

    # labour capacity and employment, consistent with age and health
    capacity = np.where(age_years < 16, "NONE",
                        np.where(age_years < 60, "FULL", np.where(age_years < 70, "PARTIAL", "NONE"))).astype(object)
    capacity[disabled & (level >= 3) & (capacity == "FULL")] = "PARTIAL"
    capacity[disabled & (level <= 2)] = "NONE"
    major_draw = rng.random(m)
    capacity[major & (major_draw < 0.5)] = "NONE"
    capacity[major & (major_draw >= 0.5) & (capacity == "FULL")] = "PARTIAL"
    capacity[chronic & (rng.random(m) < 0.25) & (capacity == "FULL")] = "PARTIAL"
    capacity[student & (age_years >= 16) & (capacity == "NONE") & ~(disabled & (level <= 2))] = "FULL"

    job_draw = rng.random(m)
    employed_p = np.array(p.employed_p)[klass_p] * np.where(capacity == "PARTIAL", 0.5, 1.0)
    unemployed_p = np.array(p.unemployed_p)[klass_p]
    working_age = (age_years >= 16) & (age_years < 60)
    status = np.full(m, "NOT_IN_LABOUR_FORCE", dtype=object)
    status[working_age & (capacity != "NONE") & (job_draw < employed_p)] = "EMPLOYED"
    status[working_age & (capacity != "NONE") & (job_draw >= employed_p)
           & (job_draw < employed_p + unemployed_p)] = "UNEMPLOYED"
    retired_age = (age_years >= 60) | (~male & (age_years >= 55) & (rng.random(m) < 0.5))
    retired = retired_age & (rng.random(m) < np.array(p.retired_p)[klass_p])
    status[retired] = "RETIRED"
    status[(age_years >= 60) & (age_years < 70) & ~retired & (capacity == "PARTIAL") & (job_draw < 0.2)] = "EMPLOYED"
    status[student] = "STUDENT"

    # names: the family's surname passes to children and grandchildren
    sw = SURNAME_WEIGHTS * np.array([PROVINCE_SURNAME_FACTORS.get(plan.province, {}).get(s, 1.0) for s in SURNAMES])
    own_surname = rng.choice(len(SURNAMES), size=m, p=sw / sw.sum())
    head_surname = own_surname[offsets]
    spouse_surname = own_surname[np.minimum(offsets + 1, m - 1)]
    family_surname = np.where(~head_male & has_spouse, spouse_surname, head_surname)
    other_surname = own_surname[np.minimum(offsets + role_start[:, ROLE_OTHER], m - 1)]
    gc_surname = np.where(adult_child_male | ~has_other, family_surname, other_surname)
    surname = np.select(
        [role == ROLE_CHILD, role == ROLE_GRANDCHILD, (role == ROLE_PARENT) & male, role == ROLE_SIBLING],
        [family_surname[hh], np.where(adult_child_shape, gc_surname[hh], family_surname[hh]), head_surname[hh],
         head_surname[hh]],
        default=own_surname,
    )
    pool_size = np.where(male, len(GIVEN_MALE), len(GIVEN_FEMALE))
    g1 = (rng.random(m) * pool_size).astype(np.int64)
    g2 = (rng.random(m) * pool_size).astype(np.int64)
    two_chars = rng.random(m) < 0.78
    first = np.where(male, GIVEN_MALE[np.minimum(g1, len(GIVEN_MALE) - 1)],
                     GIVEN_FEMALE[np.minimum(g1, len(GIVEN_FEMALE) - 1)])
    second = np.where(male, GIVEN_MALE[np.minimum(g2, len(GIVEN_MALE) - 1)],
                      GIVEN_FEMALE[np.minimum(g2, len(GIVEN_FEMALE) - 1)])
    names = np.char.add(np.char.add(SURNAMES[surname], first), np.where(two_chars, second, ""))

    # phones: most adults, fewer of the oldest, some teenagers
    phone_draw = rng.random(m)
    has_phone = np.where(age_years < 14, False,
                         np.where(age_years < 18, phone_draw < 0.5,
                                  np.where(age_years < 75, phone_draw < p.phone_p_adult, phone_draw < p.phone_p_old)))
    phone_numbers = PHONE_PREFIXES[rng.integers(0, len(PHONE_PREFIXES), m)] * 10**8 + rng.integers(0, 10**8, m)
    sequence_draw = rng.integers(0, 500, m)

    # relationships inside households: (from, to, kind, valid_from) with chunk-local person indices
    head_of = offsets[hh]
    spouse_of = offsets[hh] + 1
    adult_child_of = offsets[hh] + role_start[hh, ROLE_CHILD]
    other_of = offsets[hh] + role_start[hh, ROLE_OTHER]
    persons = np.arange(m)
    edges: list[tuple[np.ndarray, np.ndarray, str, np.ndarray]] = []

    def edge(frm, to, kind, since):
        edges.append((np.asarray(frm, dtype=np.int64), np.asarray(to, dtype=np.int64), kind, np.asarray(since)))

    is_head = role == ROLE_SELF
    wed = is_head & has_spouse[hh]
    couple_birth = np.maximum(birth[persons[wed]], birth[spouse_of[wed]])
    marriage = np.minimum(couple_birth + (rng.uniform(20, 28, int(wed.sum())) * 365.2425).astype(np.int64),
                          as_of - 1)
    edge(persons[wed], spouse_of[wed], "SPOUSE", marriage)
    mother = (role == ROLE_PARENT) & (ordinal == 1)
    edge(persons[mother] - 1, persons[mother], "SPOUSE",
         np.minimum(birth[persons[mother] - 1] + 25 * 365, as_of - 1))
    child = role == ROLE_CHILD
    edge(head_of[child], persons[child], "PARENT", birth[child])
    child_with_two = child & has_spouse[hh]
    edge(spouse_of[child_with_two], persons[child_with_two], "PARENT", birth[child_with_two])
    parent = role == ROLE_PARENT
    edge(persons[parent], head_of[parent], "PARENT", birth[head_of[parent]])
    other = role == ROLE_OTHER
    edge(adult_child_of[other], persons[other], "SPOUSE",
         np.minimum(np.maximum(birth[adult_child_of[other]], birth[other]) + 22 * 365, as_of - 1))
    grandchild = role == ROLE_GRANDCHILD
    gc_in_3gen = grandchild & adult_child_shape
    edge(adult_child_of[gc_in_3gen], persons[gc_in_3gen], "PARENT", birth[gc_in_3gen])
    gc_with_other = gc_in_3gen & has_other[hh]
    edge(other_of[gc_with_other], persons[gc_with_other], "PARENT", birth[gc_with_other])
    left_behind = grandchild & (shape_p == SHAPE_INDEX["SKIPPED_GENERATION"])
    edge(head_of[left_behind], persons[left_behind], "GUARDIAN", birth[left_behind])
    lb_two = left_behind & has_spouse[hh]
    edge(spouse_of[lb_two], persons[lb_two], "GUARDIAN", birth[lb_two])

    # relationships across households: elderly parents and their adult children living elsewhere (赡养),
    # left-behind children and their migrant parents (抚养)
    shape_h = shape
    eighteenth = birth + int(18 * 365.2425)
    elderly_h = np.flatnonzero(np.isin(shape_h, [SHAPE_INDEX["ELDERLY_ALONE"], SHAPE_INDEX["ELDERLY_COUPLE"]])
                               & (rng.random(n) < p.elderly_child_link_p))
    family_candidates = np.isin(shape_h, [SHAPE_INDEX["NUCLEAR"], SHAPE_INDEX["SINGLE_PARENT"]]) | (
        np.isin(shape_h, [SHAPE_INDEX["SINGLE_ADULT"], SHAPE_INDEX["COUPLE"]]) & (head_age >= 45))
    migrant_candidates = np.isin(shape_h, [SHAPE_INDEX["SINGLE_ADULT"], SHAPE_INDEX["COUPLE"]]) & (head_age < 45)
    county = plan.regions.counties[region]
    target = youngest_parent - rng.uniform(24, 34, n)

    oldest_grandchild = np.zeros(n)
    np.maximum.at(oldest_grandchild, hh[role == ROLE_GRANDCHILD], age[role == ROLE_GRANDCHILD])

    def match(seekers: np.ndarray, candidates: np.ndarray, by_county: bool,
              max_gap: float) -> tuple[np.ndarray, np.ndarray]:
        """Pair each seeking household with a candidate household whose head has about the target age."""
        cand = np.flatnonzero(candidates)
        if len(seekers) == 0 or len(cand) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        group = county if by_county else np.zeros(n, dtype=np.int64)
        keys = group[cand] * 1000.0 + head_age[cand]
        order = np.argsort(keys, kind="stable")
        cand, keys = cand[order], keys[order]
        want = group[seekers] * 1000.0 + target[seekers]
        at = np.clip(np.searchsorted(keys, want), 0, len(cand) - 1)
        found = cand[at]
        ok = (group[found] == group[seekers]) & (np.abs(head_age[found] - target[seekers]) <= max_gap) & (
            head_age[found] <= youngest_parent[seekers] - 18) & (head_age[found] >= oldest_grandchild[seekers] + 18)
        seekers, found = seekers[ok], found[ok]
        _, first = np.unique(found, return_index=True)
        first = np.sort(first)
        return seekers[first], found[first]

    old, kin = match(elderly_h, family_candidates, True, 6.0)
    skipped_h = np.flatnonzero(shape_h == SHAPE_INDEX["SKIPPED_GENERATION"])
    gp, migrant = match(skipped_h, migrant_candidates & ~np.isin(np.arange(n), kin), False, 8.0)
    for seniors, junior in ((old, kin), (gp, migrant)):
        child_head = offsets[junior]
        edge(offsets[seniors], child_head, "PARENT", birth[child_head])
        edge(child_head, offsets[seniors], "SUPPORT_OBLIGOR", eighteenth[child_head])
        two = has_spouse[seniors]
        edge(offsets[seniors][two] + 1, child_head[two], "PARENT", birth[child_head[two]])
        edge(child_head[two], offsets[seniors][two] + 1, "SUPPORT_OBLIGOR", eighteenth[child_head[two]])
    migrant_of = np.full(n, -1, dtype=np.int64)
    migrant_of[gp] = offsets[migrant]
    lb = left_behind & (migrant_of[hh] >= 0)
    edge(migrant_of[hh][lb], persons[lb], "PARENT", birth[lb])
    edge(migrant_of[hh][lb], persons[lb], "SUPPORT_OBLIGOR", birth[lb])

    # economic items
    month_start, month_end = _months_before(plan.as_of)
    year_start, year_end = month_start[0], month_end[-1]
    asset_day = month_end[-1]
    items: list[tuple[np.ndarray, np.ndarray, str, str, np.ndarray, np.ndarray, np.ndarray]] = []

    def monthly(who: np.ndarray, household: np.ndarray, kind: str, source: str, base: np.ndarray, vary: float):
        k = len(who)
        amount = np.repeat(base, 12) * (1 + (rng.normal(0, vary, 12 * k) if vary else 0.0))
        items.append((np.repeat(who, 12), np.repeat(household, 12), kind, source, amount,
                      np.tile(month_start, k), np.tile(month_end, k)))

    def once(who, household, kind, source, amount, period_start, period_end):
        k = len(who)
        items.append((who, household, kind, source, amount, np.full(k, period_start), np.full(k, period_end)))

    earner = persons[status == "EMPLOYED"]
    wage = _by_class(rng, p.wage, klass_p[earner]) * np.where(capacity[earner] == "PARTIAL", 0.6, 1.0)
    monthly(earner, hh[earner], "WAGE", SOURCE_TAX, wage, 0.06)
    pensioner = persons[status == "RETIRED"]
    monthly(pensioner, hh[pensioner], "PENSION", SOURCE_SOCIAL_INSURANCE,
            _by_class(rng, p.employee_pension, klass_p[pensioner]), 0.0)
    resident = persons[(age_years >= 60) & (status != "RETIRED") & (rng.random(m) < 0.9)]
    monthly(resident, hh[resident], "PENSION", SOURCE_SOCIAL_INSURANCE,
            _lognormal(rng, p.resident_pension[0], p.resident_pension[1], len(resident)), 0.0)
    households_idx = np.arange(n)
    gets_transfer = households_idx[rng.random(n) < np.array(p.transfer_p)[klass]]
    monthly(np.full(len(gets_transfer), -1), gets_transfer, "TRANSFER", SOURCE_SELF_DECLARED,
            _by_class(rng, p.transfer, klass[gets_transfer]), 0.1)
    business = households_idx[rng.random(n) < np.array(p.business_p)[klass]]
    once(offsets[business], business, "BUSINESS", SOURCE_TAX, _by_class(rng, p.business, klass[business]),
         year_start, year_end)
    renting = households_idx[rng.random(n) < np.array(p.rent_p)[klass]]
    once(offsets[renting], renting, "PROPERTY_INCOME", SOURCE_SELF_DECLARED,
         _lognormal(rng, p.rent[0], p.rent[1], len(renting)), year_start, year_end)
    ill = persons[major]
    once(ill, hh[ill], "EXPENDITURE_MEDICAL", SOURCE_MEDICAL_INSURANCE,
         _lognormal(rng, p.medical_major[0], p.medical_major[1], len(ill)), year_start, year_end)
    chronic_cost = persons[chronic & ~major & (rng.random(m) < p.medical_chronic_p)]
    once(chronic_cost, hh[chronic_cost], "EXPENDITURE_MEDICAL", SOURCE_MEDICAL_INSURANCE,
         _lognormal(rng, p.medical_chronic[0], p.medical_chronic[1], len(chronic_cost)), year_start, year_end)
    tuition = np.select([stage == key for key in p.tuition], list(p.tuition.values()), default=0.0).astype(np.float64)
    paying = persons[tuition > 0]
    once(paying, hh[paying], "EXPENDITURE_EDUCATION", SOURCE_EDUCATION,
         tuition[paying] * np.exp(rng.normal(0, 0.3, len(paying))), year_start, year_end)
    saver = persons[is_head | ((role == ROLE_SPOUSE) & (rng.random(m) < 0.5))]
    once(saver, hh[saver], "DEPOSIT", SOURCE_BANK, _by_class(rng, p.deposit, klass_p[saver]), asset_day, asset_day)
    investor = households_idx[rng.random(n) < np.array(p.securities_p)[klass]]
    once(offsets[investor], investor, "SECURITIES", SOURCE_SECURITIES,
         _lognormal(rng, p.securities[0], p.securities[1], len(investor)), asset_day, asset_day)
    owner = households_idx[rng.random(n) < np.array(p.real_estate_p)[klass]]
    once(offsets[owner], owner, "REAL_ESTATE", SOURCE_REAL_ESTATE, _by_class(rng, p.real_estate, klass[owner]),
         asset_day, asset_day)
    driver = households_idx[rng.random(n) < np.array(p.vehicle_p)[klass]]
    once(offsets[driver], driver, "VEHICLE", SOURCE_VEHICLE, _by_class(rng, p.vehicle, klass[driver]),
         asset_day, asset_day)

    # ---- keep the households not already stored, then give their persons unique ID numbers ----
    keep_h = np.ones(n, dtype=bool) if skip is None else ~skip
    keep_p = keep_h[hh]
    new_h = np.cumsum(keep_h) - 1          # chunk-local household index -> index among kept households
    new_p = np.cumsum(keep_p) - 1
    kept_persons = np.flatnonzero(keep_p)
    address_code = plan.regions.counties[region][hh]
    stems = _resolve_stems(address_code[kept_persons], _ymd(birth[kept_persons]), male[kept_persons],
                           sequence_draw[kept_persons], used)
    used.add(stems)

    kept_h = np.flatnonzero(keep_h)
    region_codes = plan.regions.codes[region]
    numbers = pl.Series(start + kept_h, dtype=pl.Int64).cast(pl.Utf8).str.zfill(9)
    households = pl.DataFrame({
        "local": np.arange(len(kept_h), dtype=np.int64),
        "household_number": (f"{HOUSEHOLD_NUMBER_PREFIX}{plan.province}{plan.seed:05d}" + numbers),
        "region_code": region_codes[kept_h],
        "address": np.char.add(np.char.add(plan.regions.address_prefix[region[kept_h]],
                                           rng.integers(1, 300, n)[kept_h].astype("U3")), "号"),
        "version": np.ones(len(kept_h), dtype=np.int64),
        "created_at": [now] * len(kept_h),
    }).with_columns(pl.col("created_at").alias("updated_at"))

    kp = kept_persons
    person_frame = pl.DataFrame({
        "local": np.arange(len(kp), dtype=np.int64),
        "id_number": id_numbers_from_stems(stems),
        "name": names[kp],
        "sex": np.where(male[kp], "MALE", "FEMALE"),
        "birth_date": birth[kp],
        "hukou_region_code": address_code[kp].astype("U6"),
        "region_code": region_codes[hh[kp]],
        "disability_category": _strings(DISABILITY[category][kp], disabled[kp]),
        "disability_level": pl.Series(np.where(disabled, level, 0)[kp], dtype=pl.Int64),
        "chronic_disease": chronic[kp],
        "major_disease": major[kp],
        "hospitalised": hospitalised[kp],
        "labour_capacity": capacity[kp].astype(str),
        "employment_status": status[kp].astype(str),
        "student_stage": _strings(np.where(student, stage, "")[kp].astype(str), student[kp]),
        "phone": pl.Series(np.where(has_phone, phone_numbers, 0)[kp], dtype=pl.Int64),
        "version": np.ones(len(kp), dtype=np.int64),
        "created_at": [now] * len(kp),
    }).with_columns(
        pl.when(pl.col("disability_level") > 0).then(pl.col("disability_level")).alias("disability_level"),
        pl.when(pl.col("phone") > 0).then(pl.col("phone").cast(pl.Utf8)).alias("phone"),
        pl.col("created_at").alias("updated_at"),
    )
    formed = as_of - (formed_years * 365.2425).astype(np.int64)
    memberships = pl.DataFrame({
        "local": np.arange(len(kp), dtype=np.int64),
        "household_local": new_h[hh[kp]],
        "person_local": new_p[kp],
        "relation_to_head": ROLE_RELATION[role[kp]],
        "valid_from": np.maximum(birth[kp], formed[hh[kp]]),
    })

    frm = np.concatenate([e[0] for e in edges])
    to = np.concatenate([e[1] for e in edges])
    kinds = np.concatenate([np.full(len(e[0]), e[2]) for e in edges])
    since = np.concatenate([e[3] for e in edges]).astype("datetime64[D]")
    keep_e = keep_p[frm] & keep_p[to]
    relationships = pl.DataFrame({
        "from_local": new_p[frm[keep_e]], "to_local": new_p[to[keep_e]], "kind": kinds[keep_e],
        "valid_from": since[keep_e],
    })
    relationships = relationships.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("local"))

    who = np.concatenate([i[0] for i in items])
    household_of = np.concatenate([i[1] for i in items])
    keep_i = keep_h[household_of]
    economic_items = pl.DataFrame({
        "household_local": new_h[household_of[keep_i]],
        "person_local": pl.Series(np.where(who >= 0, new_p[np.maximum(who, 0)], -1)[keep_i], dtype=pl.Int64),
        "kind": np.concatenate([np.full(len(i[0]), i[2]) for i in items])[keep_i],
        "source": np.concatenate([np.full(len(i[0]), i[3]) for i in items])[keep_i],
        "amount": np.round(np.maximum(np.concatenate([i[4] for i in items]), 0.0), 2)[keep_i],
        "period_start": np.concatenate([i[5] for i in items]).astype("datetime64[D]")[keep_i],
        "period_end": np.concatenate([i[6] for i in items]).astype("datetime64[D]")[keep_i],
    }).with_columns(
        pl.when(pl.col("person_local") >= 0).then(pl.col("person_local")).alias("person_local"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("local"),
        pl.lit(dt.datetime.combine(plan.as_of, dt.time())).alias("recorded_at"),
        pl.lit(RECORDED_BY).alias("recorded_by"),
    )
    audit = {"province": plan.province, "seed": plan.seed, "as_of": plan.as_of.isoformat(),
             "first": plan.number(start + int(kept_h[0])) if len(kept_h) else None,
             "last": plan.number(start + int(kept_h[-1])) if len(kept_h) else None}
    frames = ChunkFrames(households, person_frame, memberships, relationships, economic_items, audit)
    frames.audit["rows"] = frames.counts()
    return frames


def sealed_persons(persons: pl.DataFrame) -> pl.DataFrame:
    """The person rows as stored: ID number and phone encrypted, the ID number's blind index beside it
    (aidgraph.core.storage.encrypted; the seed writes with ``COPY``/``executemany``, past the ORM's column type)."""
    numbers = persons["id_number"].to_list()
    return persons.with_columns(
        pl.Series("id_number", seal_values(numbers, ID_NUMBER), dtype=pl.Utf8),
        id_number_index_expr(pl.col("id_number")).alias("id_number_index"),
        pl.Series("phone", seal_values(persons["phone"].to_list(), PHONE), dtype=pl.Utf8))


def with_ids(frames: ChunkFrames, bases: dict[str, int]) -> dict[str, pl.DataFrame]:
    """The chunk's table rows (columns in :data:`COLUMNS` order) with ids after ``bases`` (the current max ids)."""
    h, p, m, r, e = (bases[t] + 1 for t in TABLES)
    return {
        "household": frames.households.with_columns((pl.col("local") + h).alias("id")).select(COLUMNS["household"]),
        "person": sealed_persons(frames.persons.with_columns((pl.col("local") + p).alias("id"))).select(
            COLUMNS["person"]),
        "membership": frames.memberships.with_columns(
            (pl.col("local") + m).alias("id"), (pl.col("household_local") + h).alias("household_id"),
            (pl.col("person_local") + p).alias("person_id")).select(COLUMNS["membership"]),
        "relationship": frames.relationships.with_columns(
            (pl.col("local") + r).alias("id"), (pl.col("from_local") + p).alias("from_person_id"),
            (pl.col("to_local") + p).alias("to_person_id")).select(COLUMNS["relationship"]),
        "economic_item": frames.economic_items.with_columns(
            (pl.col("local") + e).alias("id"), (pl.col("household_local") + h).alias("household_id"),
            (pl.col("person_local") + p).alias("person_id")).select(COLUMNS["economic_item"]),
    }


# --- writing ------------------------------------------------------------------------------------------------


def _insert_sql(table: str) -> str:
    return insert_sql(table, COLUMNS[table])


def _copy_sql(table: str) -> str:
    return copy_sql(table, COLUMNS[table])


AUDIT_SQL = ("INSERT INTO audit_log (at, actor, action, object_type, object_id, region_code, detail) "
             "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})")


def _audit_params(frames: ChunkFrames) -> tuple:
    """The chunk's audit row (one per chunk, written in its transaction): who seeded what, where."""
    at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return (at, RECORDED_BY, AUDIT_ACTION, "household", frames.audit.get("first"), frames.audit.get("province"),
            json.dumps(frames.audit, ensure_ascii=False))


@dataclass
class Timings:
    generate: float = 0.0
    encode: float = 0.0
    insert: float = 0.0


class _SqliteWriter:
    """One ``BEGIN IMMEDIATE`` transaction per chunk: ids after max(id), then executemany per table."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def write(self, frames: ChunkFrames, timings: Timings) -> None:
        raw = self.engine.raw_connection()
        conn: Any = raw.driver_connection  # sqlite3 / psycopg connection (never None for a fresh one)
        previous = conn.isolation_level
        conn.isolation_level = None  # we issue BEGIN IMMEDIATE ourselves: the write lock before reading max(id)
        cur = conn.cursor()
        cache_pages = cur.execute("PRAGMA cache_size").fetchone()[0]
        cur.execute(f"PRAGMA cache_size={SQLITE_CACHE_PAGES}")
        try:
            cur.execute("BEGIN IMMEDIATE")
            try:
                bases = {t: cur.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0] for t in TABLES}
                started = time.perf_counter()
                tables = {t: sqlite_rows(f) for t, f in with_ids(frames, bases).items()}
                timings.encode += time.perf_counter() - started
                started = time.perf_counter()
                for table in TABLES:
                    cur.executemany(_insert_sql(table), tables[table])
                at, *rest = _audit_params(frames)
                cur.execute(AUDIT_SQL.format(p="?"), (at.strftime("%Y-%m-%d %H:%M:%S.%f"), *rest))
                cur.execute("COMMIT")
                timings.insert += time.perf_counter() - started
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        finally:
            cur.execute(f"PRAGMA cache_size={cache_pages}")
            conn.isolation_level = previous
            raw.close()


class _PostgresWriter:
    """One transaction per chunk: lock the tables, ids after the larger of max(id) and the sequence, COPY,
    then move the sequences past the new ids so the API's inserts continue after them."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sequences: dict[str, str] = {}

    def write(self, frames: ChunkFrames, timings: Timings) -> None:
        raw = self.engine.raw_connection()
        conn: Any = raw.driver_connection  # sqlite3 / psycopg connection (never None for a fresh one)
        try:
            with conn.cursor() as cur:
                if not self.sequences:
                    for t in TABLES:
                        self.sequences[t] = cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (t,)).fetchone()[0]
                # SHARE ROW EXCLUSIVE: concurrent writers wait for the chunk, readers do not.
                cur.execute(f"LOCK TABLE {', '.join(TABLES)} IN SHARE ROW EXCLUSIVE MODE")
                bases = {}
                for t in TABLES:
                    seq = self.sequences[t]
                    bases[t] = cur.execute(
                        f"SELECT GREATEST((SELECT coalesce(max(id), 0) FROM {t}), "
                        f"(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}))").fetchone()[0]
                started = time.perf_counter()
                payloads = {t: copy_text(f) for t, f in with_ids(frames, bases).items()}
                timings.encode += time.perf_counter() - started
                started = time.perf_counter()
                for t in TABLES:
                    with cur.copy(_copy_sql(t)) as copy:
                        copy.write(payloads[t])
                for t, count in frames.counts().items():
                    if count:
                        cur.execute("SELECT setval(%s, %s)", (self.sequences[t], bases[t] + count))
                cur.execute(AUDIT_SQL.format(p="%s").replace("%s)", "%s::json)"), _audit_params(frames))
            conn.commit()
            timings.insert += time.perf_counter() - started
        except BaseException:
            conn.rollback()
            raise
        finally:
            raw.close()


def writer_for(engine: Engine):
    return _PostgresWriter(engine) if engine.dialect.name == "postgresql" else _SqliteWriter(engine)


# --- the run ------------------------------------------------------------------------------------------------


@dataclass
class SeedResult:
    province: str
    seed: int
    as_of: dt.date
    households_requested: int
    written: dict[str, int]
    chunks_written: int
    chunks_skipped: int
    seconds: float
    timings: Timings
    stopped_early: bool = False

    @property
    def rows(self) -> int:
        return sum(self.written.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def vacuum_written(engine: Engine) -> None:
    """PostgreSQL: ``VACUUM (ANALYZE)`` the tables a seed writes (:data:`TABLES`; a partitioned table's partitions
    with it), outside a transaction as VACUUM must be. Nothing on SQLite."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) " + ", ".join(TABLES))


def _stored_indices(engine: Engine, plan: SeedPlan, start: int, stop: int) -> np.ndarray:
    """Indices (start-based) of the chunk's households already in the table: one range query on the number."""
    with engine.connect() as conn:
        numbers = conn.execute(text(
            "SELECT household_number FROM household WHERE household_number >= :lo AND household_number < :hi"),
            {"lo": plan.number(start), "hi": plan.number(stop)}).scalars().all()
    return np.array([int(x[-9:]) - start for x in numbers], dtype=np.int64)


def validate(province: str, households: int, seed: int, as_of: dt.date, chunk_size: int) -> None:
    if not (isinstance(province, str) and len(province) == 2 and province.isdigit()):
        raise SeedError(f"province must be a 2-digit NBS code such as 44, not {province!r}")
    if not 1 <= households <= MAX_HOUSEHOLDS:
        raise SeedError(f"households must be between 1 and {MAX_HOUSEHOLDS}, not {households}")
    if not 0 <= seed <= MAX_SEED:
        raise SeedError(f"seed must be between 0 and {MAX_SEED} (it is part of the household numbers), not {seed}")
    if as_of > dt.date.today():
        raise SeedError(f"as-of date {as_of.isoformat()} is in the future: birth dates would be after today")
    if as_of.year < 1990:
        raise SeedError(f"as-of date {as_of.isoformat()} is too early (1990 or later)")
    if chunk_size < 1:
        raise SeedError(f"chunk size must be positive, not {chunk_size}")


def seed_province(engine: Engine, province: str, households: int, seed: int, *, as_of: dt.date | None = None,
                  chunk_size: int = DEFAULT_CHUNK_HOUSEHOLDS, stop_after_chunks: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  profile: SeedProfile = DEFAULT_PROFILE) -> SeedResult:
    """Seed ``households`` synthetic households of ``province``; idempotent and resumable (see module doc).

    ``progress(households_done, households_total)`` is called after every chunk, written or skipped.
    ``stop_after_chunks`` stops after writing that many chunks (to simulate an interrupted run).
    """
    as_of = as_of or dt.date.today()
    validate(province, households, seed, as_of, chunk_size)
    started = time.perf_counter()
    plan = SeedPlan(load_province(engine, province, seed), households, seed, as_of, chunk_size, profile)
    if engine.dialect.name == "postgresql":
        # The economic items start in the twelve months before as_of's month: their monthly partitions first
        # (aidgraph.core.storage.partitions), in a transaction of their own.
        with engine.begin() as conn:
            ensure_months(conn, "economic_item", months_of(
                [add_months(month_of(as_of), -n) for n in range(1, 13)], dt.date.today()))
    writer = writer_for(engine)
    timings = Timings()
    written = dict.fromkeys(TABLES, 0)
    used: UsedIdStems | None = None
    chunks_written = chunks_skipped = 0
    stopped = False
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    for start, stop in plan.chunks():
        stored = _stored_indices(engine, plan, start, stop)
        if len(stored) == stop - start:
            chunks_skipped += 1
        else:
            if stop_after_chunks is not None and chunks_written >= stop_after_chunks:
                stopped = True
                break
            if used is None:
                used = UsedIdStems.load(engine, province)
            skip = None
            if len(stored):
                skip = np.zeros(stop - start, dtype=bool)
                skip[stored] = True
            t0 = time.perf_counter()
            frames = generate_chunk(plan, start, stop, used, skip=skip, now=now)
            timings.generate += time.perf_counter() - t0
            try:
                writer.write(frames, timings)
            except BaseException:
                # the chunk was rolled back: forget its ID numbers so a retry in this process sees the truth
                used = None
                raise
            for table, count in frames.counts().items():
                written[table] += count
            chunks_written += 1
        if progress:
            progress(stop, households)
    if chunks_written:
        vacuum_written(engine)
    return SeedResult(province, seed, as_of, households, written, chunks_written, chunks_skipped,
                      time.perf_counter() - started, timings, stopped)


def summary_lines(result: SeedResult) -> list[str]:
    """Human-readable figures for the CLI and the benchmark."""
    w = result.written
    lines = [
        f"province {result.province}, seed {result.seed}, as of {result.as_of.isoformat()}: "
        f"{result.households_requested} households requested",
        f"written: {w['household']} households, {w['person']} persons, {w['membership']} memberships, "
        f"{w['relationship']} relationships, {w['economic_item']} economic items "
        f"({result.rows} rows in {result.seconds:.1f} s, {result.rows_per_second:,.0f} rows/s)",
        f"chunks: {result.chunks_written} written, {result.chunks_skipped} already present"
        + (" (stopped early)" if result.stopped_early else ""),
    ]
    return lines

