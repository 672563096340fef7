"""Eligibility decisions kept current, so that 政策找人 (policy finds people) answers a province in milliseconds.

Recomputing every household of a region per request (what :meth:`PolicyEngine.gaps` does, and still the
reference) takes seconds for 100,000 households and minutes for a province. Here the decisions live in
``eligibility_decision`` (one row per household and program that is eligible or enrolled, with the amount), and:

- **a full refresh** (:func:`refresh_province`) recomputes a province for one date, in chunks of households with
  the same engine code path, in one transaction, and records the date, the policy version (a digest of the
  province's parameters, enabled plugins and their code) and how long it took in ``decision_snapshot``;
- **database triggers** (migration 0011) append the household of every changed row of the tables the household
  frame reads to ``decision_stale``, whatever wrote it (mutation, feed COPY, monitoring run, SQL by hand);
- **an incremental refresh** (:func:`refresh_stale`) recomputes exactly those households at their province's
  snapshot date and consumes the stale rows it saw (rows written meanwhile stay for the next refresh);
- **the kept household frames** of policy simulation (:mod:`aidgraph.core.policy.frames`) consume the same
  marks in the same transaction, before a refresh deletes them;
- **a read** (:func:`gaps`) first makes its province current (full refresh when there is no snapshot for the
  date or the policy version changed, else the incremental one when anything is stale), then sums the gap
  counts kept per region code and program (``decision_count``, maintained by both refreshes) and pages the gaps
  with one indexed statement, both under the request's one compiled scope predicate; a gap row carries the
  reasons the refresh computed with it (explaining a page at read time cost ~200 ms of a ~210 ms request).

So the answer after any write equals a full recomputation (tests/plugins/test_decisions.py checks this after
each kind of write, on both engines). Concurrency: a refresh takes the write lock on ``eligibility_decision``
first (PostgreSQL ``LOCK TABLE``, and a REPEATABLE READ snapshot so that what it consumes from
``decision_stale`` is exactly what its reads saw; SQLite ``BEGIN IMMEDIATE``), so two refreshes never
interleave, and readers keep reading the previous decisions until it commits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import inspect
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aidgraph.core.access.scope import Scope
from aidgraph.core.policy import contract as _contract
from aidgraph.core.policy import frames
from aidgraph.core.policy.engine import RESULT_SCHEMA, PolicyEngine, ProvincePolicy, household_frame
from aidgraph.core.storage.bulk import insert_frame, lock_for_writing
from aidgraph.core.storage.rls import system_transaction
from aidgraph.core.storage.models import (
    DecisionCount,
    DecisionSnapshot,
    DecisionStale,
    EligibilityDecision,
    Household,
    HouseholdFrameSet,
    utcnow,
)

CHUNK_HOUSEHOLDS = 50_000
"""Households per frame in a full refresh: bounds memory (a frame of 50,000 households is about 100 MB)."""

Progress = Callable[[int, int], None]
"""``progress(households done, households in all)``."""

BROAD_REGION_GAPS = 5000
"""Above this many gaps under the region and scope, a page is found in household order rather than by region."""

DECISION_COLUMNS = ("household_id", "program", "region_code", "eligible", "enrolled", "gap", "monthly_amount",
                    "one_off_amount", "benefit_label", "reasons")


# --- the policy version --------------------------------------------------------------------------------------


def _source_digest(obj: Any, digest: Any) -> None:
    """Fold the source files of the module (or package) defining ``obj`` into ``digest``."""
    module = inspect.getmodule(obj)
    file = getattr(module, "__file__", None)
    if file is None:
        return
    path = Path(file)
    files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())


def policy_version(policy: ProvincePolicy) -> str:
    """A digest of everything a province's decisions depend on besides the data and the date: its parameter
    values (every dated and regional value), the plugins it enables, their versions and their source, and the
    engine's own source. Any change makes the stored decisions stale for the whole province."""
    cached = getattr(policy, "_decision_version", None)
    if cached is not None:
        return str(cached)
    digest = hashlib.sha256()
    params = {key: [(v.start.isoformat(), v.region, repr(v.value)) for v in p.values]
              for key, p in sorted(policy.params.parameters.items())}
    digest.update(json.dumps({"province": policy.code, "enabled": policy.config.enabled, "params": params},
                             sort_keys=True, default=str).encode())
    for name, plugin in sorted(policy.plugins.pm.list_name_plugin(), key=lambda kv: kv[0]):
        if name in policy.config.enabled or name.startswith("core."):
            digest.update(name.encode())
            digest.update(str(getattr(plugin, "__version__", "")).encode())
            _source_digest(plugin, digest)
    _source_digest(household_frame, digest)
    _source_digest(_contract, digest)
    _source_digest(_decision_rows, digest)  # how decisions are kept (what a stored row holds) is part of them
    version = digest.hexdigest()
    policy._decision_version = version  # type: ignore[attr-defined]
    return version


