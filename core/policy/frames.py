"""Kept household frames (家庭信息快照): a province's household facts for one date, kept in the database.

Why: a policy simulation (政策模拟, :mod:`aidgraph.core.policy.simulation`) evaluates every household of a
province under the baseline and the reform. Reading their facts from the tables
(:func:`aidgraph.core.policy.engine.household_frame`: members, incomes, assets, enrolments, emergencies) is most
of a cold simulation: about half an hour for the 1,880,000-household benchmark province on SQLite. Kept as
compressed Arrow IPC chunks in ``household_frame_chunk`` (migration 0023), the same frame is read back in seconds.

The rule that keeps them equal to a fresh read:

- **A kept set** (``household_frame_set``) is one (province, date). It is built in full on first use
  (:func:`aidgraph.core.policy.decisions.keep_frames`: :func:`begin_build`, then one short transaction per chunk
  of :data:`CHUNK_HOUSEHOLDS` households by id, then :func:`finish_build`) or by ``aidgraph decisions keep-frames``; at most
  :data:`SETS_PER_PROVINCE` dates are kept per province (building another drops the oldest).
- **A chunk** holds the households of the province whose ids lie in [its first id, the next chunk's first id).
- **Changes** reach the frames through the stale marks that database triggers write for every change of a table
  the frame reads (``decision_stale``, migration 0011), whatever made it. Whoever consumes marks (the kept
  decisions' refresh, :mod:`aidgraph.core.policy.decisions`) first calls :func:`apply_stale` in the same
  transaction: every chunk that holds or would hold a marked household is decoded, loses the marked households,
  gains their facts read afresh at the set's date (a household now in another province, or deleted, is simply
  gone) and is written back. So no older value of a household outlives its source in a chunk (a copy of
  personal data must not survive an erasure), and a set never lags behind what the refresh consumed.
- **A version** per set, incremented by every change, lets a process keep a set in memory and know with one
  indexed statement whether it is still current (:func:`version`).
- **A format** per set: a digest of the code that reads the facts (:mod:`aidgraph.core.policy.engine`) and of
  the frame's columns. A set kept by another release (a new member field, a fact derived differently) counts
  as not kept and is built again on first use.

The chunks hold a whole province; the application narrows a loaded frame to the caller's regions
(:func:`within`, the same prefixes as the scope's SQL predicate) before anything is computed from it. On
PostgreSQL, row-level security admits a chunk only to a request whose scope lies in its province.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.scope import Scope
from aidgraph.core.policy import engine as engine_module
from aidgraph.core.policy.engine import FRAME_SCHEMA, household_frame
from aidgraph.core.storage.models import (
    DecisionStale,
    Household,
    HouseholdFrameChunk,
    HouseholdFrameSet,
    utcnow,
)

CHUNK_HOUSEHOLDS = 20_000
"""Households per chunk when a set is built: a change rewrites its chunk (about 0.1 s), a load reads them all."""
SETS_PER_PROVINCE = 3
"""Dates kept per province: each kept date costs every refresh a read of the changed households at that date."""

FORMAT = hashlib.sha256(Path(engine_module.__file__).read_bytes() + repr(FRAME_SCHEMA).encode()).hexdigest()
"""The kept frames' format: the source of the household frame's reader and its columns (see the module doc)."""


def encode(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="zstd")
    return buffer.getvalue()


def decode(data: bytes) -> pl.DataFrame:
    frame = pl.read_ipc(io.BytesIO(data))
    return frame.select([pl.col(c).cast(t) for c, t in FRAME_SCHEMA.items()])


def _province(code: str) -> Any:
    return Scope.of([code]).predicate(Household.region_code)


async def version(session: AsyncSession, province_code: str, on: dt.date) -> int | None:
    """The kept set's version, None when the province's frame is not kept for ``on`` (or was kept in another
    format: by another release's code)."""
    row = (await session.execute(select(HouseholdFrameSet.version, HouseholdFrameSet.format).where(
        HouseholdFrameSet.province_code == province_code, HouseholdFrameSet.as_of == on))).one_or_none()
    return None if row is None or row[1] != FORMAT else int(row[0])


async def load(session: AsyncSession, province_code: str, on: dt.date) -> tuple[pl.DataFrame, int] | None:
    """(frame of every household of the province on ``on``, the set's version), or None when it is not kept."""
    kept = await version(session, province_code, on)
    if kept is None:
        return None
    chunks = (await session.execute(select(HouseholdFrameChunk.data).where(
        HouseholdFrameChunk.province_code == province_code, HouseholdFrameChunk.as_of == on)
        .order_by(HouseholdFrameChunk.first_household_id))).scalars().all()
    parts = [decode(c) for c in chunks]
    frame = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=FRAME_SCHEMA)
    return frame, kept


