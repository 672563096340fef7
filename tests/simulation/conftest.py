"""Fixtures of the simulation tests: a few Shantou households around the dibao, near-dibao and tekun lines,
written into both storage engines, and the real policy engine over the shipped province configs."""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from aidgraph.core.storage.db import (
    async_session_factory,
    make_async_engine,
    session_scope,
)
from tests.plugins.db import add_household

ON = dt.date(2025, 6, 1)
URBAN = "440507001001"  # a Shantou 社区 (urban): standard 1200, near-dibao line 1.5 x 1200 = 1800 (illustrative)
OTHER_CITY = "440106011004"  # Guangzhou, Tianhe: its own standard (1400)


@pytest.fixture(scope="module")
def households(sync_engine):
    with session_scope(sync_engine) as s:
        built = {
            # per-capita income 1300: above the standard of 1200, below 1500
            "between": add_household(s, URBAN, [{"age": 45}], wages=1300, on=ON),
            # 2 x 1000 per capita: dibao now (gap 200 x 2), more under a higher standard
            "poor": add_household(s, URBAN, [{"age": 45, "employment_status": "EMPLOYED"}, {"age": 12}],
                                  wages=2000, on=ON, receiving=["dibao"]),
            # per-capita 2000: above the near-dibao line 1800, below 1.5 x 1500 = 2250
            "edge": add_household(s, URBAN, [{"age": 45}], wages=2000, on=ON),
            # elderly alone without labour capacity or obligor: tekun at 1.6 x the standard
            "elderly": add_household(s, URBAN, [{"age": 80, "labour_capacity": "NONE"}], on=ON),
            "rich": add_household(s, URBAN, [{"age": 40}], wages=9000, on=ON),
            "guangzhou": add_household(s, OTHER_CITY, [{"age": 45}], wages=1300, on=ON),
        }
    return {k: v.household_id for k, v in built.items()}


def run(db_url, work):
    async def main():
        engine = make_async_engine(db_url)
        try:
            async with async_session_factory(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    # a thread of its own: asyncio.run() refuses to start where another test left an event loop running
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()
