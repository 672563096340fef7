"""Schema migrations through Alembic, for ``aidgraph init-db`` and the test fixtures.

On SQLite, Alembic changes a table by copying it into a new one and dropping the old (batch mode). With foreign
keys enforced (every aidgraph connection turns them on), dropping ``person`` would first delete every row that
references it ``ON DELETE CASCADE`` (memberships, feed records, ...). Migrations therefore run on a connection
with enforcement off, and the foreign keys are checked once at the end: a violation rolls the whole migration
back, naming the table. On SQLite the transaction is opened explicitly, so that its DDL is rolled back too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


class MigrationError(RuntimeError):
    """A migration would leave rows whose foreign keys point nowhere; nothing was changed."""


def _migrate(engine: Engine, step: Callable[[Config], None]) -> None:
    cfg = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # outside a transaction: SQLite ignores this pragma inside one
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if sqlite:
                    # pysqlite opens a transaction only before INSERT/UPDATE/DELETE: a migration's DDL would run
                    # outside it and stay done when a later step fails (a downgrade refusing, a broken foreign
                    # key). Opened here, SQLite rolls the DDL back with everything else.
                    connection.exec_driver_sql("BEGIN")
                cfg.attributes["connection"] = connection
                step(cfg)
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({f"{row[0]} -> {row[2]}" for row in broken})
        raise MigrationError(f"{len(broken)} row(s) would reference missing rows ({', '.join(tables)}); "
                             "the migration was rolled back")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (idempotent: an up-to-date database is left as it is)."""
    _migrate(engine, lambda cfg: command.upgrade(cfg, revision))


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to ``revision``, keeping the rows the older schema can hold."""
    _migrate(engine, lambda cfg: command.downgrade(cfg, revision))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision this installation ships (what ``upgrade(engine)`` brings a database to)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError(f"{MIGRATIONS_DIR} holds no revision: the installation is incomplete")
    return head
