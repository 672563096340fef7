"""The synthetic province seed (aidgraph.core.app.seed, ``aidgraph seed``) on SQLite and the embedded PostgreSQL.

Each test that writes uses its own province or seed, so the module's shared database can take them in any
order: 44/seed 7 is seeded once by the ``seeded`` fixture and only read (or re-run) afterwards; 35 is for
growing runs, 62 for the interrupted run, 11 for a province without village data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re

import numpy as np
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from aidgraph.core.graph import idnumber
from aidgraph.core.storage.encrypted import ID_NUMBER, PHONE, keyring
from aidgraph.core.storage.db import make_async_engine, async_session_factory, make_sync_engine
from aidgraph.core.graph.economics import economics_for
from aidgraph.core.app.seed import (
    HOUSEHOLD_NUMBER_PREFIX,
    SURNAMES,
    SeedError,
    UsedIdStems,
    _resolve_stems,
    household_number,
    id_numbers_from_stems,
    seed_province,
)
from tests.conftest import make_database

AS_OF = dt.date(2025, 6, 30)
N = 2000
CHUNK = 700
PREFIX_44 = f"{HOUSEHOLD_NUMBER_PREFIX}4400007"


def _opened(rows, ids: tuple[int, ...], phones: tuple[int, ...] = ()) -> list[tuple]:
    """Raw rows with the encrypted ID numbers (at positions ``ids``) and phones decrypted: the seed writes them
    sealed (aidgraph.core.storage.encrypted)."""
    decrypt = keyring().decrypt
    columns = [(i, ID_NUMBER) for i in ids] + [(i, PHONE) for i in phones]
    out = []
    for row in rows:
        values = list(row)
        for i, column in columns:
            if values[i] is not None:
                values[i] = decrypt(values[i], column)
        out.append(tuple(values))
    return out


def _text(row) -> tuple[str, ...]:
    return tuple(str(v) for v in row)


def _persons(engine, prefix: str) -> list:
    with engine.connect() as conn:
        return _opened(conn.execute(text(
            "SELECT p.id, p.id_number, p.name, p.sex, p.birth_date, p.hukou_region_code, p.region_code, "
            "p.disability_category, p.disability_level, p.chronic_disease, p.major_disease, p.labour_capacity, "
            "p.employment_status, p.student_stage, p.phone, p.version, h.region_code, h.household_number, "
            "m.relation_to_head, h.version, h.id "
            "FROM household h JOIN membership m ON m.household_id = h.id AND m.valid_to IS NULL "
            "JOIN person p ON p.id = m.person_id "
            "WHERE h.household_number >= :lo AND h.household_number < :hi"),
            {"lo": prefix, "hi": prefix + "A"}).all(), (1,), (14,))


def _date(value) -> dt.date:
    """Dates from raw SQL: ``date`` objects on PostgreSQL, ISO strings on SQLite."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _age(birth) -> int:
    return idnumber.age_on(_date(birth), AS_OF)


def digest(engine, prefix: str) -> str:
    """A hash of everything a seed wrote under a household-number prefix, without surrogate ids or timestamps."""
    params = {"lo": prefix, "hi": prefix + "A"}
    scope = "h.household_number >= :lo AND h.household_number < :hi"
    h = hashlib.sha256()
    # ID numbers and phones are stored encrypted (a fresh nonce per write): hash and order by the clear values
    with engine.connect() as conn:
        for row in sorted(_opened(conn.execute(text(
                f"SELECT h.household_number, h.region_code, h.address, m.relation_to_head, m.valid_from, p.id_number, "
                f"p.name, p.sex, p.birth_date, p.disability_category, p.disability_level, p.chronic_disease, "
                f"p.major_disease, p.hospitalised, p.labour_capacity, p.employment_status, p.student_stage, p.phone "
                f"FROM household h JOIN membership m ON m.household_id = h.id JOIN person p ON p.id = m.person_id "
                f"WHERE {scope}"), params), (5,), (17,)), key=_text):
            h.update(repr(tuple(str(v) for v in row)).encode())
        for row in sorted(_opened(conn.execute(text(
                f"SELECT a.id_number, b.id_number, r.kind, r.valid_from FROM relationship r "
                f"JOIN person a ON a.id = r.from_person_id JOIN person b ON b.id = r.to_person_id "
                f"JOIN membership m ON m.person_id = a.id JOIN household h ON h.id = m.household_id "
                f"WHERE {scope}"), params), (0, 1)), key=_text):
            h.update(repr(tuple(str(v) for v in row)).encode())
        for row in sorted(_opened(conn.execute(text(
                f"SELECT h.household_number, p.id_number, e.kind, e.source, e.amount, e.period_start, e.period_end "
                f"FROM economic_item e JOIN household h ON h.id = e.household_id "
                f"LEFT JOIN person p ON p.id = e.person_id "
                f"WHERE {scope}"), params), (1,)), key=_text):
            values = list(row)
            values[4] = f"{float(values[4]):.2f}"
            h.update(repr(tuple(str(v) for v in values)).encode())
    return h.hexdigest()


