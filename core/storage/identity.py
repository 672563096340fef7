"""The database's identity, for everything a process leaves outside the database (see ``Installation``).

Two installations on one machine may share a state directory, a search engine or a cluster; what ties an
external artefact to its database is this id, read here, never the database URL (the same URL names different
databases on different hosts, and one database moves between URLs).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select

from aidgraph.core.storage.models import Installation


class UnidentifiedDatabase(RuntimeError):
    """The database has no identity row: it is not migrated to revision 0022 yet."""


def database_identity(bind: Engine | Connection) -> str:
    """This database's id (raises :class:`UnidentifiedDatabase` when the schema predates it)."""
    statement = select(Installation.database_id).order_by(Installation.created_at).limit(1)
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            found = connection.execute(statement).scalar_one_or_none()
    else:
        found = bind.execute(statement).scalar_one_or_none()
    if found is None:
        raise UnidentifiedDatabase("the database has no identity (installation row): run `aidgraph init-db` to "
                                   "migrate it")
    return str(found)
