"""Search fixtures: a small graph of households, persons, alerts and enrolments written the way services
write them (rows plus outbox rows in one transaction), real actors decided by the Casbin policies, and a
fresh osmem-server clone per test with the database indexed into it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, func, select

from aidgraph.core.policy.host import casbin_objects
from aidgraph.core.access import authz
from aidgraph.core.graph import outbox
from aidgraph.core.access.actor import Actor, RoleGrant, system_actor
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.graph.idnumber import make as make_id
from aidgraph.core.storage.models import Alert, Enrollment, Household, Membership, Outbox, OutboxEntity, Person
from aidgraph.core.search.client import BULK_TIMEOUT, make_client
from aidgraph.core.search.mapping import DEFAULT_ALIAS, build_layout
from aidgraph.core.search.query import EngineQuirks, SearchRequest, search
from aidgraph.core.search.rebuild import reindex

_sequence = itertools.count(1)


def new_id_number(address_code: str = "440106", born: dt.date = dt.date(1980, 5, 17)) -> str:
    return make_id(address_code, born, next(_sequence) % 1000)


def add_household(session, region_code: str, address: str | None, members: list[str], *,
                  id_prefix: str | None = None, alert: str | None = None, alert_status: str = "OPEN",
                  enrollment: str | None = None, township: str | None = None) -> dict:
    """Write a household with members (first is the head), optionally an alert and an enrolment, plus the
    outbox rows a service would write, in ``session`` (the caller's transaction)."""
    number = f"H{region_code.ljust(12, '0')}{next(_sequence):06d}"
    household = Household(household_number=number, region_code=region_code, address=address, version=1)
    session.add(household)
    session.flush()
    persons = []
    for i, name in enumerate(members):
        person = Person(id_number=new_id_number(id_prefix or region_code[:6]), name=name,
                        sex="MALE", birth_date=dt.date(1980, 5, 17), hukou_region_code=region_code[:6],
                        region_code=region_code, version=1)
        session.add(person)
        session.flush()
        session.add(Membership(household_id=household.id, person_id=person.id,
                               relation_to_head="SELF" if i == 0 else "OTHER", valid_from=dt.date(2024, 1, 1)))
        outbox.emit(session, OutboxEntity.PERSON, person.id, person.version)
        persons.append(person)
    outbox.emit(session, OutboxEntity.HOUSEHOLD, household.id, household.version)
    result = {"household": household, "persons": persons, "alert": None, "enrollment": None}
    if alert:
        a = Alert(household_id=household.id, region_code=region_code, township_code=township or region_code[:9],
                  level=alert, score=80, status=alert_status, indicators=["hospitalisation"], month="2025-01",
                  version=1)
        session.add(a)
        session.flush()
        outbox.emit(session, OutboxEntity.ALERT, a.id, a.version)
        result["alert"] = a
    if enrollment:
        e = Enrollment(household_id=household.id, program_key=enrollment, province_code=region_code[:2],
                       region_code=region_code, status="ACTIVE", version=1)
        session.add(e)
        session.flush()
        outbox.emit(session, OutboxEntity.ENROLLMENT, e.id, e.version)
        result["enrollment"] = e
    return result


def add_person(session, region_code: str, name: str) -> Person:
    person = Person(id_number=new_id_number(region_code[:6]), name=name, sex="FEMALE", birth_date=dt.date(1990, 1, 2),
                    hukou_region_code=region_code[:6], region_code=region_code, version=1)
    session.add(person)
    session.flush()
    outbox.emit(session, OutboxEntity.PERSON, person.id, person.version)
    return person


@dataclass
class Graph:
    """The ids of the sample records, by a short name."""

    households: dict[str, int] = field(default_factory=dict)
    persons: dict[str, int] = field(default_factory=dict)
    id_numbers: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    enrollments: dict[str, int] = field(default_factory=dict)
    paging_names: list[str] = field(default_factory=list)


def build_graph(engine: Engine) -> Graph:
    g = Graph()
    spec = [
        # key, region, address, members, alert, enrollment
        ("wushan", "440106001001", "广州市天河区五山路1号", ["张三丰", "李秀英"], "RED", "dibao"),
        ("yuancun", "440106002", "广州市天河区员村二横路8号", ["张丽", "王五"], None, None),
        ("nantou", "440305001", "深圳市南山区南头街道12号", ["赵张三"], "ORANGE", "tekun"),
        ("lanzhou", "620102001", "兰州市城关区酒泉路3号", ["张伟"], "BLUE", "dibao"),
        ("markup", "440106001002", "广州市天河路<b>7</b>号 \"东门\"", ["欧阳明"], None, None),
    ]
    with session_scope(engine) as session:
        for key, region, address, members, alert, enrollment in spec:
            made = add_household(session, region, address, members, alert=alert, enrollment=enrollment)
            g.households[key] = made["household"].id
            g.numbers[key] = made["household"].household_number
            for p in made["persons"]:
                g.persons[p.name] = p.id
                g.id_numbers[p.name] = p.id_number
            if made["alert"] is not None:
                g.alerts[key] = made["alert"].id
            if made["enrollment"] is not None:
                g.enrollments[key] = made["enrollment"].id
        for i in range(45):
            name = f"陈{'甲乙丙丁戊己庚辛壬癸'[i % 10]}{i:02d}"
            p = add_person(session, "440106001001" if i % 2 else "440106003", name)
            g.persons[name] = p.id
            g.paging_names.append(name)
    return g


@pytest.fixture(scope="module")
def graph_engine(db_url):
    engine = make_sync_engine(db_url)
    with session_scope(engine) as session:
        if not authz.policy_provinces(session) >= {"44", "62"}:
            authz.load_policies(session, load_settings({}).province_configs_dir, ["44", "62"],
                                objects=authz.known_objects(casbin_objects()))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def graph(graph_engine) -> Graph:
    return build_graph(graph_engine)


def actor_for(db_url: str, role: str, *regions: str, username: str | None = None) -> Actor:
    """An actor whose scopes the real Casbin authorizer decides from ``role`` held in ``regions``."""
    authorizer = authz.authorizer_for(db_url)
    actor = Actor(username=username or f"{role}-{'-'.join(regions)}", display_name=role,
                  grants=tuple(RoleGrant(role, r) for r in regions))
    return authorizer.bind(actor)


@dataclass
class SearchEnv:
    db_url: str
    engine: Engine
    client: object
    alias: str
    layout: object
    quirks: EngineQuirks

    def search(self, actor: Actor, query: str = "", **kwargs):
        kinds = kwargs.pop("kinds", None)
        levels = kwargs.pop("warning_levels", None)
        request = SearchRequest(query=query, kinds=tuple(kinds) if kinds else None,
                                warning_levels=tuple(levels) if levels else None, **kwargs)
        return search(self.client, self.alias, self.layout, actor, request, self.quirks)

    def actor(self, role: str, *regions: str) -> Actor:
        return actor_for(self.db_url, role, *regions)

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(Outbox).where(Outbox.processed_at.is_(None))).scalar_one()


@pytest.fixture
def search_env(osmem_clone, db_url, graph_engine, graph) -> SearchEnv:
    """The module's database reindexed into a fresh osmem-server clone."""
    client = make_client(osmem_clone.url, timeout=BULK_TIMEOUT)
    layout = build_layout()
    reindex(graph_engine, client, DEFAULT_ALIAS, layout)
    yield SearchEnv(db_url, graph_engine, client, DEFAULT_ALIAS, layout, EngineQuirks.detect(client))
    client.close()


@pytest.fixture
def system():
    return system_actor("search-test")