def _table_state(engine) -> dict:
    with engine.connect() as conn:
        return {t: tuple(conn.execute(text(f"SELECT count(*), coalesce(max(id), 0) FROM {t}")).one())
                for t in ("household", "person", "membership", "relationship", "economic_item", "audit_log")}


@pytest.fixture(scope="module")
def seeded(sync_engine):
    done = []
    result = seed_province(sync_engine, "44", N, 7, as_of=AS_OF, chunk_size=CHUNK,
                           progress=lambda d, t: done.append((d, t)))
    assert result.written["household"] == N
    assert result.chunks_written == 3 and result.chunks_skipped == 0
    assert done == [(700, N), (1400, N), (N, N)]
    return result


def test_id_numbers_names_and_regions_are_real(seeded, sync_engine):
    rows = _persons(sync_engine, PREFIX_44)
    assert len(rows) == seeded.written["person"]
    with sync_engine.connect() as conn:
        villages = set(conn.execute(text(
            "SELECT code FROM region WHERE province_code = '44' AND level = 'VILLAGE'")).scalars())
        counties = set(conn.execute(text(
            "SELECT code FROM region WHERE province_code = '44' AND level = 'COUNTY'")).scalars())
    surnames = set(SURNAMES.tolist())
    for (_, number, name, sex, birth, hukou, region, *_rest, h_region, h_number, _rel, h_version, _hid) in rows:
        parsed = idnumber.parse(number)
        assert parsed.sex == sex and parsed.birth_date == _date(birth), number
        assert hukou == number[:6] == region[:6] and hukou in counties
        assert region == h_region and region in villages
        assert re.fullmatch(r"S4400007\d{9}", h_number)
        assert name[0] in surnames and 2 <= len(name) <= 3
    assert all(r[15] == 1 and r[19] == 1 for r in rows)  # versions
    assert len({r[1] for r in rows}) == len(rows)
    with sync_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 0  # bulk seeds go through reindex


def test_every_household_has_exactly_one_current_head(seeded, sync_engine):
    with sync_engine.connect() as conn:
        heads = conn.execute(text(
            "SELECT h.id, sum(CASE WHEN m.relation_to_head = 'SELF' AND m.valid_to IS NULL THEN 1 ELSE 0 END) "
            "FROM household h LEFT JOIN membership m ON m.household_id = h.id "
            "WHERE h.household_number LIKE 'S%' GROUP BY h.id")).all()
        persons_without_one_household = conn.execute(text(
            "SELECT count(*) FROM person p WHERE (SELECT count(*) FROM membership m WHERE m.person_id = p.id "
            "AND m.valid_to IS NULL) <> 1")).scalar_one()
    assert len(heads) >= N and all(n == 1 for _, n in heads)
    assert persons_without_one_household == 0


