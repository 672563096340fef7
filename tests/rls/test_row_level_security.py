"""PostgreSQL row-level security as the second line (issue 12 item 15; core/storage/rls.py, migration 0018).

The server's sessions are built here exactly as the server builds them (its engine with every connection set
to the application role, and :func:`request_sessions` for a caller), then statements are sent that leave out
the application's scope predicate on purpose: a raw ``SELECT`` of every person-bearing table inside a township
caseworker's request transaction returns only that township's rows, a transaction that set no scope returns
none, and writes outside the scope are refused by PostgreSQL. The registrations that make the data go through
the real service in such sessions too, so writes under the policies work, including the global duplicate check
(a person registered elsewhere answers TRANSFER_REQUIRED, not a collision).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access import authz
from aidgraph.core.access.scope import Scope
from aidgraph.core.app.server import AppComponents
from aidgraph.core.app.sessions import request_sessions
from aidgraph.core.graph import households as hh
from aidgraph.core.graph.idnumber import make
from aidgraph.core.storage.db import (StatementCounter, async_session_factory, close_session, make_async_engine,
                                      make_sync_engine, session_scope)
from aidgraph.core.storage.bulk import read_frame
from aidgraph.core.storage.errors import DomainError, ErrorCode
from aidgraph.core.storage.models import (AidChainEvent, Alert, EconomicItem, Enrollment, EnrollmentStep,
                                          FeedRecord, Membership, Payment, Person, Relationship)
from aidgraph.core.storage.partitions import ensure_month_partitions
from aidgraph.core.storage.rls import APP_ROLE, install_app_role, session_info
from tests.conftest import make_database, server_settings
from tests.authz.conftest import policies  # noqa: F401  (the module-scoped fixture, shared)
from tests.security.conftest import actor_for

VILLAGE = "440106011004"        # a village of 天河区 (Guangzhou)
OTHER_VILLAGE = "440303001001"  # a village of 罗湖区 (Shenzhen)
TOWNSHIP = VILLAGE[:9]

IN_TOWNSHIP = {
    # the rows of each person-bearing table that lie in TOWNSHIP, computed by the owner independently of the
    # policies (the oracle the caseworker's raw reads are held to)
    "household": "SELECT count(*) FROM household WHERE region_code LIKE :p",
    "person": "SELECT count(*) FROM person WHERE region_code LIKE :p",
    "membership": "SELECT count(*) FROM membership m JOIN household h ON h.id = m.household_id "
                  "WHERE h.region_code LIKE :p",
    "economic_item": "SELECT count(*) FROM economic_item e JOIN household h ON h.id = e.household_id "
                     "WHERE h.region_code LIKE :p",
    "enrollment": "SELECT count(*) FROM enrollment WHERE region_code LIKE :p",
    "enrollment_step": "SELECT count(*) FROM enrollment_step s JOIN enrollment e ON e.id = s.enrollment_id "
                       "WHERE e.region_code LIKE :p",
    "payment": "SELECT count(*) FROM payment x JOIN household h ON h.id = x.household_id WHERE h.region_code LIKE :p",
    "alert": "SELECT count(*) FROM alert WHERE region_code LIKE :p",
    "aid_chain_event": "SELECT count(*) FROM aid_chain_event a JOIN household h ON h.id = a.household_id "
                       "WHERE h.region_code LIKE :p",
    "audit_log": "SELECT count(*) FROM audit_log WHERE region_code LIKE :p",
    "feed_record": "SELECT count(*) FROM feed_record f JOIN person p ON p.id = f.person_id WHERE p.region_code LIKE :p",
    "relationship": "SELECT count(*) FROM relationship r JOIN person a ON a.id = r.from_person_id "
                    "JOIN person b ON b.id = r.to_person_id WHERE a.region_code LIKE :p OR b.region_code LIKE :p",
}


@pytest.fixture(scope="module")
def db_url(request, tmp_path_factory) -> str:
    """PostgreSQL only: SQLite has no row-level security (the application's predicate is its only line)."""
    return make_database("postgres", request, tmp_path_factory)


def member(seq: int, relation: str = "SELF", county: str = "440106") -> hh.MemberData:
    return hh.MemberData(name="张三", id_number=make(county, dt.date(1975, 3, 9), seq), relation_to_head=relation)


class Server:
    """The server's database side: its engine (every connection as the application role) and its sessions."""

    def __init__(self, db_url: str, **engine_options):
        self.engine = make_async_engine(db_url, **engine_options)
        install_app_role(self.engine.sync_engine)
        self.components = AppComponents(settings=server_settings(db_url), engine=self.engine,
                                        session_factory=async_session_factory(self.engine))

    def sessions(self, actor):
        return request_sessions(self.components, actor)


def run(coro_fn):
    return asyncio.run(coro_fn())


async def _with_server(db_url: str, work, **engine_options):
    server = Server(db_url, **engine_options)
    try:
        return await work(server)
    finally:
        await server.engine.dispose()


@pytest.fixture(scope="module")
def world(db_url, policies):
    """Two households in the caseworker's township, one in another county, registered through the service in
    request sessions of their own caseworkers; then (as the owner) economic items, a case with a step and a
    payment, an alert, a feed record for each, and a relationship across the two regions."""
    caseworker = actor_for(db_url, "cw-tianhe", ("township_caseworker", TOWNSHIP))
    other = actor_for(db_url, "cw-luohu", ("township_caseworker", OTHER_VILLAGE[:9]))

    async def register(server: Server):
        ids = []
        for actor, region, members in ((caseworker, VILLAGE, [member(11), member(12, "SPOUSE")]),
                                       (caseworker, VILLAGE, [member(13)]),
                                       (other, OTHER_VILLAGE, [member(21, county="440303"),
                                                               member(22, "CHILD", county="440303")])):
            async with server.sessions(actor)() as session:
                ids.append(await hh.register_household(session, actor, region_code=region, address=None,
                                                       members=members))
                await session.commit()
        return ids

    household_ids = run(lambda: _with_server(db_url, register))
    engine = make_sync_engine(db_url)
    with session_scope(engine) as s:
        for hid in household_ids:
            region = s.execute(text("SELECT region_code FROM household WHERE id = :h"), {"h": hid}).scalar_one()
            person_id = s.scalars(select(Membership.person_id).where(Membership.household_id == hid)).first()
            s.add(EconomicItem(household_id=hid, person_id=person_id, kind="WAGE", source="TAX",
                               amount=Decimal("1000"), period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 1, 31)))
            enrollment = Enrollment(household_id=hid, program_key="dibao", province_code="44", region_code=region,
                                    status="ACTIVE")
            s.add(enrollment)
            s.flush()
            s.add(EnrollmentStep(enrollment_id=enrollment.id, action="apply", to_status="APPLIED", actor="x"))
            s.add(Payment(enrollment_id=enrollment.id, household_id=hid, amount=Decimal("500"), period="2026-01"))
            s.add(Alert(household_id=hid, person_id=person_id, region_code=region, township_code=region[:9],
                        level="RED", score=90, status="OPEN", indicators=[], month="2026-01"))
            s.add(AidChainEvent(household_id=hid, kind="ALERT", summary="alert"))
            s.add(FeedRecord(kind="HOSPITALISATION", person_id=person_id, event_date=dt.date(2026, 1, 5), payload={},
                             row_hash=f"h{hid}", source_file="f.csv", line_number=1))
        mine = s.scalars(select(Person.id).where(Person.region_code.like(TOWNSHIP + "%")).order_by(Person.id)).all()
        theirs = s.scalars(select(Person.id).where(Person.region_code.like("440303%")).order_by(Person.id)).all()
        s.add(Relationship(from_person_id=theirs[0], to_person_id=mine[0], kind="SUPPORT_OBLIGOR",
                           valid_from=dt.date(2020, 1, 1)))
        s.add(Relationship(from_person_id=theirs[0], to_person_id=theirs[1], kind="PARENT",
                           valid_from=dt.date(2010, 1, 1)))
    with engine.connect() as conn:
        expected = {t: conn.execute(text(q), {"p": TOWNSHIP + "%"}).scalar_one() for t, q in IN_TOWNSHIP.items()}
        total = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in IN_TOWNSHIP}
    engine.dispose()
    return {"caseworker": caseworker, "other": other, "households": household_ids, "expected": expected,
            "total": total}