# --- computing and storing decisions ---------------------------------------------------------------------------


def json_list(strings: pl.Expr) -> pl.Expr:
    """A list-of-strings column as JSON text (``["a","b"]``, UTF-8 unescaped), encoded by polars: a tenth of the
    time of ``json.dumps`` per row in Python, which cost the refresh more than explaining the gap rows did
    (``bench/bench_decision_reasons.py``)."""
    wrapped = pl.struct(strings.alias("r")).struct.json_encode()
    return wrapped.str.slice(len('{"r":'), wrapped.str.len_chars() - len('{"r":') - 1)


def _decision_rows(policy: ProvincePolicy, frame: pl.DataFrame, on: dt.date) -> pl.DataFrame:
    """The rows worth keeping (eligible or enrolled) of every enabled program for the households of ``frame``,
    the gap rows with their reasons (a JSON list of strings): explained here, in the refresh's batch, instead of
    per page read. Where every eligible household is a gap (a registry nobody has enrolled yet), explaining costs
    about 4-5x deciding (``bench/bench_decision_reasons.py``); in a working registry most eligible households are
    enrolled, and only their gaps are explained."""
    decided = (policy.decide(frame, on).filter(pl.col("eligible") | pl.col("enrolled"))
               .with_columns(gap=pl.col("eligible") & ~pl.col("enrolled")))
    gaps = decided.filter(pl.col("gap")).select("household_id", "program")
    explained = policy.explain(frame, on, gaps).with_columns(reasons=json_list(pl.col("reasons")))
    return (decided.join(explained, on=["household_id", "program"], how="left", maintain_order="left")
            .with_columns(reasons=pl.when(pl.col("gap")).then(pl.col("reasons")))
            .select(*DECISION_COLUMNS))


def _bulk(statement: Any) -> Any:
    """A bulk DELETE without the ORM's session synchronisation (which fetches every deleted key back with
    RETURNING): a refresh holds no decision objects in its session."""
    return statement.execution_options(synchronize_session=False)


def _province_range(code: str) -> Any:
    return Scope.of([code]).predicate(Household.region_code)


async def _begin_refresh(session: AsyncSession) -> None:
    """Open the refresh's transaction: a REPEATABLE READ snapshot on PostgreSQL, taken after the lock that
    serialises refreshes (the lock is the transaction's first statement, so the snapshot starts after it), with
    the system scope for the rest of it."""
    postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    connection = await session.connection(
        execution_options={"isolation_level": "REPEATABLE READ"} if postgres else {})
    await connection.run_sync(lambda c: lock_for_writing(c, [EligibilityDecision.__tablename__]))
    # Whichever request's read set the refresh off, it recomputes the whole province (row-level security).
    await system_transaction(session, "kept decisions refresh")