def test_population_rates_are_plausible(seeded, sync_engine, db_url):
    rows = _persons(sync_engine, PREFIX_44)
    ages = np.array([_age(r[4]) for r in rows])
    persons = len(rows)
    assert 0.12 <= (ages >= 60).mean() <= 0.40
    assert 0.12 <= (ages < 18).mean() <= 0.32
    assert ages.max() <= 105 and ages.min() >= 0
    disabled = np.array([r[7] is not None for r in rows])
    assert 0.02 <= disabled.mean() <= 0.10
    assert {r[8] for r in rows if r[7]} <= {1, 2, 3, 4} and all(r[8] is None for r in rows if r[7] is None)
    assert 0.05 <= np.mean([bool(r[9]) for r in rows]) <= 0.35
    assert 0.002 <= np.mean([bool(r[10]) for r in rows]) <= 0.04
    assert 0.40 <= np.mean([r[1][16] in "13579" for r in rows]) <= 0.60  # sex ratio via the sequence parity

    sizes: dict[int, int] = {}
    heads = {}
    for r in rows:
        sizes[r[20]] = sizes.get(r[20], 0) + 1
        if r[18] == "SELF":
            heads[r[20]] = _age(r[4])
    size = np.array(list(sizes.values()))
    assert 2.2 <= persons / len(sizes) <= 3.2
    assert 0.12 <= (size == 1).mean() <= 0.40 and (size >= 6).sum() > 0
    assert sum(1 for h, s in sizes.items() if s == 1 and heads[h] >= 65) > 0.05 * len(sizes)  # elderly alone

    async def low_income_share() -> tuple[float, float]:
        engine = make_async_engine(db_url)
        try:
            async with async_session_factory(engine)() as session:
                economics = await economics_for(session, list(sizes), AS_OF)
        finally:
            await engine.dispose()
        per_capita = np.array([float(e.per_capita_monthly_income) for e in economics.values()])
        assets = np.array([float(e.total_financial_assets) for e in economics.values()])
        return float((per_capita < 600).mean()), float((assets > 0).mean())

    low, with_assets = asyncio.run(low_income_share())
    assert 0.08 <= low <= 0.35  # enough low-income households for the dibao rules to find, not a majority
    assert with_assets > 0.95   # every head has a deposit


def test_attributes_are_consistent_with_age(seeded, sync_engine):
    for (_, _, _, _, birth, _, _, category, level, _, _, capacity, status, stage, phone, *_rest) in _persons(
            sync_engine, PREFIX_44):
        age = _age(birth)
        if age < 16:
            assert capacity == "NONE" and status in ("STUDENT", "NOT_IN_LABOUR_FORCE")
        if status in ("EMPLOYED", "UNEMPLOYED"):
            assert capacity in ("FULL", "PARTIAL") and age >= 16
        if status == "RETIRED":
            assert age >= 55
        if status == "STUDENT":
            assert stage is not None
        bands = {"PRESCHOOL": (3, 5), "COMPULSORY": (6, 14), "HIGH_SCHOOL": (15, 17), "VOCATIONAL": (15, 21),
                 "UNDERGRADUATE": (18, 21), "POSTGRADUATE": (22, 25), None: (0, 200)}
        assert bands[stage][0] <= age <= bands[stage][1], (stage, age)
        if category is not None and level <= 2:
            assert capacity == "NONE"
        if phone is not None:
            assert re.fullmatch(r"1[3-9]\d{9}", phone) and age >= 14