def within(frame: pl.DataFrame, region_code: str, scope: Scope) -> pl.DataFrame:
    """The households of ``frame`` under ``region_code`` and inside ``scope``: the scope's predicate, on a frame."""
    narrowed = scope.narrow(region_code)
    if narrowed.empty:
        return frame.head(0)
    condition = pl.lit(False)
    for prefix in narrowed.prefixes:  # narrowing never leaves the scope unrestricted: at least the region
        condition = condition | pl.col("region_code").str.starts_with(prefix)
    return frame.filter(condition)


async def _write_chunk(session: AsyncSession, province_code: str, on: dt.date, first_id: int,
                       frame: pl.DataFrame) -> None:
    session.add(HouseholdFrameChunk(province_code=province_code, as_of=on, first_household_id=first_id,
                                    households=frame.height, data=encode(frame)))


BUILDING = "building:"
"""Prefix of a set's format while it is being built: not yet kept for readers, already maintained by refreshes."""
LAST_ID = 2**62
"""The upper end of the last chunk's range (households registered after the build fall in it)."""


async def begin_build(session: AsyncSession, province_code: str, on: dt.date, *,
                      chunk: int = CHUNK_HOUSEHOLDS) -> list[int]:
    """Start keeping the province's frame for ``on`` (replacing a set of that date, dropping the oldest beyond
    :data:`SETS_PER_PROVINCE`): the set, in the building state, and one empty chunk per :data:`CHUNK_HOUSEHOLDS`
    households, whose ranges are fixed here. Returns the chunks' first ids. Readers see no set until
    :func:`finish_build`; refreshes maintain it from now on (a change to a chunk not built yet is read with it)."""
    await drop(session, province_code, on)
    older = (await session.execute(select(HouseholdFrameSet.as_of).where(
        HouseholdFrameSet.province_code == province_code).order_by(HouseholdFrameSet.as_of.desc()))).scalars().all()
    for as_of in older[SETS_PER_PROVINCE - 1:]:
        await drop(session, province_code, as_of)
    ids = [row[0] for row in (await session.execute(
        select(Household.id).where(_province(province_code)).order_by(Household.id))).all()]
    # a version never seen for this set before (a process holding a dropped set's frame must not take it for
    # the new one); each change adds one
    session.add(HouseholdFrameSet(province_code=province_code, as_of=on, version=secrets.randbelow(1 << 30) + 1,
                                  format=BUILDING + FORMAT, households=len(ids), seconds=0.0))
    await session.flush()
    # the first chunk also covers ids below the province's first household (one moved in from another province)
    firsts = [0] + [ids[i] for i in range(chunk, len(ids), chunk)]
    empty = pl.DataFrame(schema=FRAME_SCHEMA)
    for first in firsts:
        await _write_chunk(session, province_code, on, first, empty)
    await session.flush()
    return firsts


async def build_chunk(session: AsyncSession, province_code: str, on: dt.date, firsts: list[int], index: int) -> int:
    """Read the households of chunk ``index`` from the tables into it; returns how many."""
    first = firsts[index]
    last = firsts[index + 1] - 1 if index + 1 < len(firsts) else LAST_ID
    frame = await household_frame(session, on=on, region_code=province_code, id_range=(first, last))
    row = await session.get(HouseholdFrameChunk, (province_code, on, first))
    if row is None:  # the set was dropped or rebuilt meanwhile
        raise LookupError(f"the household frame of province {province_code} for {on} is no longer being built")
    row.data, row.households = encode(frame), frame.height
    await session.execute(update(HouseholdFrameSet).where(
        HouseholdFrameSet.province_code == province_code, HouseholdFrameSet.as_of == on).values(updated_at=utcnow()))
    await session.flush()
    return frame.height


async def finish_build(session: AsyncSession, province_code: str, on: dt.date, seconds: float) -> int:
    """Make the built set visible to readers; returns its version."""
    households = (await session.execute(select(func.coalesce(func.sum(HouseholdFrameChunk.households), 0)).where(
        HouseholdFrameChunk.province_code == province_code, HouseholdFrameChunk.as_of == on))).scalar_one()
    kept = await session.get(HouseholdFrameSet, (province_code, on))
    if kept is None:
        raise LookupError(f"the household frame of province {province_code} for {on} is no longer being built")
    kept.format, kept.households, kept.seconds, kept.updated_at = FORMAT, households, round(seconds, 3), utcnow()
    await session.flush()
    return kept.version


async def building_since(session: AsyncSession, province_code: str, on: dt.date) -> dt.datetime | None:
    """When a build of the province's frame for ``on`` last made progress, None when none is under way."""
    row = (await session.execute(select(HouseholdFrameSet.format, HouseholdFrameSet.updated_at).where(
        HouseholdFrameSet.province_code == province_code, HouseholdFrameSet.as_of == on))).one_or_none()
    return row[1] if row is not None and row[0] == BUILDING + FORMAT else None


