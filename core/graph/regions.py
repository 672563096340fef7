"""The NBS 2023 statistical division tree (统计用区划代码), loaded into the ``region`` table.

The CSV files in ``core/data/divisions`` are the whole country's provinces, cities, counties and
townships, and the villages of Guangdong (44), Fujian (35) and Gansu (62). Loading is set-at-a-time
(one multi-row upsert per level) and idempotent: a second load changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aidgraph.core.storage.models import Region, RegionLevel

DIVISIONS_DIR = Path(__file__).parent / "data" / "divisions"
LEVEL_BY_WIDTH = {2: RegionLevel.PROVINCE, 4: RegionLevel.CITY, 6: RegionLevel.COUNTY, 9: RegionLevel.TOWNSHIP,
                  12: RegionLevel.VILLAGE}
WIDTH_BY_LEVEL = {v: k for k, v in LEVEL_BY_WIDTH.items()}
PROVINCES_WITH_VILLAGES = ("35", "44", "62")



def ancestors(code: str) -> list[str]:
    """The codes above ``code``, province first."""
    return [code[:w] for w in (2, 4, 6, 9) if w < len(code)]


def _rows(path: Path, parent_column: str | None) -> Iterator[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        for line_number, row in enumerate(csv.DictReader(f), start=2):
            code = row.get("code", "").strip()
            name = row.get("name", "").strip()
            if not code.isdigit() or len(code) not in LEVEL_BY_WIDTH or not name:
                raise ValueError(f"{path.name}, line {line_number}: bad region row {row!r}")
            yield {
                "code": code,
                "name": name,
                "level": LEVEL_BY_WIDTH[len(code)].value,
                "parent_code": row[parent_column].strip() if parent_column else None,
                "province_code": code[:2],
            }


def division_files(directory: Path = DIVISIONS_DIR) -> list[tuple[Path, str | None]]:
    """The files in load order (parents before children) with the column naming each row's parent."""
    files: list[tuple[Path, str | None]] = [
        (directory / "provinces.csv", None),
        (directory / "cities.csv", "provinceCode"),
        (directory / "counties.csv", "cityCode"),
        (directory / "townships.csv", "countyCode"),
    ]
    files += [(p, "townshipCode") for p in sorted(directory.glob("villages-*.csv"))]
    return files


def load_regions(engine: Engine, directory: Path = DIVISIONS_DIR,
                 progress: Callable[[str, int], None] | None = None, batch_size: int = 5000) -> dict[str, int]:
    """Upsert the division tree; return the number of regions per level now in the table."""
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    table = Region.metadata.tables[Region.__tablename__]  # the Table itself (mypy types __table__ as a FromClause)
    with engine.begin() as conn:
        for path, parent_column in division_files(directory):
            rows = list(_rows(path, parent_column))
            for start in range(0, len(rows), batch_size):
                stmt = insert(table)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[table.c.code],
                    set_={"name": stmt.excluded.name, "parent_code": stmt.excluded.parent_code},
                    where=(table.c.name != stmt.excluded.name)
                    | (func.coalesce(table.c.parent_code, "") != func.coalesce(stmt.excluded.parent_code, "")),
                )
                conn.execute(stmt, rows[start : start + batch_size])
            if progress:
                progress(path.name, len(rows))
        counts = conn.execute(select(Region.level, func.count()).group_by(Region.level)).all()
    return {level: n for level, n in counts}
