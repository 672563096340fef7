"""Alembic environment: runs migrations on the connection handed over by :func:`aidgraph.core.storage.migrate.upgrade`."""

from alembic import context
from sqlalchemy import Connection

from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.models import Base
from aidgraph.core.storage.partitions import comparison_filter

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url")
        if url is None:
            raise RuntimeError("no connection handed over and no sqlalchemy.url configured")
        engine = make_sync_engine(url)
        with engine.begin() as connection:
            _run(connection)
        return
    _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # PostgreSQL's monthly partitions are not model tables; some indexes are one engine's only
        include_object=comparison_filter(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