async def _counts(session) -> dict[str, int]:
    # the application's scope predicate left out on purpose: a raw count of every table
    return {t: (await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in IN_TOWNSHIP}


def test_the_data_lies_on_both_sides(world):
    """Every table the tests read has rows in the township and rows outside it (else they could not fail)."""
    for table in IN_TOWNSHIP:
        assert 0 < world["expected"][table] < world["total"][table], table


def test_raw_reads_in_a_caseworkers_request_see_only_the_township(db_url, world):
    async def work(server: Server):
        async with server.sessions(world["caseworker"])() as session:
            role = (await session.execute(text("SELECT current_user"))).scalar_one()
            owner = (await session.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'household'"))
                     ).scalar_one()
            counts = await _counts(session)
            codes = (await session.execute(text("SELECT region_code FROM household UNION ALL "
                                                "SELECT region_code FROM person"))).scalars().all()
            await session.commit()
            # a second transaction of the same request sets the scope again
            again = await _counts(session)
            return role, owner, counts, codes, again

    role, owner, counts, codes, again = run(lambda: _with_server(db_url, work))
    assert role == APP_ROLE and owner != APP_ROLE
    assert counts == world["expected"]
    assert again == world["expected"]
    assert codes and all(c.startswith(TOWNSHIP) for c in codes)


def test_a_transaction_without_a_scope_sees_nothing(db_url, world):
    async def work(server: Server):
        async with server.components.session_factory() as session:  # no request: no scope set
            unset = await _counts(session)
        async with server.sessions(None)() as session:  # a request without an actor
            anonymous = await _counts(session)
        async with server.sessions(actor_for(db_url, "nobody"))() as session:  # an actor without grants
            no_grants = await _counts(session)
        return unset, anonymous, no_grants

    for counts in run(lambda: _with_server(db_url, work)):
        assert counts == dict.fromkeys(IN_TOWNSHIP, 0)


def test_writes_outside_the_scope_are_refused(db_url, world):
    theirs = world["households"][2]

    async def work(server: Server):
        async with server.sessions(world["caseworker"])() as session:
            updated = (await session.execute(text("UPDATE household SET address = 'x' WHERE id = :h"),
                                             {"h": theirs})).rowcount
            deleted = (await session.execute(text("DELETE FROM economic_item WHERE household_id = :h"),
                                             {"h": theirs})).rowcount
            await session.rollback()
        async with server.sessions(world["caseworker"])() as session:
            try:
                await session.execute(text("UPDATE household SET region_code = :r WHERE region_code LIKE :p"),
                                      {"r": OTHER_VILLAGE, "p": TOWNSHIP + "%"})
                moved_out = "allowed"
            except DBAPIError as e:
                moved_out = str(e.orig)
            await session.rollback()
        async with server.sessions(world["caseworker"])() as session:
            try:
                await session.execute(text("UPDATE audit_log SET action = 'x'"))
                audit = "allowed"
            except DBAPIError as e:
                audit = str(e.orig)
            await session.rollback()
        return updated, deleted, moved_out, audit

    updated, deleted, moved_out, audit = run(lambda: _with_server(db_url, work))
    assert (updated, deleted) == (0, 0)
    assert "row-level security" in moved_out
    assert "permission denied" in audit


PREPARED = "SELECT count(*) FROM person WHERE id > %(floor)s"
"""A statement with a bound value: the driver prepares it on a connection after a few executions."""


def test_prepared_statements_keep_each_callers_scope(db_url, world):
    """Request transactions that wrote nothing end with COMMIT (core/storage/db.close_session), so the driver
    keeps the statements it prepared on the pooled connection from one request to the next. A prepared plan is
    then run for callers of other regions: the policies read the scope when the plan runs, not when it was
    made, so each caller still counts only its own rows, and a transaction without a scope none."""
    async def work(server: Server):
        counts = []
        for actor in [world["caseworker"]] * 8 + [world["other"]] * 3 + [None]:
            session = server.sessions(actor)()
            connection = await session.connection()
            counts.append((await connection.exec_driver_sql(PREPARED, {"floor": 0})).scalar_one())
            await close_session(session)
        session = server.sessions(world["caseworker"])()
        prepared = (await session.execute(text("SELECT count(*) FROM pg_prepared_statements"))).scalar_one()
        await close_session(session)
        return counts, prepared

    # one pooled connection: every session above reuses it and the statement it prepared
    counts, prepared = run(lambda: _with_server(db_url, work, pool_size=1, max_overflow=0))
    assert prepared >= 1
    mine, theirs = world["expected"]["person"], world["total"]["person"] - world["expected"]["person"]
    assert counts == [mine] * 8 + [theirs] * 3 + [0]


def _scope_sets(counter: StatementCounter) -> int:
    return sum("set_config('aidgraph.scope'" in st for st in counter.statements)


def test_the_scope_is_sent_only_when_the_connections_caller_changes(db_url, world):
    """The server's connections keep the scope at session level: a caller's second request on the same pooled
    connection sends no set_config, another caller's sends one, and each still counts only its own rows."""
    async def work(server: Server):
        sets, counts = [], []
        with StatementCounter(server.engine.sync_engine) as counter:
            for actor in [world["caseworker"]] * 3 + [world["other"]] * 2 + [world["caseworker"]]:
                counter.reset()
                session = server.sessions(actor)()
                counts.append((await session.execute(text("SELECT count(*) FROM person"))).scalar_one())
                await close_session(session)
                sets.append(_scope_sets(counter))
        return sets, counts

    sets, counts = run(lambda: _with_server(db_url, work, pool_size=1, max_overflow=0))
    mine, theirs = world["expected"]["person"], world["total"]["person"] - world["expected"]["person"]
    assert counts == [mine] * 3 + [theirs] * 2 + [mine]
    assert sets == [1, 0, 0, 1, 0, 1]


def test_authentication_leaves_the_request_pools_scope_in_place(db_url, world):
    """The server authenticates on a pool of its own (``AppComponents.identity_engine``): its lookups carry no
    caller, so on the request pool they would switch each connection to the empty scope and the request back to
    its caller's, two more statements a request. One caller's requests on a one-connection request pool send
    the scope once. (The identity pool's connections run as the application role with no scope, like any
    session without a caller: test_a_transaction_without_a_scope_sees_nothing.)"""
    from aidgraph.core.app.demo import ensure_demo_user
    from aidgraph.core.policy.engine import PolicyEngine
    from aidgraph.schema.build import build_schema
    from tests.live import run_live_server

    settings = server_settings(db_url)
    owner = make_sync_engine(db_url)
    token = ensure_demo_user(owner, settings, username="rls-admin44", region_codes=("44",))
    owner.dispose()
    # the server without its background work (search indexer, partition keeper): this module's other tests
    # count the world's rows and partitions; a page of Dongguan (no household of the world) writes no
    # disclosure audit row either
    policy = PolicyEngine(settings)
    components = AppComponents(settings=settings, schema=build_schema(settings=settings, pm=policy.pm),
                               programs=policy.catalogue(), policy=policy,
                               engine=make_async_engine(db_url, pool_size=1, max_overflow=0))
    with run_live_server(components) as live:
        live.token = token
        sets = []
        with StatementCounter(components.engine.sync_engine) as counter:
            for _ in range(4):
                counter.reset()
                body = live.data("HouseholdList", {"regionCode": "4419", "first": 5})
                sets.append(_scope_sets(counter))
        assert body["households"]["totalCount"] == 0
        assert components.identity_engine is not None and components.identity_engine is not components.engine

    assert sets[1:] == [0, 0, 0], sets


def test_a_scope_set_in_a_transaction_that_rolled_back_is_set_again(db_url, world):
    """A session-level set_config is undone by its transaction's rollback (and by an error): the connection
    then holds the previous caller's scope again, and the next transaction of the new caller must send its own
    (else it would run with the previous caller's regions)."""
    async def work(server: Server):
        counts = []
        async with server.sessions(world["caseworker"])() as session:
            counts.append((await session.execute(text("SELECT count(*) FROM person"))).scalar_one())
            await session.commit()
        async with server.sessions(world["other"])() as session:  # sets the other scope, then rolls back
            counts.append((await session.execute(text("SELECT count(*) FROM person"))).scalar_one())
            await session.rollback()
        async with server.sessions(world["other"])() as session:  # sets it, then fails and is closed
            counts.append((await session.execute(text("SELECT count(*) FROM person"))).scalar_one())
            with pytest.raises(DBAPIError):
                await session.execute(text("SELECT 1 / 0"))
        async with server.sessions(world["other"])() as session:
            counts.append((await session.execute(text("SELECT count(*) FROM person"))).scalar_one())
            await session.commit()
        async with server.engine.connect() as conn:  # the same connection throughout: no reset by the pool
            for actor in (world["caseworker"], world["other"]):
                info = session_info(actor.row_scope(), actor.username)
                async with AsyncSession(bind=conn, info=info) as session:
                    counts.append((await session.execute(text("SELECT count(*) FROM person"))).scalar_one())
                    await session.commit() if actor is world["caseworker"] else await session.rollback()
                    counts.append((await session.execute(text("SELECT count(*) FROM person"))).scalar_one())
                    await session.rollback()
        return counts

    counts = run(lambda: _with_server(db_url, work, pool_size=1, max_overflow=0))
    mine, theirs = world["expected"]["person"], world["total"]["person"] - world["expected"]["person"]
    assert counts == [mine, theirs, theirs, theirs, mine, mine, theirs, theirs]


def test_a_core_connection_after_a_request_inherits_no_scope(db_url, world):
    """A transaction on the server's engine that no scoped session began (a Core connection, a session without
    a scope, a savepoint first) runs with the empty setting, not with the scope the pooled connection held for
    the request before it."""
    async def work(server: Server):
        async with server.sessions(world["caseworker"])() as session:
            before = (await session.execute(text("SELECT count(*) FROM person"))).scalar_one()
            await session.commit()
        async with server.engine.connect() as conn:
            core = {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in IN_TOWNSHIP}
            await conn.commit()
        async with server.sessions(world["caseworker"])() as session:
            await session.commit()
        async with server.engine.connect() as conn:
            async with conn.begin_nested():
                nested = (await conn.execute(text("SELECT count(*) FROM person"))).scalar_one()
        async with server.sessions(world["caseworker"])() as session:
            await session.execute(text("SELECT 1"))
            await session.commit()
        async with server.components.session_factory() as session:
            unscoped = (await session.execute(text("SELECT count(*) FROM person"))).scalar_one()
        return before, core, nested, unscoped

    before, core, nested, unscoped = run(lambda: _with_server(db_url, work, pool_size=1, max_overflow=0))
    assert before == world["expected"]["person"] > 0
    assert core == dict.fromkeys(IN_TOWNSHIP, 0)
    assert (nested, unscoped) == (0, 0)


def test_a_bulk_read_through_copy_holds_the_callers_scope_and_inherits_none(db_url, world):
    """``read_frame`` reads PostgreSQL rows through COPY, which goes to the driver past the engine's statement
    events. On an engine whose connections run as the application role, as the server's: inside a caseworker's
    scoped session it sees the township only, and on a Core connection after it (the same pooled connection,
    which held the caseworker's scope) it sees nothing, as any first statement there."""
    from sqlalchemy.orm import Session
    schema = {"id": pl.Int64, "region_code": pl.Utf8}
    persons = select(Person.id, Person.region_code)
    caseworker = world["caseworker"]
    engine = make_sync_engine(db_url, pool_size=1, max_overflow=0)
    try:
        install_app_role(engine)
        with Session(engine, info=session_info(caseworker.row_scope(), caseworker.username)) as session:
            scoped = read_frame(session, persons, schema)
            session.commit()
        with engine.connect() as conn:
            core = read_frame(conn, persons, schema)
            conn.commit()
    finally:
        engine.dispose()
    assert scoped.height == world["expected"]["person"] > 0
    assert scoped["region_code"].str.starts_with(TOWNSHIP).all()
    assert core.is_empty()


def test_a_membership_carries_its_households_region_whatever_is_written(db_url, world):
    """The membership policy reads the copy of the household's region the database keeps on each row (migration
    0025): nobody can make the copy lie. A value sent by the application role is overwritten; a membership
    written into another region's household is refused; a household whose region changes takes its rows'
    copies along (as the owner, in a transaction rolled back)."""
    mine, theirs = world["households"][0], world["households"][2]
    tianhe_person = "SELECT person_id FROM membership WHERE household_id = %d LIMIT 1" % mine

    async def work(server: Server):
        async with server.sessions(world["caseworker"])() as session:
            await session.execute(text("UPDATE membership SET rls_region_code = :r WHERE household_id = :h"),
                                  {"r": OTHER_VILLAGE, "h": mine})
            kept = set((await session.execute(text("SELECT rls_region_code FROM membership WHERE household_id = :h"),
                                               {"h": mine})).scalars())
            await session.rollback()
        async with server.sessions(world["caseworker"])() as session:
            try:  # a row of the Luohu household, with a copy claiming the caseworker's village
                await session.execute(text(
                    "INSERT INTO membership (household_id, person_id, relation_to_head, valid_from, rls_region_code) "
                    f"VALUES (:h, ({tianhe_person}), 'OTHER', '2026-01-01', :r)"), {"h": theirs, "r": VILLAGE})
                forged = "allowed"
            except DBAPIError as e:
                forged = str(e.orig)
            await session.rollback()
        return kept, forged

    kept, forged = run(lambda: _with_server(db_url, work))
    assert kept == {VILLAGE}
    assert "row-level security" in forged

    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            stale = conn.execute(text("SELECT count(*) FROM membership m JOIN household h ON h.id = m.household_id "
                                      "WHERE m.rls_region_code IS DISTINCT FROM h.region_code")).scalar_one()
            conn.rollback()
            conn.execute(text("UPDATE household SET region_code = :r WHERE id = :h"), {"r": OTHER_VILLAGE, "h": mine})
            moved = set(conn.execute(text("SELECT rls_region_code FROM membership WHERE household_id = :h"),
                                     {"h": mine}).scalars())
            conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
            conn.execute(text("SELECT set_config('aidgraph.scope', :s, true)"), {"s": TOWNSHIP})
            seen = conn.execute(text("SELECT count(*) FROM membership")).scalar_one()
            conn.rollback()
    finally:
        engine.dispose()
    assert stale == 0
    assert moved == {OTHER_VILLAGE}
    members_of_mine = 2
    assert seen == world["expected"]["membership"] - members_of_mine


def test_closing_a_request_that_wrote_rolls_its_write_back(db_url, world):
    """Only a transaction that wrote nothing ends with COMMIT: a write left uncommitted is rolled back as before,
    whatever statement made it (PostgreSQL is asked whether the transaction holds a transaction id)."""
    mine = world["households"][0]

    async def work(server: Server):
        session = server.sessions(world["caseworker"])()
        await session.execute(text("UPDATE household SET address = 'left uncommitted' WHERE id = :h"), {"h": mine})
        await close_session(session)
        session = server.sessions(world["caseworker"])()
        address = (await session.execute(text("SELECT address FROM household WHERE id = :h"), {"h": mine})
                   ).scalar_one()
        await close_session(session)
        return address

    assert run(lambda: _with_server(db_url, work)) != "left uncommitted"


def test_the_global_duplicate_check_still_answers_transfer_required(db_url, world):
    """The one global lookup (ID numbers are unique everywhere) runs widened; the answer stays neutral and the
    request's own scope is in force again afterwards."""
    known = member(21, county="440303")  # registered in 罗湖 by the other caseworker

    async def work(server: Server):
        async with server.sessions(world["caseworker"])() as session:
            try:
                await hh.register_household(session, world["caseworker"], region_code=VILLAGE, address=None,
                                            members=[known])
                error = None
            except DomainError as e:
                error = e
            after = await _counts(session)
            await session.rollback()
            return error, after

    error, after = run(lambda: _with_server(db_url, work))
    assert error is not None and [e.code for e in error.errors] == [ErrorCode.TRANSFER_REQUIRED]
    assert after == world["expected"]


def test_the_envelope_covers_every_scope_casbin_decides(db_url, policies):
    """The row-level setting (Actor.row_scope) is never narrower than a scope the application decides, so the
    policies cannot hide a row the application's predicate admits: for actors of every role, in one region and
    in several, every (action, object) scope lies inside it."""
    from aidgraph.core.access.authz import CORE_OBJECTS, ROLES

    objects = list(CORE_OBJECTS) + ["enrollment:medical", "referral:medical_insurance"]
    for role in ROLES:
        for regions in ((TOWNSHIP,), ("4401", OTHER_VILLAGE)):
            actor = actor_for(db_url, f"u-{role}", *((role, r) for r in regions))
            envelope = actor.row_scope().split(",")
            assert sorted(envelope) == sorted(regions)
            for action in ("read", "update", "audit_read"):
                for obj in objects:
                    for prefix in actor.scope(action, obj).prefixes:
                        assert any(prefix.startswith(e) for e in envelope), (role, regions, action, obj, prefix)


def test_partitioned_tables_are_bound_through_the_parent_and_closed_partitions(db_url, world):
    """economic_item and feed_record are partitioned by month (migration 0024): the world's rows of January 2026
    wait in the default partitions until the month is created, then sit in its partitions; through the parent a
    caseworker still sees only the township's, and naming a partition directly is refused (its rows would
    otherwise be read past the parent's policies)."""
    engine = make_sync_engine(db_url)
    with engine.begin() as conn:
        moved = sum(ensure_month_partitions(conn, t, dt.date(2026, 1, 1), dt.date(2026, 1, 1)).moved
                    for t in ("economic_item", "feed_record"))
        homes = set(conn.execute(text("SELECT tableoid::regclass::text FROM economic_item UNION "
                                      "SELECT tableoid::regclass::text FROM feed_record")).scalars())
    engine.dispose()
    assert moved == world["total"]["economic_item"] + world["total"]["feed_record"]
    assert homes == {"economic_item_p202601", "feed_record_p202601"}

    async def work(server: Server):
        async with server.sessions(world["caseworker"])() as session:
            counts = {t: (await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()
                      for t in ("economic_item", "feed_record")}
            await session.commit()
        refused = []
        for partition in ("economic_item_p202601", "feed_record_p202601", "feed_record_default"):
            async with server.sessions(world["caseworker"])() as session:
                try:
                    await session.execute(text(f"SELECT count(*) FROM {partition}"))
                except DBAPIError as exc:
                    refused.append("permission denied" in str(exc))
        return counts, refused

    counts, refused = run(lambda: _with_server(db_url, work))
    assert counts == {t: world["expected"][t] for t in ("economic_item", "feed_record")}
    assert refused == [True, True, True]


@pytest.fixture(autouse=True, scope="module")
def _fresh_authorizers():
    authz.forget_authorizers()
    yield
    authz.forget_authorizers()


def test_a_scoped_callers_read_refreshes_the_kept_decisions_of_the_whole_province(db_url, world):
    """The kept decisions (政策找人, core/policy/decisions.py) are refreshed by whichever read finds them out of
    date, here a township caseworker's. The refresh is system work: it must recompute every household of the
    province, not only those the caller's row-level scope shows, and consume no stale mark of a household it did
    not recompute (it used to run under the caller's scope: the other county's decisions were missing after it)."""
    from aidgraph.core.policy import decisions
    from aidgraph.core.policy.engine import default_engine

    policy = default_engine()
    today = dt.date.today()

    owner = make_sync_engine(db_url)  # the tables' owner, unbound by the policies: the oracle

    async def work(server: Server):
        factory = server.sessions(world["caseworker"])
        await decisions.gaps(factory, policy, region_code=TOWNSHIP, on=today, limit=10)
        # a change to the other county's household, then the caseworker's next read refreshes what is stale
        with owner.begin() as conn:
            conn.execute(text("UPDATE household SET address = 'moved flat' WHERE id = :h"),
                         {"h": world["households"][2]})
        await decisions.gaps(factory, policy, region_code=TOWNSHIP, on=today, limit=10)

    run(lambda: _with_server(db_url, work))
    with owner.connect() as conn:
        kept = set(conn.execute(text("SELECT DISTINCT household_id FROM eligibility_decision")).scalars())
        stale = conn.execute(text("SELECT count(*) FROM decision_stale")).scalar_one()
    owner.dispose()
    assert set(world["households"]) <= kept  # the enrolled households of both counties keep their rows
    assert stale == 0


SCOPES = ("44", "4401", "440106", "440106011", "440106011004", "440109", "4409", "19", "440106019", "4401,440303",
          "440106011004,440303001001", "*", "")
"""Scope settings at every level, ending in 9 (whose successor is ``:``), of several prefixes, unrestricted, empty
(prefixes at level boundaries only: :class:`Scope` refuses others, and so the setting never holds one)."""


def _codes() -> list[str]:
    """Region codes at, inside and just beside each prefix of :data:`SCOPES`: the bounds of each byte range."""
    codes = {"440106011004", "440303001001", "110101001001", "449999999999", "450000000000", "439999999999"}
    for setting in SCOPES:
        for p in setting.split(","):
            if p in ("", "*"):
                continue
            codes |= {p, p.ljust(12, "0"), p.ljust(12, "9")}
            if p[-1] != "0":
                codes.add((p[:-1] + str(int(p[-1]) - 1)).ljust(12, "9"))
            if p[-1] != "9":
                codes.add((p[:-1] + str(int(p[-1]) + 1)).ljust(12, "0"))
            else:
                codes.add((p[:-1] + "9" + "0").ljust(12, "0"))
                if len(p) > 1 and p[-2] != "9":
                    codes.add((p[:-2] + str(int(p[-2]) + 1)).ljust(12, "0"))
            codes |= {p[:k] for k in range(1, len(p) + 1)}  # shorter codes: a level above the prefix
    return sorted(codes)


def test_the_policies_admit_exactly_the_codes_under_the_scope(db_url):
    """The region test of the live policies (0018's prefix test with 0026's byte range for a one-prefix scope in
    front of it) admits a code exactly when the application's :meth:`Scope.contains` does, for scopes at every
    level, several prefixes, the unrestricted and the empty scope, on codes at the edges of each range. The test
    is the ``alert`` policy's expression, read from the database and put on a probe table of region codes."""
    owner = make_sync_engine(db_url)
    codes = _codes()
    try:
        with owner.begin() as conn:
            expression = conn.execute(text("SELECT pg_get_expr(polqual, polrelid) FROM pg_policy "
                                           "WHERE polrelid = 'alert'::regclass")).scalar_one()
            assert "aidgraph_scope_low" in expression
            conn.execute(text("DROP TABLE IF EXISTS policy_probe"))
            conn.execute(text("CREATE TABLE policy_probe (region_code varchar(12) NOT NULL)"))
            conn.execute(text("INSERT INTO policy_probe VALUES (:c)"), [{"c": c} for c in codes])
            conn.execute(text("ALTER TABLE policy_probe ENABLE ROW LEVEL SECURITY"))
            conn.execute(text(f"CREATE POLICY probe ON policy_probe TO {APP_ROLE} USING ({expression})"))
            conn.execute(text(f"GRANT SELECT ON policy_probe TO {APP_ROLE}"))
        for setting in SCOPES:
            with owner.begin() as conn:
                conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
                conn.execute(text("SELECT set_config('aidgraph.scope', :s, true)"), {"s": setting})
                admitted = set(conn.execute(text("SELECT region_code FROM policy_probe")).scalars())
            scope = Scope.everything() if setting == "*" else Scope.of(p for p in setting.split(",") if p)
            expected = {c for c in codes if scope.contains(c)}
            assert admitted == expected, (setting, sorted(admitted ^ expected))
    finally:
        with owner.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS policy_probe"))
        owner.dispose()


def test_every_prefix_test_of_a_policy_has_the_one_prefix_range_in_front(db_url):
    """Migration 0026 rewrote every policy, whichever migration made it: no prefix test is left without the range
    that spares a one-prefix scope the per-row ``starts_with`` (the cost of the list page's total count)."""
    owner = make_sync_engine(db_url)
    try:
        with owner.connect() as conn:
            rows = conn.execute(text("SELECT polrelid::regclass::text, coalesce(pg_get_expr(polqual, polrelid), '') "
                                     "|| coalesce(pg_get_expr(polwithcheck, polrelid), '') FROM pg_policy")).all()
    finally:
        owner.dispose()
    tests = {table: (e.count("^@ ANY"), e.count("aidgraph_scope_low()")) for table, e in rows if "^@ ANY" in e}
    assert len(tests) >= 25
    assert {t: n for t, n in tests.items() if n[0] != n[1]} == {}


def test_migration_0026_downgrades_to_the_prefix_test_alone_and_upgrades_to_the_same_policies(request,
                                                                                              tmp_path_factory):
    """0026 rewrites the policies where they stand (whatever migration made them) and its downgrade takes the
    range out again: after a downgrade no policy and no function mentions the range, and upgrading again gives
    back the very policies a database migrated straight to head has."""
    from aidgraph.core.storage.migrate import downgrade, upgrade

    url = make_database("postgres", request, tmp_path_factory)
    engine = make_sync_engine(url)
    policies = text("SELECT polrelid::regclass::text, polname, pg_get_expr(polqual, polrelid), "
                    "pg_get_expr(polwithcheck, polrelid) FROM pg_policy ORDER BY 1, 2")
    try:
        with engine.connect() as conn:
            at_head = [" ".join(map(str, row)) for row in conn.execute(policies)]
        downgrade(engine, "0025")
        with engine.connect() as conn:
            before = [" ".join(map(str, row)) for row in conn.execute(policies)]
            functions = conn.execute(text("SELECT count(*) FROM pg_proc "
                                          "WHERE proname IN ('aidgraph_scope_low', 'aidgraph_scope_high')")).scalar()
        upgrade(engine)
        with engine.connect() as conn:
            again = [" ".join(map(str, row)) for row in conn.execute(policies)]
    finally:
        engine.dispose()
    assert sum("aidgraph_scope_low" in policy for policy in at_head) >= 25
    assert not any("aidgraph_scope_low" in policy for policy in before) and functions == 0
    assert sum(p.count("^@ ANY") for p in before) == sum(p.count("^@ ANY") for p in at_head)
    assert again == at_head
