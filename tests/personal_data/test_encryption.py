"""ID numbers and phones encrypted at rest (issue 17, item 2), on both engines.

- The raw tables hold no complete ID number or phone, whichever path wrote them (the seed's bulk path, a
  registration through the ORM, a lead); search documents carry only the blind index.
- Lookup, uniqueness and duplicate detection at registration go through the blind index; comparing the
  encrypted column in SQL is refused.
- Migration 0012 encrypts the rows of an older database and its downgrade restores them.
- Key rotation re-encrypts in batches, can be interrupted and resumed, and leaves every value readable.
- Production refuses to start without a data key; development keeps one per state directory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from aidgraph.core.access import authz
from aidgraph.core.access.actor import Actor, RoleGrant
from aidgraph.core.access.authn import check_configuration
from aidgraph.core.access.scope import Scope
from aidgraph.core.app.cli import app
from aidgraph.core.app.seed import seed_province
from aidgraph.core.graph import households as hh
from aidgraph.core.graph import reads
from aidgraph.core.graph.idnumber import make
from aidgraph.core.policy.host import casbin_objects
from aidgraph.core.search.documents import load_docs
from aidgraph.core.storage.config import Settings, builtin_province_configs
from aidgraph.core.storage.crypto import DataKeyError, add_key, load_keyring
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.storage.encrypted import (ID_NUMBER, PHONE, forget_keyring, id_number_index, keyring, reencrypt,
                                             stale_values, values_by_key)
from aidgraph.core.storage.errors import DomainError, ErrorCode
from aidgraph.core.storage.migrate import downgrade, upgrade
from aidgraph.core.storage.models import Base, Lead, Person, Volunteer, VolunteerStation

VILLAGE = "440106011004"  # a village of 天河区
TOWNSHIP = VILLAGE[:9]


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _person(seq: int, phone: str | None = None, region: str = VILLAGE) -> Person:
    birth = dt.date(1970, 1, 1) + dt.timedelta(days=seq)
    return Person(id_number=make("440106", birth, seq % 1000), name=f"测试{seq}", sex="MALE" if seq % 2 else "FEMALE",
                  birth_date=birth, hukou_region_code="440106", region_code=region, phone=phone)


def _raw_text(engine) -> str:
    """Every value of every table, as the database holds it."""
    parts = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(text(f"SELECT * FROM {table.name}")):
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)


def _person_triggers(engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                         "AND tbl_name = 'person'")).scalars())
        return set(conn.execute(text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'person'::regclass "
                                     "AND NOT tgisinternal")).scalars())


def _register(url: str, actor: Actor, members: list[hh.MemberData]) -> tuple[int | None, DomainError | None]:
    async def main():
        engine = make_async_engine(url)
        try:
            async with async_session_factory(engine)() as session:
                try:
                    result = await hh.register_household(session, actor, region_code=VILLAGE, address="五山路1号",
                                                         members=members, idempotency_key=None)
                    await session.commit()
                    return result, None
                except DomainError as e:
                    await session.rollback()
                    return None, e
        finally:
            await engine.dispose()
    return asyncio.run(main())


@pytest.fixture
def caseworker(fresh_engine) -> Actor:
    with session_scope(fresh_engine) as session:
        authz.load_policies(session, builtin_province_configs(), objects=authz.known_objects(casbin_objects()))
    authz.forget_authorizers()
    actor = Actor(username="cw-enc", display_name="cw-enc", grants=(RoleGrant("township_caseworker", TOWNSHIP),))
    yield authz.authorizer_for(_url(fresh_engine)).bind(actor)
    authz.forget_authorizers()


def test_no_table_and_no_search_document_holds_a_clear_id_number_or_phone(fresh_engine, caseworker):
    seed_province(fresh_engine, "44", 30, 11, as_of=dt.date(2024, 6, 30))
    head = hh.MemberData(name="欧阳明", id_number=make("440106", dt.date(1968, 4, 2), 512), relation_to_head="SELF",
                         phone="13912345678")
    hid, err = _register(_url(fresh_engine), caseworker, [head])
    assert err is None and hid
    with session_scope(fresh_engine) as session:
        session.add(Lead(region_code=VILLAGE, township_code=TOWNSHIP, id_number=make("440106", dt.date(1990, 1, 1), 7),
                         channel="VISIT", description="走访发现", status="OPEN", created_by="cw-enc"))
    with session_scope(fresh_engine) as session:  # through the ORM: in clear
        people = session.execute(select(Person.id, Person.id_number, Person.phone)).all()
        lead_number = session.scalars(select(Lead.id_number)).one()
    numbers = [p.id_number for p in people] + [lead_number]
    phones = [p.phone for p in people if p.phone]
    assert len(people) > 60 and len(phones) > 20 and head.id_number in numbers and head.phone in phones
    raw = _raw_text(fresh_engine)
    assert not [n for n in numbers if n in raw] and not [p for p in phones if p in raw]
    assert raw.count("v1:k") >= len(numbers) + len(phones)
    with fresh_engine.connect() as conn:
        docs = load_docs(conn, "PERSON", [p.id for p in people])
    assert len(docs) == len(people)
    text_of_docs = " ".join(str(d.source) for d in docs.values())
    assert not [n for n in numbers if n in text_of_docs] and not [p for p in phones if p in text_of_docs]
    assert {d.source["id_number_index"] for d in docs.values()} == {id_number_index(p.id_number) for p in people}


def test_lookup_uniqueness_and_duplicate_registration_use_the_blind_index(fresh_engine, caseworker):
    with session_scope(fresh_engine) as session:
        session.add(_person(1, "13800000001"))
    number = _person(1).id_number
    with fresh_engine.connect() as conn:
        stored, index = conn.execute(text("SELECT id_number, id_number_index FROM person")).one()
    assert stored.startswith("v1:") and number not in stored and index == keyring().blind_index(number, ID_NUMBER)

    async def lookup(value: str):
        engine = make_async_engine(_url(fresh_engine))
        try:
            async with async_session_factory(engine)() as session:
                return await reads.person_by_id_number(session, Scope.everything(), value)
        finally:
            await engine.dispose()
    found = asyncio.run(lookup(number))
    assert found is not None and found.id_number == number and found.phone == "13800000001"
    assert asyncio.run(lookup(make("440106", dt.date(1970, 1, 2), 2))) is None
    with pytest.raises(TypeError, match="blind index"):
        select(Person).where(Person.id_number == number)
    with pytest.raises(IntegrityError):  # the unique blind index: one person per ID number
        with session_scope(fresh_engine) as session:
            session.add(_person(1))
    with pytest.raises(IntegrityError):  # also through a Core insert (the index is the column's default)
        with fresh_engine.begin() as conn:
            conn.execute(insert(Person), [{"id_number": number, "name": "x", "sex": "MALE",
                                           "birth_date": dt.date(1970, 1, 2), "hukou_region_code": "440106"}])
    # Registration finds the known person through the index: the person (in scope, no household) joins the new
    # household, no second person with the same number is written; registering them again is refused.
    first, err = _register(_url(fresh_engine), caseworker, [hh.MemberData("测试1", number, "SELF")])
    assert err is None and first
    _, err = _register(_url(fresh_engine), caseworker, [hh.MemberData("测试1", number, "SELF")])
    assert err is not None and err.errors[0].code in (ErrorCode.TRANSFER_REQUIRED, ErrorCode.DUPLICATE_PERSON)
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM person")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM membership")).scalar_one() == 1


def test_migration_encrypts_existing_rows_and_downgrade_restores_them(fresh_engine):
    from alembic.script import ScriptDirectory

    from aidgraph.core.storage.migrate import alembic_config

    previous = ScriptDirectory.from_config(alembic_config()).get_revision("0012").down_revision
    assert isinstance(previous, str)
    triggers = _person_triggers(fresh_engine)
    assert triggers  # revision 0011's decision-staleness triggers
    downgrade(fresh_engine, previous)
    assert _person_triggers(fresh_engine) == triggers  # SQLite's table copy keeps the person table's triggers
    assert "id_number_index" not in {c["name"] for c in inspect(fresh_engine).get_columns("person")}
    clear = [(make("440106", dt.date(1960, 1, 1) + dt.timedelta(days=i), i), f"1380000{i:04d}" if i % 3 else None)
             for i in range(1, 13)]
    with fresh_engine.begin() as conn:
        for i, (number, phone) in enumerate(clear, 1):
            conn.execute(text("INSERT INTO person (id, id_number, name, sex, birth_date, hukou_region_code, "
                              "region_code, phone, version, created_at, updated_at) VALUES (:i, :n, :name, 'MALE', "
                              ":b, '440106', :r, :p, 1, :t, :t)"),
                         {"i": i, "n": number, "name": f"旧{i}", "b": dt.date(1960, 1, 1), "r": VILLAGE, "p": phone,
                          "t": dt.datetime(2024, 1, 1)})
        conn.execute(text("INSERT INTO lead (region_code, township_code, id_number, channel, description, status, "
                          "created_by, created_at, version) VALUES (:r, :t, :n, 'VISIT', '旧线索', 'OPEN', 'x', :at, 1)"),
                     {"r": VILLAGE, "t": TOWNSHIP, "n": clear[0][0], "at": dt.datetime(2024, 1, 1)})
    upgrade(fresh_engine)
    raw = _raw_text(fresh_engine)
    assert not [n for n, _ in clear if n in raw] and not [p for _, p in clear if p and p in raw]
    with session_scope(fresh_engine) as session:
        read = {(p.id_number, p.phone, p.id_number_index) for p in session.scalars(select(Person))}
        assert session.scalars(select(Lead.id_number)).one() == clear[0][0]
    assert read == {(n, p, id_number_index(n)) for n, p in clear}
    upgrade(fresh_engine)  # at head: nothing to do, nothing encrypted twice
    downgrade(fresh_engine, previous)
    with fresh_engine.connect() as conn:
        rows = set(conn.execute(text("SELECT id_number, phone FROM person")).all())
        lead = conn.execute(text("SELECT id_number FROM lead")).scalar_one()
    assert rows == set(clear) and lead == clear[0][0]
    upgrade(fresh_engine)
    with session_scope(fresh_engine) as session:
        assert {(p.id_number, p.phone) for p in session.scalars(select(Person))} == set(clear)
    assert _person_triggers(fresh_engine) == triggers


def test_rotation_reencrypts_in_batches_resumes_and_keeps_every_value_readable(fresh_engine, tmp_path, monkeypatch):
    keys = tmp_path / "data.key"
    shutil.copy(keyring_file(), keys)
    monkeypatch.setenv("AIDGRAPH_DATA_KEY_FILE", str(keys))
    forget_keyring()
    with session_scope(fresh_engine) as session:
        session.add_all([_person(i, f"1370000{i:04d}" if i % 2 else None) for i in range(1, 26)])
        session.add(Lead(region_code=VILLAGE, township_code=TOWNSHIP, id_number=_person(3).id_number,
                         channel="VISIT", description="x", status="OPEN", created_by="x"))
        station = VolunteerStation(region_code=TOWNSHIP, township_code=TOWNSHIP, name="站", created_by="x")
        session.add(station)
        session.flush()
        session.add(Volunteer(station_id=station.id, region_code=TOWNSHIP, name="志愿者", phone="13912345678",
                              tasks=["CARE"], registered_by="x"))
    with session_scope(fresh_engine) as session:
        before = {p.id: (p.id_number, p.phone, p.id_number_index) for p in session.scalars(select(Person))}
    first = keyring().current
    new = add_key(keys)
    forget_keyring()
    assert keyring().current == new != first
    assert stale_values(fresh_engine) == {"person": 25, "lead": 1, "volunteer": 1}
    # An interrupted rotation: one batch of 10 done, the rest under the old key, everything readable.
    assert reencrypt(fresh_engine, batch_size=10, max_batches=1) == 10
    assert stale_values(fresh_engine) == {"person": 15, "lead": 1, "volunteer": 1}
    with session_scope(fresh_engine) as session:
        assert {p.id: (p.id_number, p.phone, p.id_number_index) for p in session.scalars(select(Person))} == before
    runner = CliRunner()
    env = {"AIDGRAPH_DATABASE_URL": _url(fresh_engine), "AIDGRAPH_DATA_KEY_FILE": str(keys)}
    result = runner.invoke(app, ["keys", "rotate", "--resume", "--batch-size", "7"], env=env)
    assert result.exit_code == 0, result.output
    assert "17 row(s) re-encrypted" in result.output and "0 left" in result.output
    assert stale_values(fresh_engine) == {"person": 0, "lead": 0, "volunteer": 0}
    assert values_by_key(fresh_engine) == {"person.id_number": {new: 25}, "person.phone": {new: 13},
                                           "lead.id_number": {new: 1}, "volunteer.phone": {new: 1}}
    result = runner.invoke(app, ["keys", "rotate"], env=env)  # a second rotation adds a third key
    assert result.exit_code == 0, result.output
    forget_keyring()
    third = keyring().current
    assert third not in (first, new) and f"new data key {third}" in " ".join(result.output.split())
    status = runner.invoke(app, ["keys", "status"], env=env)
    assert status.exit_code == 0 and f"{third}: 25" in status.output and "rows still to re-encrypt: 0" in status.output
    with session_scope(fresh_engine) as session:
        # the blind index keeps its key across rotations: lookups and uniqueness are unaffected
        assert {p.id: (p.id_number, p.phone, p.id_number_index) for p in session.scalars(select(Person))} == before
        assert session.scalars(select(Lead.id_number)).one() == _person(3).id_number
        assert session.scalars(select(Volunteer.phone)).one() == "13912345678"
    single = runner.invoke(app, ["keys", "rotate"], env={**env, "AIDGRAPH_DATA_KEY": "00" * 32})
    assert single.exit_code == 2 and "aidgraph keys generate" in " ".join(single.output.split())


def test_keys_held_in_the_environment_rotate_as_a_key_list(fresh_engine, monkeypatch):
    """A deployment whose one key is AIDGRAPH_DATA_KEY: `keys generate` prints the key list with a new key, the
    processes run with it, `keys rotate --resume` re-encrypts; the blind index keeps its key."""
    first_line = next(line for line in keyring_file().read_text().splitlines() if line.strip())
    key_id, _, single_key = first_line.partition(":")
    assert key_id == "k1"
    env = {"AIDGRAPH_DATABASE_URL": _url(fresh_engine), "AIDGRAPH_DATA_KEY_FILE": "", "AIDGRAPH_DATA_KEY": single_key}
    monkeypatch.delenv("AIDGRAPH_DATA_KEY_FILE")
    monkeypatch.setenv("AIDGRAPH_DATA_KEY", single_key)
    forget_keyring()
    with session_scope(fresh_engine) as session:
        session.add_all([_person(i, f"1390000{i:04d}") for i in range(1, 6)])
    with session_scope(fresh_engine) as session:
        before = {p.id: (p.id_number, p.phone, p.id_number_index) for p in session.scalars(select(Person))}
    runner = CliRunner()
    refused = runner.invoke(app, ["keys", "rotate"], env=env)
    assert refused.exit_code == 2 and "aidgraph keys generate" in " ".join(refused.output.split())
    generated = runner.invoke(app, ["keys", "generate"], env=env)
    assert generated.exit_code == 0, generated.output
    key_list = next(line for line in generated.output.splitlines() if line.startswith("k1:"))
    assert key_list.split()[0] == first_line.strip() and key_list.split()[1].startswith("k2:")
    monkeypatch.setenv("AIDGRAPH_DATA_KEY", key_list)
    forget_keyring()
    assert (keyring().current, keyring().index_key_id) == ("k2", "k1")
    assert stale_values(fresh_engine) == {"person": 5, "lead": 0, "volunteer": 0}
    rotated = runner.invoke(app, ["keys", "rotate", "--resume"], env={**env, "AIDGRAPH_DATA_KEY": key_list})
    assert rotated.exit_code == 0 and "0 left" in rotated.output, rotated.output
    assert values_by_key(fresh_engine) == {"person.id_number": {"k2": 5}, "person.phone": {"k2": 5},
                                           "lead.id_number": {}, "volunteer.phone": {}}
    with session_scope(fresh_engine) as session:
        assert {p.id: (p.id_number, p.phone, p.id_number_index) for p in session.scalars(select(Person))} == before
    monkeypatch.setenv("AIDGRAPH_DATA_KEY", "k1:" + single_key + ", k2:not-a-key")
    forget_keyring()
    with pytest.raises(DataKeyError, match="AIDGRAPH_DATA_KEY, entry 2"):
        keyring()


def test_a_process_reads_values_under_a_key_added_after_it_loaded_its_keys(fresh_engine, tmp_path, monkeypatch):
    """A server keeps reading while `keys rotate` runs beside it: values under the key file's new key (unknown
    to the keys this process loaded) make it read the key file again, once, instead of failing."""
    keys = tmp_path / "data.key"
    shutil.copy(keyring_file(), keys)
    monkeypatch.setenv("AIDGRAPH_DATA_KEY_FILE", str(keys))
    forget_keyring()
    loaded = keyring()
    new = add_key(keys)  # what another process's rotation does; this process's keys stay cached
    other = load_keyring({"AIDGRAPH_DATA_KEY_FILE": str(keys)})
    person = _person(42, "13900000042")
    with session_scope(fresh_engine) as session:
        session.add(person)
    with fresh_engine.begin() as connection:  # the other process re-encrypts the row under its new key
        connection.execute(text("UPDATE person SET id_number = :i, phone = :p WHERE id = :id"), {
            "i": other.encrypt(person.id_number, ID_NUMBER), "p": other.encrypt("13900000042", PHONE), "id": person.id})
    assert keyring() is loaded and new not in loaded.keys
    with session_scope(fresh_engine) as session:
        again = session.get(Person, person.id)
        assert again is not None and (again.id_number, again.phone) == (_person(42).id_number, "13900000042")
    assert new in keyring().keys


def keyring_file() -> Path:
    import os

    return Path(os.environ["AIDGRAPH_DATA_KEY_FILE"])


def test_production_refuses_to_start_without_a_data_key(fresh_engine, tmp_path, monkeypatch):
    monkeypatch.delenv("AIDGRAPH_DATA_KEY_FILE")
    monkeypatch.delenv("AIDGRAPH_DATA_KEY", raising=False)
    production = Settings(database_url=_url(fresh_engine), env="production", secret_key="s" * 48, state_dir=tmp_path)
    with pytest.raises(DataKeyError, match="AIDGRAPH_DATA_KEY"):
        check_configuration(production)  # what create_app runs before serving
    monkeypatch.setenv("AIDGRAPH_DATA_KEY", "ab" * 8)
    with pytest.raises(DataKeyError, match="at least 32"):
        check_configuration(production)
    monkeypatch.delenv("AIDGRAPH_DATA_KEY")
    env = {"AIDGRAPH_DATABASE_URL": _url(fresh_engine), "AIDGRAPH_ENV": "production", "AIDGRAPH_SECRET_KEY": "s" * 48,
           "AIDGRAPH_STATE_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["audit"], env=env)
    assert result.exit_code == 2 and "AIDGRAPH_DATA_KEY" in result.output
    assert not (tmp_path / "data.key").exists()  # production never generates a key
    forget_keyring()


def test_development_keeps_a_generated_key_per_state_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("AIDGRAPH_DATA_KEY_FILE")
    monkeypatch.delenv("AIDGRAPH_DATA_KEY", raising=False)
    monkeypatch.setenv("AIDGRAPH_STATE_DIR", str(tmp_path / "a"))
    a = keyring()
    assert (tmp_path / "a" / "data.key").stat().st_mode & 0o777 == 0o600
    assert keyring() is a  # loaded once per process while the settings stay the same
    monkeypatch.setenv("AIDGRAPH_STATE_DIR", str(tmp_path / "b"))
    b = keyring()
    assert a.blind_index("440106197001010011", ID_NUMBER) != b.blind_index("440106197001010011", ID_NUMBER)
    with pytest.raises(Exception):
        b.decrypt(a.encrypt("13800000000", PHONE), PHONE)
    monkeypatch.undo()
    forget_keyring()