def test_family_relationships_cross_households(seeded, sync_engine):
    with sync_engine.connect() as conn:
        edges = conn.execute(text(
            "SELECT r.kind, a.birth_date, b.birth_date, ma.household_id, mb.household_id, r.valid_from "
            "FROM relationship r JOIN person a ON a.id = r.from_person_id JOIN person b ON b.id = r.to_person_id "
            "JOIN membership ma ON ma.person_id = a.id JOIN membership mb ON mb.person_id = b.id "
            "JOIN household h ON h.id = ma.household_id "
            "WHERE h.household_number >= :lo AND h.household_number < :hi"),
            {"lo": PREFIX_44, "hi": PREFIX_44 + "A"}).all()
    kinds = {e[0] for e in edges}
    assert kinds == {"SPOUSE", "PARENT", "GUARDIAN", "SUPPORT_OBLIGOR"}
    crossing = [e for e in edges if e[3] != e[4]]
    assert 0.02 * len(edges) <= len(crossing) <= 0.5 * len(edges)
    for kind, a_birth, b_birth, a_home, b_home, since in edges:
        a_birth, b_birth, since = _date(a_birth), _date(b_birth), _date(since)
        assert since <= AS_OF
        if kind == "PARENT":
            assert (b_birth - a_birth).days >= 16 * 365, "a parent is at least 16 years older than the child"
            assert since == b_birth
        if kind == "SPOUSE":
            assert _age(a_birth) >= 18 and _age(b_birth) >= 18
        if kind == "SUPPORT_OBLIGOR":
            assert a_home != b_home  # obligors living elsewhere; co-resident duty follows from PARENT edges
        if kind == "GUARDIAN":
            assert a_home == b_home and _age(b_birth) < 18


def test_economic_items_cover_the_twelve_months_before_as_of(seeded, sync_engine):
    with sync_engine.connect() as conn:
        wages = conn.execute(text(
            "SELECT p.employment_status, count(e.id), min(e.period_start), max(e.period_end) "
            "FROM person p JOIN membership m ON m.person_id = p.id JOIN household h ON h.id = m.household_id "
            "LEFT JOIN economic_item e ON e.person_id = p.id AND e.kind = 'WAGE' "
            "WHERE h.household_number >= :lo AND h.household_number < :hi GROUP BY p.id, p.employment_status"),
            {"lo": PREFIX_44, "hi": PREFIX_44 + "A"}).all()
        kinds = dict(conn.execute(text(
            "SELECT e.kind, count(*) FROM economic_item e JOIN household h ON h.id = e.household_id "
            "WHERE h.household_number >= :lo AND h.household_number < :hi GROUP BY e.kind"),
            {"lo": PREFIX_44, "hi": PREFIX_44 + "A"}).all())
        late = conn.execute(text("SELECT count(*) FROM economic_item WHERE period_end >= :d OR amount < 0"),
                            {"d": AS_OF.replace(day=1)}).scalar_one()
    for status, count, first, last in wages:
        if status == "EMPLOYED":
            assert count == 12 and _date(first) == dt.date(2024, 6, 1) and _date(last) == dt.date(2025, 5, 31)
        else:
            assert count == 0
    assert set(kinds) == {"WAGE", "PENSION", "TRANSFER", "BUSINESS", "PROPERTY_INCOME", "EXPENDITURE_MEDICAL",
                          "EXPENDITURE_EDUCATION", "DEPOSIT", "SECURITIES", "REAL_ESTATE", "VEHICLE"}
    assert late == 0


def test_postgres_seed_leaves_statistics_and_visibility_map(seeded, sync_engine):
    """After a seed that wrote rows, PostgreSQL's planner has the tables' statistics and their pages are marked
    all-visible (VACUUM (ANALYZE)), as after any bulk load, instead of waiting for autovacuum."""
    if sync_engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no planner statistics or visibility map for the platform")
    with sync_engine.connect() as conn:
        analysed = conn.execute(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relname = ANY(:t) "
            "AND EXISTS (SELECT 1 FROM pg_statistic s WHERE s.starelid = c.oid)"),
            {"t": ["household", "person", "membership", "relationship"]}).scalars().all()
        pages = {name: (total, visible) for name, total, visible in conn.execute(text(
            "SELECT relname, relpages, relallvisible FROM pg_class WHERE relname IN ('person', 'household')"))}
    assert sorted(analysed) == ["household", "membership", "person", "relationship"]
    for table, (total, visible) in pages.items():
        assert total > 0 and visible == total, (table, total, visible)