async def _write(session: AsyncSession, rows: pl.DataFrame) -> int:
    return await session.run_sync(lambda s: insert_frame(s, EligibilityDecision.__tablename__, rows))


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh did: households recomputed, decision rows written, seconds."""

    province_code: str | None
    households: int
    decisions: int
    seconds: float
    full: bool


async def refresh_province(factory: async_sessionmaker[AsyncSession], engine: PolicyEngine, province_code: str,
                           on: dt.date, *, progress: Progress | None = None,
                           chunk: int = CHUNK_HOUSEHOLDS, force: bool = True) -> RefreshReport | None:
    """Recompute every household of a province for ``on`` and record the snapshot, all or nothing.

    Re-running it gives the same rows. Stale marks of the province's households are consumed (the recomputation
    read their changes); marks written while it runs stay for the next incremental refresh. With ``force``
    false, returns None without recomputing when, once the lock is held, the snapshot is already current (two
    first reads of the day wait for one refresh instead of running two).
    """
    started = time.perf_counter()
    policy = engine.province(province_code)
    async with factory() as session:
        await _begin_refresh(session)
        if not force and _current(await session.get(DecisionSnapshot, province_code), policy, on):
            await session.rollback()
            return None
        ids = [row[0] for row in (await session.execute(
            select(Household.id).where(_province_range(province_code)).order_by(Household.id))).all()]
        await session.execute(_bulk(delete(EligibilityDecision).where(
            Scope.of([province_code]).predicate(EligibilityDecision.region_code))))
        await session.execute(_bulk(delete(DecisionCount).where(
            Scope.of([province_code]).predicate(DecisionCount.region_code))))
        written = 0
        counts = []
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            frame = await household_frame(session, on=on, region_code=province_code, id_range=(part[0], part[-1]))
            rows = _decision_rows(policy, frame, on)
            written += await _write(session, rows)
            counts.append(_gap_counts(rows))
            if progress is not None:
                progress(start + len(part), len(ids))
        if counts:
            total = _rolled_up(pl.concat(counts))
            await session.run_sync(lambda s: insert_frame(s, DecisionCount.__tablename__, total))
        consumed = DecisionStale.household_id.in_(select(Household.id).where(_province_range(province_code)))
        await frames.apply_stale(session, select(DecisionStale.household_id).where(consumed).distinct())
        await session.execute(_bulk(delete(DecisionStale).where(consumed)))
        seconds = time.perf_counter() - started
        snapshot = await session.get(DecisionSnapshot, province_code)
        if snapshot is None:
            snapshot = DecisionSnapshot(province_code=province_code)
            session.add(snapshot)
        snapshot.as_of, snapshot.policy_version, snapshot.computed_at = on, policy_version(policy), utcnow()
        snapshot.households, snapshot.decisions, snapshot.seconds = len(ids), written, round(seconds, 3)
        await session.commit()
    return RefreshReport(province_code, len(ids), written, time.perf_counter() - started, full=True)


async def refresh_stale(factory: async_sessionmaker[AsyncSession], engine: PolicyEngine) -> RefreshReport:
    """Recompute the households marked stale, each at its province's snapshot date, and consume the marks seen.

    A household whose province has no snapshot gets no rows (the province's first read computes it in full); a
    household that no longer exists loses its rows here (its deletion marked it), and its region's counts drop.
    """
    started = time.perf_counter()
    async with factory() as session:
        await _begin_refresh(session)
        stale = select(DecisionStale.household_id).distinct()
        households = (await session.execute(
            select(Household.id, Household.region_code).where(Household.id.in_(stale)))).all()
        marked = (await session.execute(select(func.count()).select_from(DecisionStale))).scalar_one()
        if not marked:
            await session.rollback()
            return RefreshReport(None, 0, 0, time.perf_counter() - started, full=False)
        snapshots = {s.province_code: s for s in (await session.scalars(select(DecisionSnapshot))).all()}
        # The gap counts change by what the stale households' rows counted before and count now.
        d = EligibilityDecision
        before = pl.DataFrame((await session.execute(
            select(d.region_code, d.program, func.count()).where(d.household_id.in_(stale), d.gap)
            .group_by(d.region_code, d.program))).all(), orient="row",
            schema={"region_code": pl.String, "program": pl.String, "gaps": pl.Int64})
        deltas = [before.with_columns(-pl.col("gaps"))]
        await session.execute(_bulk(delete(EligibilityDecision).where(EligibilityDecision.household_id.in_(stale))))
        written = 0
        by_province: dict[str, list[int]] = {}
        for household_id, region_code in households:
            by_province.setdefault(region_code[:2], []).append(household_id)
        configured = set(engine.province_codes())
        for code, ids in sorted(by_province.items()):
            snapshot = snapshots.get(code)
            if snapshot is None or code not in configured:
                continue
            policy = engine.province(code)
            ids.sort()
            for start in range(0, len(ids), CHUNK_HOUSEHOLDS):
                part = ids[start:start + CHUNK_HOUSEHOLDS]
                # The chunk is the province's stale households between its first and last id: the stale marks
                # as a subquery and an id range, not tens of thousands of ids sent to each statement.
                frame = await household_frame(session, on=snapshot.as_of, region_code=code,
                                              id_range=(part[0], part[-1]), household_query=stale)
                rows = _decision_rows(policy, frame, snapshot.as_of)
                written += await _write(session, rows)
                deltas.append(_gap_counts(rows))
        await _apply_deltas(session, _rolled_up(pl.concat(deltas)))
        await frames.apply_stale(session, stale)  # the kept household frames (政策模拟) consume the same marks
        # Under REPEATABLE READ (PostgreSQL) and the write lock (SQLite) this deletes exactly the marks read above.
        await session.execute(_bulk(delete(DecisionStale)))
        await session.commit()
    return RefreshReport(None, len(households), written, time.perf_counter() - started, full=False)


BUILD_STALLED = dt.timedelta(minutes=10)
"""A build of kept frames that made no progress for this long is taken over by the next process that needs it."""


async def keep_frames(factory: async_sessionmaker[AsyncSession], province_code: str, on: dt.date, *,
                      chunk: int = frames.CHUNK_HOUSEHOLDS, force: bool = True,
                      progress: Progress | None = None) -> int:
    """Build the kept household frames of a province for ``on`` (:mod:`aidgraph.core.policy.frames`) and return
    the kept set's version.

    One short transaction per chunk, each under the refresh's lock and system scope: on SQLite, whose write lock
    is the whole database's, writers wait for one chunk (a few seconds), not for the province (minutes). The
    stale marks a refresh consumes between two chunks reach the chunks built and those not built yet (which are
    then read afresh), so none is lost. Without ``force``, a set already kept is returned as it is, and a build
    under way in another process is waited for (unless it made no progress for :data:`BUILD_STALLED`).
    """
    started = time.perf_counter()
    while True:
        async with factory() as session:
            await _begin_refresh(session)
            current = await frames.version(session, province_code, on)
            since = await frames.building_since(session, province_code, on)
            if not force and current is not None:
                await session.rollback()
                return current
            if not force and since is not None and utcnow() - since < BUILD_STALLED:
                await session.rollback()
                await asyncio.sleep(1.0)
                continue
            firsts = await frames.begin_build(session, province_code, on, chunk=chunk)
            total = (await session.get(HouseholdFrameSet, (province_code, on)))
            households = total.households if total is not None else 0
            await session.commit()
            break
    done = 0
    for index in range(len(firsts)):
        async with factory() as session:
            await _begin_refresh(session)
            done += await frames.build_chunk(session, province_code, on, firsts, index)
            await session.commit()
        if progress is not None:
            progress(min(done, households), households)
    async with factory() as session:
        await _begin_refresh(session)
        kept = await frames.finish_build(session, province_code, on, time.perf_counter() - started)
        await session.commit()
    return kept


async def any_stale(factory: async_sessionmaker[AsyncSession]) -> bool:
    async with factory() as session:
        return (await session.execute(select(DecisionStale.id).limit(1))).first() is not None


LEVELS = (2, 4, 6, 9, 12)
"""The lengths of the NBS division codes (province, city, county, township, village): the prefixes gap counts are
kept for, and the only ones a scope is made of."""


def _gap_counts(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col("gap")).group_by("region_code", "program").agg(gaps=pl.len().cast(pl.Int64))


def _rolled_up(counts: pl.DataFrame) -> pl.DataFrame:
    """Gap counts per (region code, program) summed to every level above: a village's gaps count for its
    township, county, city and province too, so any region's total is one row per program."""
    parts = [counts.filter(pl.col("region_code").str.len_chars() >= n)
             .with_columns(pl.col("region_code").str.slice(0, n)) for n in LEVELS]
    return (pl.concat(parts).group_by("region_code", "program").agg(pl.col("gaps").sum().cast(pl.Int64))
            .filter(pl.col("gaps") != 0).sort("region_code", "program"))


async def _apply_deltas(session: AsyncSession, deltas: pl.DataFrame) -> None:
    """Add the changes of gap counts (rolled up) to ``decision_count``; rows that reach zero are removed."""
    if deltas.is_empty():
        return
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(DecisionCount)
    statement = upsert.on_conflict_do_update(index_elements=["region_code", "program"],
                                             set_={"gaps": DecisionCount.gaps + upsert.excluded.gaps})
    await session.execute(statement, deltas.to_dicts())
    await session.execute(_bulk(delete(DecisionCount).where(DecisionCount.gaps == 0)))


def _current(snapshot: DecisionSnapshot | None, policy: ProvincePolicy, on: dt.date) -> bool:
    return snapshot is not None and snapshot.as_of == on and snapshot.policy_version == policy_version(policy)


async def ensure_current(factory: async_sessionmaker[AsyncSession], engine: PolicyEngine, province_code: str,
                         on: dt.date) -> RefreshReport | None:
    """Make a province's decisions equal a full recomputation for ``on``; None when they already were."""
    async with factory() as session:
        current = _current(await session.get(DecisionSnapshot, province_code), engine.province(province_code), on)
        stale = (await session.execute(select(DecisionStale.id).limit(1))).first() is not None
    if not current:
        report = await refresh_province(factory, engine, province_code, on, force=False)
        if report is not None:
            return report
        stale = True  # another request refreshed the province meanwhile: catch up with what it left
    if stale:
        return await refresh_stale(factory, engine)
    return None


# --- reading ---------------------------------------------------------------------------------------------------


async def gaps(factory: async_sessionmaker[AsyncSession], engine: PolicyEngine, *, region_code: str,
               scope: Scope | None = None, program: str | None = None, on: dt.date,
               limit: int | None = None, after: tuple[int, str] | None = None) -> tuple[int, pl.DataFrame]:
    """政策找人 from the kept decisions: (total, page) exactly as :meth:`PolicyEngine.gaps` answers them.

    The province is made current first; then the total is a sum over ``decision_count`` and the page one indexed
    statement, both under the region and the caller's one compiled scope predicate, with the reasons the refresh
    stored on each gap row.
    """
    province = region_code[:2]
    if province not in engine.province_codes():
        return 0, pl.DataFrame(schema=RESULT_SCHEMA)
    await ensure_current(factory, engine, province, on)
    d, c = EligibilityDecision, DecisionCount

    def where(region_column: Any, program_column: Any) -> list[Any]:
        conditions = [Scope.of([region_code]).predicate(region_column)]
        if scope is not None:
            conditions.append(scope.predicate(region_column))
        if program is not None:
            conditions.append(program_column == program)
        return conditions

    # The prefixes the caller may read under the region (a scope's prefixes are division codes, LEVELS):
    # one row per program each in decision_count.
    prefixes = list((scope.narrow(region_code) if scope is not None else Scope.of([region_code])).prefixes)
    async with factory() as session:
        count = select(func.coalesce(func.sum(c.gaps), 0)).where(c.region_code.in_(prefixes))
        if program is not None:
            count = count.where(c.program == program)
        total = int((await session.execute(count)).scalar_one()) if prefixes else 0
        # Few gaps: find them through the region index and sort them. Many (a city, a province): walk the
        # household order index and filter by region, which stops after one page (the region written as an
        # expression, so that neither engine sorts a million rows to return fifty).
        region = d.region_code if total <= BROAD_REGION_GAPS else d.region_code + ""
        page_conditions = [d.gap, *where(region, d.program)]
        if after is not None:
            page_conditions.append(or_(d.household_id > after[0],
                                       and_(d.household_id == after[0], d.program > after[1])))
        ordered = select(d).where(*page_conditions).order_by(d.household_id, d.program)
        if limit is not None:
            ordered = ordered.limit(limit)
        chosen = ordered.subquery()
        query = (select(chosen.c.household_id, Household.household_number, chosen.c.region_code, chosen.c.program,
                        chosen.c.eligible, chosen.c.enrolled, chosen.c.monthly_amount, chosen.c.one_off_amount,
                        chosen.c.benefit_label, chosen.c.reasons)
                 .join(Household, Household.id == chosen.c.household_id)
                 .order_by(chosen.c.household_id, chosen.c.program))
        rows = (await session.execute(query)).all()
    page = pl.DataFrame([(r[0], r[1], r[2], r[3], r[4], r[5], _money(r[6]), _money(r[7]), r[8], json.loads(r[9]))
                         for r in rows], orient="row", schema=RESULT_SCHEMA_ORDER)
    return total, page.select(list(RESULT_SCHEMA)).cast(RESULT_SCHEMA)  # type: ignore[arg-type]


RESULT_SCHEMA_ORDER = {k: RESULT_SCHEMA[k] for k in ("household_id", "household_number", "region_code", "program",
                                                   "eligible", "enrolled", "monthly_amount", "one_off_amount",
                                                   "benefit_label", "reasons")}
"""The columns of a page row as :func:`gaps` reads them."""


def _money(value: Any) -> float | None:
    return None if value is None else float(value)


async def snapshots(factory: async_sessionmaker[AsyncSession]) -> list[DecisionSnapshot]:
    """Every province's snapshot, for ``aidgraph decisions status``."""
    async with factory() as session:
        return list((await session.scalars(select(DecisionSnapshot).order_by(DecisionSnapshot.province_code))).all())


def provinces_of(engine: PolicyEngine, requested: Iterable[str] | None) -> list[str]:
    """The configured provinces to refresh: those requested (each must be configured), or all."""
    configured = engine.province_codes()
    if requested is None:
        return configured
    unknown = [code for code in requested if code not in configured]
    if unknown:
        raise ValueError(f"province(s) not configured: {', '.join(unknown)} (configured: {', '.join(configured)})")
    return list(requested)