async def drop(session: AsyncSession, province_code: str, on: dt.date) -> bool:
    """Stop keeping the province's frame for ``on``; False when it was not kept."""
    await session.execute(delete(HouseholdFrameChunk).where(HouseholdFrameChunk.province_code == province_code,
                                                            HouseholdFrameChunk.as_of == on))
    result = await session.execute(delete(HouseholdFrameSet).where(HouseholdFrameSet.province_code == province_code,
                                                                   HouseholdFrameSet.as_of == on))
    return bool(getattr(result, "rowcount", 0))


async def kept_sets(session: AsyncSession) -> Sequence[HouseholdFrameSet]:
    return (await session.scalars(select(HouseholdFrameSet).order_by(HouseholdFrameSet.province_code,
                                                                      HouseholdFrameSet.as_of))).all()


def _chunks_of(firsts: list[int], household_ids: pl.Series) -> pl.Series:
    """For each id, the first id of the chunk whose range holds it (the last first id not above it)."""
    index = pl.Series(firsts, dtype=pl.Int64).search_sorted(household_ids.cast(pl.Int64), side="right") - 1
    return pl.Series(firsts, dtype=pl.Int64).gather(index.clip(lower_bound=0))


def _same(held: pl.DataFrame, fresh: pl.DataFrame) -> bool:
    """The marked households' rows as kept equal their rows read afresh (both in household order)."""
    if held.height != fresh.height:
        return False
    return held.sort("household_id").equals(fresh.sort("household_id"))


async def apply_stale(session: AsyncSession, stale: Any | None = None) -> int:
    """Bring every kept set up to date with the households marked stale (``stale``: a SELECT of their ids; by
    default every mark in ``decision_stale``), in the caller's transaction, before the caller consumes the marks.
    Returns the number of chunks rewritten."""
    sets = await kept_sets(session)
    if not sets:
        return 0
    stale = stale if stale is not None else select(DecisionStale.household_id).distinct()
    marked = sorted({row[0] for row in (await session.execute(stale)).all()})
    if not marked:
        return 0
    rewritten = 0
    for kept in sets:
        code, on = kept.province_code, kept.as_of
        if kept.format not in (FORMAT, BUILDING + FORMAT):  # another release's: not maintained, built again
            await drop(session, code, on)
            continue
        firsts = list((await session.execute(select(HouseholdFrameChunk.first_household_id).where(
            HouseholdFrameChunk.province_code == code, HouseholdFrameChunk.as_of == on)
            .order_by(HouseholdFrameChunk.first_household_id))).scalars().all())
        if not firsts:
            continue
        fresh = await household_frame(session, on=on, region_code=code, id_range=(marked[0], marked[-1]),
                                      household_query=stale)
        changed = False
        marks = pl.DataFrame({"household_id": marked}, schema={"household_id": pl.Int64})
        marks = marks.with_columns(chunk=_chunks_of(firsts, marks["household_id"]))
        fresh = fresh.with_columns(chunk=_chunks_of(firsts, fresh["household_id"]))
        for (first,), ids in marks.group_by("chunk", maintain_order=True):
            row = await session.get(HouseholdFrameChunk, (code, on, first))
            if row is None:
                continue
            current = decode(row.data)
            added = fresh.filter(pl.col("chunk") == first).drop("chunk")
            marked_here = pl.col("household_id").is_in(ids["household_id"].to_list())
            if _same(current.filter(marked_here), added):
                continue  # nothing the frame holds changed (an address, another province's households)
            replaced = pl.concat([current.filter(~marked_here), added], how="vertical").sort("household_id")
            # new households land in the last chunk: one grown past twice the size is split where it holds them
            parts = ([replaced.slice(i, CHUNK_HOUSEHOLDS) for i in range(0, replaced.height, CHUNK_HOUSEHOLDS)]
                     if replaced.height > 2 * CHUNK_HOUSEHOLDS else [replaced])
            row.data, row.households = encode(parts[0]), parts[0].height
            for part in parts[1:]:
                await _write_chunk(session, code, on, int(part["household_id"][0]), part)
            rewritten += len(parts)
            changed = True
        if not changed:
            continue  # the version stays: processes keep the frame they hold
        await session.flush()
        households = (await session.execute(select(func.coalesce(func.sum(HouseholdFrameChunk.households), 0))
                                            .where(HouseholdFrameChunk.province_code == code,
                                                   HouseholdFrameChunk.as_of == on))).scalar_one()
        await session.execute(update(HouseholdFrameSet).where(
            HouseholdFrameSet.province_code == code, HouseholdFrameSet.as_of == on).values(
            version=HouseholdFrameSet.version + 1, households=households, updated_at=utcnow()))
    await session.flush()
    return rewritten