def test_rerun_changes_nothing(seeded, sync_engine):
    before = _table_state(sync_engine), digest(sync_engine, PREFIX_44)
    again = seed_province(sync_engine, "44", N, 7, as_of=AS_OF, chunk_size=CHUNK)
    assert again.rows == 0 and again.chunks_written == 0 and again.chunks_skipped == 3
    # a later day, another chunk size: still nothing new for households already there
    later = seed_province(sync_engine, "44", N, 7, as_of=AS_OF + dt.timedelta(days=3), chunk_size=500)
    assert later.rows == 0
    assert (_table_state(sync_engine), digest(sync_engine, PREFIX_44)) == before
    with sync_engine.connect() as conn:
        audited = conn.execute(text(
            "SELECT object_id, region_code FROM audit_log WHERE action = 'seed' AND object_id LIKE :p "
            "ORDER BY object_id"), {"p": PREFIX_44 + "%"}).all()
    assert audited == [(household_number("44", 7, i), "44") for i in (0, 700, 1400)]  # one per chunk written


def test_larger_n_and_other_seeds_add_without_duplicates(sync_engine):
    first = seed_province(sync_engine, "35", 300, 1, as_of=AS_OF, chunk_size=200)
    grown = seed_province(sync_engine, "35", 450, 1, as_of=AS_OF, chunk_size=200)
    other = seed_province(sync_engine, "35", 200, 2, as_of=AS_OF, chunk_size=200)
    assert (first.written["household"], grown.written["household"], other.written["household"]) == (300, 150, 200)
    with sync_engine.connect() as conn:
        numbers = conn.execute(text("SELECT household_number FROM household WHERE household_number LIKE 'S35%'")
                               ).scalars().all()
        total, distinct = conn.execute(text("SELECT count(*), count(DISTINCT id_number_index) FROM person")).one()
        sequences_ok = conn.execute(text("SELECT count(*) FROM person WHERE hukou_region_code LIKE '35%'")).scalar_one()
    assert sorted(numbers) == sorted([household_number("35", 1, i) for i in range(450)]
                                     + [household_number("35", 2, i) for i in range(200)])
    assert total == distinct and sequences_ok == sum(r.written["person"] for r in (first, grown, other))


def _fresh_database_with_province(db_url, source, province, request, tmp_path_factory):
    """A new, migrated database of the same engine holding only ``province``'s part of the region tree (all the
    seed reads), copied from ``source``: loading the whole tree again would cost more than the test."""
    kind = "postgres" if db_url.startswith("postgresql") else "sqlite"
    engine = make_sync_engine(make_database(kind, request, tmp_path_factory, with_regions=False))
    with source.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text(
            "SELECT code, name, level, parent_code, province_code FROM region WHERE province_code = :p"),
            {"p": province})]
    rows.sort(key=lambda r: len(r["code"]))  # parents first
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO region (code, name, level, parent_code, province_code) "
                          "VALUES (:code, :name, :level, :parent_code, :province_code)"), rows)
    return engine


def test_interrupted_run_resumes_to_the_same_rows_as_an_uninterrupted_one(sync_engine, db_url, request,
                                                                          tmp_path_factory):
    prefix = f"{HOUSEHOLD_NUMBER_PREFIX}6200003"
    partial = seed_province(sync_engine, "62", 900, 3, as_of=AS_OF, chunk_size=300, stop_after_chunks=1)
    assert partial.stopped_early and partial.written["household"] == 300
    resumed = seed_province(sync_engine, "62", 900, 3, as_of=AS_OF, chunk_size=300)
    assert resumed.chunks_skipped == 1 and resumed.written["household"] == 600

    fresh = _fresh_database_with_province(db_url, sync_engine, "62", request, tmp_path_factory)
    try:
        whole = seed_province(fresh, "62", 900, 3, as_of=AS_OF, chunk_size=300)
        assert whole.written == {k: partial.written[k] + resumed.written[k] for k in whole.written}
        assert digest(fresh, prefix) == digest(sync_engine, prefix)
        # and the sequences of a PostgreSQL database continue after the seeded ids
        with fresh.begin() as conn:
            conn.execute(text("INSERT INTO household (household_number, region_code, version, created_at, "
                              "updated_at) VALUES ('HTEST', :r, 1, :t, :t)"),
                         {"r": "620102001001", "t": dt.datetime(2025, 1, 1)})
            assert conn.execute(text("SELECT max(id) FROM household")).scalar_one() == 901
        other_seed = seed_province(fresh, "62", 300, 4, as_of=AS_OF, chunk_size=300)
        assert other_seed.written["household"] == 300
        assert digest(fresh, f"{HOUSEHOLD_NUMBER_PREFIX}6200004") != digest(fresh, prefix)
    finally:
        fresh.dispose()


def test_province_without_villages_uses_townships(sync_engine):
    result = seed_province(sync_engine, "11", 150, 5, as_of=AS_OF)
    assert result.written["household"] == 150
    with sync_engine.connect() as conn:
        levels = conn.execute(text(
            "SELECT DISTINCT r.level FROM household h JOIN region r ON r.code = h.region_code "
            "WHERE h.household_number LIKE 'S1100005%'")).scalars().all()
        hukou = conn.execute(text(
            "SELECT DISTINCT r.level FROM person p JOIN region r ON r.code = p.hukou_region_code "
            "WHERE p.hukou_region_code LIKE '11%'")).scalars().all()
    assert levels == ["TOWNSHIP"] and hukou == ["COUNTY"]


def test_bad_arguments_are_refused_with_a_reason(sync_engine):
    with pytest.raises(SeedError, match="unknown province code '99'"):
        seed_province(sync_engine, "99", 10, 1, as_of=AS_OF)
    with pytest.raises(SeedError, match="2-digit"):
        seed_province(sync_engine, "440", 10, 1, as_of=AS_OF)
    with pytest.raises(SeedError, match="seed must be between"):
        seed_province(sync_engine, "44", 10, 100_000, as_of=AS_OF)
    with pytest.raises(SeedError, match="in the future"):
        seed_province(sync_engine, "44", 10, 1, as_of=dt.date.today() + dt.timedelta(days=1))
    with pytest.raises(SeedError, match="households must be"):
        seed_province(sync_engine, "44", 0, 1, as_of=AS_OF)


def test_id_sequence_numbers_avoid_every_taken_number():
    # 600 persons born the same day in the same county: 300 men and 300 women, all drawing sequence slot 7,
    # with the first ten men's numbers already taken.
    address = np.full(600, 440106, dtype=np.int64)
    ymd = np.full(600, 19800101, dtype=np.int64)
    male = np.arange(600) % 2 == 0
    taken = np.array([440106_19800101_000 + 2 * s + 1 for s in range(7, 17)], dtype=np.int64)
    stems = _resolve_stems(address, ymd, male, np.full(600, 7), UsedIdStems(taken))
    assert len(set(stems.tolist())) == 600 and not set(stems.tolist()) & set(taken.tolist())
    assert ((stems % 1000) % 2 == male).all()  # odd sequence numbers for men
    again = _resolve_stems(address, ymd, male, np.full(600, 7), UsedIdStems(taken))
    assert (again == stems).all()
    for number in id_numbers_from_stems(stems[:50]):
        assert idnumber.parse(str(number)).birth_date == dt.date(1980, 1, 1)
    with pytest.raises(SeedError, match="no free ID sequence number"):
        _resolve_stems(np.full(501, 440106), np.full(501, 19800101), np.ones(501, dtype=bool), np.zeros(501),
                       UsedIdStems())


def test_cli_seed_command(sqlite_url, monkeypatch, tmp_path):
    from aidgraph.core.app.cli import app

    runner = CliRunner()
    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", sqlite_url)
    args = ["seed", "--province", "44", "--households", "60", "--seed", "9", "--as-of", "2025-06-30"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "60 households" in first.output and "rows/s" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "written: 0 households" in second.output
    bad = runner.invoke(app, ["seed", "--province", "99", "--households", "5"])
    assert bad.exit_code == 2 and "unknown province code" in bad.output
    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    empty = runner.invoke(app, ["seed", "--province", "44", "--households", "5"])
    # An absent database is not created silently (issue 12): the error names the URL and init-db.
    assert empty.exit_code == 2 and "aidgraph init-db" in " ".join(empty.output.split())
    assert not (tmp_path / "empty.db").exists()
