"""The append-only audit log, hash-chained so that tampering is detectable (PIPL Art. 51, 网络安全法 Art. 21).

Rows are written in the same session (so the same transaction) as what they record, by :func:`record` or by
the batch paths' set-at-a-time inserts. Each row is then *sealed*: it gets the next position in the chain
(``seq``), the hash of the row before it (``prev_hash``) and its own hash over its content and ``prev_hash``
(``row_hash``). Sealing happens just before the writing transaction commits (a ``before_commit`` listener on
every session that wrote an audit row), holding the chain's head row (``audit_chain``, ``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite has one writer at a time), so concurrent writers extend one chain in commit
order (``core.bulk.insert_frame`` flags its session when it writes audit rows). Rows written by raw-driver paths
that bypass the session altogether (the seed's copy writer) are sealed by the next sealing transaction or by
``aidgraph audit seal``.

:func:`verify` walks the chain and names every row that was changed, deleted or inserted. Triggers created by
migration 0010 refuse updates of sealed rows and deletions beyond what retention announced
(``audit_chain.prune_through``); the chain catches what a database owner does after dropping them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import polars as pl
from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from aidgraph.core.access.actor import Actor
from aidgraph.core.storage.bulk import AUDIT_PENDING, insert_frame, update_frame
from aidgraph.core.storage.models import AuditChain, AuditLog, utcnow

CHAIN = "audit"
GENESIS = "0" * 64
_PENDING = AUDIT_PENDING


def record(session: Session | AsyncSession, actor: Actor, action: str, object_type: str,
           object_id: object | None = None, region_code: str | None = None, detail: dict | None = None) -> None:
    session.add(AuditLog(actor=actor.username, action=action, object_type=object_type,
                         object_id=None if object_id is None else str(object_id), region_code=region_code,
                         remote_addr=actor.remote_addr, detail=detail))


# --- the chain ------------------------------------------------------------------------------------------


def row_hash(prev: str, seq: int, row) -> str:
    """sha256 of the previous row's hash and this row's canonical JSON (position, time, who, what, where)."""
    return _chained(prev, seq, row_body(row))


def row_body(row) -> str:
    """The row's canonical JSON without its position: ``[time, who, what, where ...]``, the part of what
    :func:`row_hash` hashes that does not depend on the chain (so it can be computed before the head is held)."""
    at = _time_text(row.at) if row.at is not None else None
    return _encode_value([at, row.actor, row.action, row.object_type, row.object_id, row.region_code,
                          row.remote_addr, _detail_value(row.detail)])


def _encode_value(value: Any) -> str:
    """The canonical JSON of a value: what a row's body is, and (:func:`frame_bodies`) each of its pieces."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _time_text(at: dt.datetime) -> str:
    return at.isoformat(timespec="microseconds")


def _detail_value(detail: Any) -> Any:
    """A detail as a value: the JSON column's text parsed, so that its keys are sorted when encoded."""
    return json.loads(detail) if isinstance(detail, str) else detail


def _chained(prev: str, seq: int, body: str) -> str:
    # json.dumps([seq, *values]) is "[" + the position + "," + json.dumps(values) without its "[".
    return hashlib.sha256(f"{prev}\n[{int(seq)},{body[1:]}".encode("utf-8")).hexdigest()


_COLUMNS = (AuditLog.id, AuditLog.at, AuditLog.actor, AuditLog.action, AuditLog.object_type, AuditLog.object_id,
            AuditLog.region_code, AuditLog.remote_addr, AuditLog.detail)


def _links(seq: int, prev: str, rows: Iterable[Any]) -> Iterator[tuple[int, str, str]]:
    """(position, previous hash, hash) of each row in turn, the chain continuing from position ``seq`` whose hash
    is ``prev``: what sealing, and writing rows sealed, both compute."""
    return _chain(seq, prev, (row_body(row) for row in rows))


def _chain(seq: int, prev: str, bodies: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """:func:`_links` of rows whose :func:`row_body` is known."""
    for body in bodies:
        seq += 1
        digest = _chained(prev, seq, body)
        yield seq, prev, digest
        prev = digest


def _head(session: Session) -> AuditChain:
    stmt = select(AuditChain).where(AuditChain.name == CHAIN).with_for_update()
    head = session.execute(stmt).scalar_one_or_none()
    if head is None:  # a database migrated before 0010 filled the chain row cannot reach here; kept for safety
        head = AuditChain(name=CHAIN, seq=0, head_hash=GENESIS, base_seq=1, base_prev_hash=GENESIS, prune_through=0)
        session.add(head)
        session.flush()
    return head


def seal(session: Session, batch: int = 50_000) -> int:
    """Chain every audit row not yet sealed that this transaction can see, in id order; return how many.

    Holds the chain's head row until the caller's transaction ends (commit or rollback).
    """
    session.flush()
    if session.execute(select(AuditLog.id).where(AuditLog.seq.is_(None)).limit(1)).first() is None:
        return 0
    head = _head(session)
    sealed = 0
    while True:
        rows = session.execute(select(*_COLUMNS).where(AuditLog.seq.is_(None))
                               .order_by(AuditLog.id).limit(batch)).all()
        if not rows:
            break
        ids = [row.id for row in rows]
        links = list(_links(head.seq, head.head_hash, rows))
        seqs, prevs, hashes = [s for s, _, _ in links], [p for _, p, _ in links], [h for _, _, h in links]
        seq, prev = seqs[-1], hashes[-1]
        if len(rows) > 200:
            update_frame(session, AuditLog.__tablename__,
                         pl.DataFrame({"id": ids, "seq": seqs, "prev_hash": prevs, "row_hash": hashes},
                                      schema={"id": pl.Int64, "seq": pl.Int64, "prev_hash": pl.Utf8,
                                              "row_hash": pl.Utf8}))
        else:
            table = AuditLog.metadata.tables[AuditLog.__tablename__]
            session.execute(update(table).where(table.c.id == bindparam("k"))
                            .values(seq=bindparam("s"), prev_hash=bindparam("p"), row_hash=bindparam("h")),
                            [{"k": i, "s": s, "p": p, "h": h} for i, s, p, h in zip(ids, seqs, prevs, hashes)])
        head.seq, head.head_hash = seq, prev
        sealed += len(rows)
        session.flush()
        if len(rows) < batch:
            break
    return sealed


def _hold_head(session: Session) -> tuple[int, str]:
    """Hold the chain's head until the transaction ends and return its position and hash, having sealed first
    any rows this transaction can see unsealed (they keep the earlier positions). The head is held before it is
    read (an UPDATE ... RETURNING takes SQLite's write lock and PostgreSQL's row lock, so no other sealer moves
    it in between)."""
    chain = AuditChain.__table__
    hold = update(chain).where(chain.c.name == CHAIN).values(seq=chain.c.seq).returning(chain.c.seq,
                                                                                          chain.c.head_hash)
    current = session.execute(hold).first()
    if current is None or session.execute(select(AuditLog.id).where(AuditLog.seq.is_(None)).limit(1)).first():
        seal(session)  # (a missing head row is created there)
        _head(session)
        current = session.execute(select(chain.c.seq, chain.c.head_hash).where(chain.c.name == CHAIN)).one()
    return int(current[0]), str(current[1])


SEALED_FRAME_COLUMNS = ("at", "actor", "action", "object_type", "object_id", "region_code", "remote_addr", "detail")
"""The columns :func:`append_sealed_frame` takes (``detail``: JSON text)."""


def frame_bodies(frame: pl.DataFrame) -> list[str]:
    """:func:`row_body` of each row of a frame of :data:`SEALED_FRAME_COLUMNS`: what :func:`append_sealed_frame`
    hashes, computed before the chain's head is held.

    Column by column: the body is the JSON array of the row's values, so it is ``[``, each value's canonical
    JSON joined by ``,``, then ``]``. Each distinct value of a column is encoded once, by the functions
    :func:`row_body` encodes with (``_encode_value``, ``_time_text``, ``_detail_value``), and polars puts the
    pieces together; text that JSON leaves as it is, polars quotes itself. A batch's
    rows share most values (its time, actor, action and kind of object; a monitoring run's 283,290 alerts have
    26,654 distinct region codes): a Python call per row, as :func:`row_body` makes, took 3.5 s of the run,
    and held Python's lock against the staged writes beside it (bench/README.md)."""
    if frame.is_empty():
        return []
    pieces: list[pl.Expr] = []
    for name in SEALED_FRAME_COLUMNS:
        column = frame.get_column(name)
        values = column.drop_nulls().unique()
        if name == "detail" or column.dtype != pl.Utf8:
            encode = _encode_time if name == "at" else _encode_detail if name == "detail" else _encode_value
            encoded = pl.Series([encode(v) for v in values.to_list()], dtype=pl.Utf8)
            pieces.append(pl.col(name).replace_strict(values, encoded, return_dtype=pl.Utf8).fill_null("null"))
            continue
        # A text's JSON is the text between quotes unless it holds a quote, a backslash or a control character
        # (all that json.dumps escapes with ensure_ascii off): only those texts go through json.dumps.
        escaped = values.filter(values.str.contains(_JSON_ESCAPED))
        pieces.append(pl.when(pl.col(name).str.contains(_JSON_ESCAPED))
                      .then(pl.col(name).replace_strict(escaped, [_encode_value(v) for v in escaped.to_list()],
                                                        default=None, return_dtype=pl.Utf8))
                      .otherwise(pl.concat_str([pl.lit('"'), pl.col(name), pl.lit('"')]))
                      .fill_null("null"))
    body = pl.concat_str([pl.lit("["), pl.concat_str(pieces, separator=","), pl.lit("]")])
    return frame.select(body.alias("body")).get_column("body").to_list()


_JSON_ESCAPED = r'[\x00-\x1f"\\]'
"""What ``json.dumps`` escapes in text when ``ensure_ascii`` is off: control characters, the quote, the backslash."""


def _encode_time(at: dt.datetime) -> str:
    return _encode_value(_time_text(at))


def _encode_detail(detail: Any) -> str:
    return _encode_value(_detail_value(detail))


def append_sealed_frame(session: Session, frame: pl.DataFrame, bodies: list[str] | None = None) -> int:
    """Insert many audit rows sealed, in the caller's transaction: ``frame`` holds :data:`SEALED_FRAME_COLUMNS`
    (``at`` a microsecond time, ``detail`` JSON text as the JSON column stores it); their ``seq``, ``prev_hash``
    and ``row_hash`` are those :func:`seal` would give them at commit, and they go in one bulk write.
    ``bodies``: the rows' :func:`frame_bodies`, when the caller computed them beforehand.

    For writers of very many rows in one transaction: a monitoring run's 283,000 alert rows, left to
    :func:`seal`, were read back and updated one by one at commit. Holds the chain's head from here to the end
    of the transaction (:func:`_hold_head`), so call it last."""
    if frame.is_empty():
        return 0
    if bodies is None:
        bodies = frame_bodies(frame)
    if len(bodies) != frame.height:
        raise ValueError(f"{len(bodies)} bodies for {frame.height} audit rows")
    seq, prev = _hold_head(session)
    links = list(_chain(seq, prev, bodies))
    seqs, prevs, hashes = [s for s, _, _ in links], [p for _, p, _ in links], [h for _, _, h in links]
    seq, prev = seqs[-1], hashes[-1]
    insert_frame(session, AuditLog.__tablename__, frame.select(SEALED_FRAME_COLUMNS).with_columns(
        pl.Series("seq", seqs, dtype=pl.Int64), pl.Series("prev_hash", prevs, dtype=pl.Utf8),
        pl.Series("row_hash", hashes, dtype=pl.Utf8)))
    chain = AuditChain.__table__
    session.execute(update(chain).where(chain.c.name == CHAIN).values(seq=seq, head_hash=prev))
    return frame.height


def append_sealed(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert audit rows already sealed, in one statement, for writers whose transaction writes only audit rows
    (the disclosure writer, aidgraph.core.graph.privacy): the same ``seq``, ``prev_hash`` and ``row_hash`` as
    :func:`seal` would give them at commit, without reading them back and updating each one.

    The chain's head is held before it is read (an UPDATE ... RETURNING takes SQLite's write lock and
    PostgreSQL's row lock, so no other sealer moves it in between); rows others left unsealed are sealed
    first, so they keep the earlier positions."""
    if not rows:
        return 0
    chain = AuditChain.__table__
    seq, prev = _hold_head(session)
    at = utcnow()
    postgres = session.connection().dialect.name == "postgresql"
    stored_at = at if postgres else at.strftime(_SQLITE_TIME)
    full = [SimpleNamespace(**{"at": at, "actor": None, "action": None, "object_type": None, "object_id": None,
                               "region_code": None, "remote_addr": None, "detail": None, **row}) for row in rows]
    values = []
    for r, (seq, before, h) in zip(full, _links(seq, prev, full)):
        values.append((stored_at, r.actor, r.action, r.object_type, r.object_id, r.region_code, r.remote_addr,
                       None if r.detail is None else json.dumps(r.detail), seq, before, h))
        prev = h
    _insert_sealed(session, values, postgres)
    session.execute(update(chain).where(chain.c.name == CHAIN).values(seq=seq, head_hash=prev))
    session.info.pop(_PENDING, None)  # nothing left to seal at commit
    return len(values)


_SEALED_COLUMNS = ("at", "actor", "action", "object_type", "object_id", "region_code", "remote_addr", "detail",
                   "seq", "prev_hash", "row_hash")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
"""How SQLAlchemy's SQLite ``DateTime`` stores a time (with the microseconds always written)."""


def _insert_sealed(session: Session, rows: list[tuple[Any, ...]], postgres: bool) -> None:
    """Insert sealed rows (values of :data:`_SEALED_COLUMNS`, in order) in one statement.

    A disclosure batch is 50 rows a list page; through the ORM's insert each row's eleven parameters pass the
    statement's bind processing one by one, which cost more than the database's work. The rows therefore come
    already in the form the column types would send (:func:`append_sealed` builds them so): the detail as JSON
    text (the same ``json.dumps`` as the JSON type's, read back the same, so the row hash checks), the time in
    SQLite's stored form there. On PostgreSQL they go as one ``INSERT ... SELECT`` from the elements of one JSON
    array, a row of values each (one statement of one text whatever the batch's size, so its prepared form is
    reused; ``->>`` gives back each string exactly, the detail's JSON text included): fifty single-row
    statements, even pipelined by ``executemany``, cost the server 0.5 ms a list page (its statement log,
    20,000-household benchmark), and an array parameter per column cost the server's process 6% of its CPU in
    psycopg's element-by-element array dumping, where ``json.dumps`` is one C call. SQLite, in process, takes
    them through ``executemany``."""
    if postgres:
        values = ", ".join(f"(r->>{i}){_SEALED_CASTS.get(c, '')}" for i, c in enumerate(_SEALED_COLUMNS))
        batch = json.dumps([[v.isoformat() if isinstance(v, dt.datetime) else v for v in row] for row in rows])
        session.connection().exec_driver_sql(
            f"INSERT INTO {AuditLog.__tablename__} ({', '.join(_SEALED_COLUMNS)}) SELECT {values} FROM "
            "json_array_elements(%s::json) WITH ORDINALITY AS batch(r, position) ORDER BY position", (batch,))
        return
    marks = ", ".join("?" for _ in _SEALED_COLUMNS)
    session.connection().exec_driver_sql(
        f"INSERT INTO {AuditLog.__tablename__} ({', '.join(_SEALED_COLUMNS)}) VALUES ({marks})", rows)


_SEALED_CASTS = {"at": "::timestamp", "detail": "::json", "seq": "::bigint"}
"""The cast of each of :data:`_SEALED_COLUMNS` from the text ``->>`` gives (the others are text columns)."""


@event.listens_for(Session, "before_flush")
def _note_new_audit_rows(session: Session, _context, _instances) -> None:
    if any(isinstance(o, AuditLog) for o in session.new):
        session.info[_PENDING] = True


@event.listens_for(Session, "do_orm_execute")
def _note_audit_inserts(state) -> None:
    if state.is_insert and getattr(getattr(state.statement, "table", None), "name", None) == AuditLog.__tablename__:
        state.session.info[_PENDING] = True


@event.listens_for(Session, "before_commit")
def _seal_before_commit(session: Session) -> None:
    if session.info.get(_PENDING) or any(isinstance(o, AuditLog) for o in session.new):
        seal(session)
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def mark_pending(session: Session) -> None:
    """For writers that insert audit rows through the driver (``core.bulk``): seal them at commit."""
    session.info[_PENDING] = True


# --- verification ---------------------------------------------------------------------------------------


@dataclass
class Finding:
    kind: str  # changed | deleted | inserted | relinked | truncated | unsealed
    seq: int | None
    row_id: int | None
    message: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "seq": self.seq, "id": self.row_id, "message": self.message}


@dataclass
class Verification:
    checked: int = 0
    unsealed: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not [f for f in self.findings if f.kind != "unsealed"]


def _chain_rows(session: Session, batch: int) -> Iterator:
    last = None
    cols = (*_COLUMNS, AuditLog.seq, AuditLog.prev_hash, AuditLog.row_hash)
    while True:
        stmt = select(*cols).where(AuditLog.seq.is_not(None))
        if last is not None:
            stmt = stmt.where(AuditLog.seq > last)
        rows = session.execute(stmt.order_by(AuditLog.seq).limit(batch)).all()
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1].seq


def verify(session: Session, batch: int = 50_000, progress=None) -> Verification:
    """Walk the sealed chain in order; name each row whose content, position or link does not hold.

    - changed: the row's stored hash is not the hash of its content and predecessor (its content was edited);
    - deleted: a position is missing (the rows on both sides are named);
    - inserted: a row whose link names a hash that is not its predecessor's, or a position held twice;
    - truncated: the chain ends before the head recorded in ``audit_chain``.
    """
    result = Verification()
    head = session.execute(select(AuditChain).where(AuditChain.name == CHAIN)).scalar_one_or_none()
    expected_seq = head.base_seq if head else 1
    prev = head.base_prev_hash if head else GENESIS
    prev_row = None
    for row in _chain_rows(session, batch):
        result.checked += 1
        if progress:
            progress(1)
        if head is not None and row.seq > head.seq:
            result.findings.append(Finding("inserted", row.seq, row.id,
                                           f"row {row.id} (seq {row.seq}) lies beyond the recorded chain head "
                                           f"(seq {head.seq})"))
            continue
        if row.seq < expected_seq:
            result.findings.append(Finding("inserted", row.seq, row.id,
                                           f"row {row.id} repeats chain position {row.seq}"))
            continue
        if row.seq > expected_seq:
            after = f"after row {prev_row.id} (seq {prev_row.seq})" if prev_row else "at the start of the chain"
            result.findings.append(Finding("deleted", expected_seq, None,
                                           f"chain positions {expected_seq}-{row.seq - 1} are missing {after}, "
                                           f"before row {row.id}"))
        computed = row_hash(row.prev_hash or "", row.seq, row)
        if computed != row.row_hash:
            result.findings.append(Finding("changed", row.seq, row.id,
                                           f"row {row.id} (seq {row.seq}) was changed: its content no longer "
                                           f"matches its hash"))
        elif row.prev_hash != prev and row.seq == expected_seq:
            result.findings.append(Finding("inserted", row.seq, row.id,
                                           f"row {row.id} (seq {row.seq}) does not link to the row before it "
                                           f"(inserted, or its predecessor was replaced)"))
        prev, expected_seq, prev_row = row.row_hash, row.seq + 1, row
    if head is not None:
        result.head_seq, result.head_hash = head.seq, head.head_hash
        if expected_seq - 1 < head.seq:
            result.findings.append(Finding("truncated", expected_seq, None,
                                           f"chain positions {expected_seq}-{head.seq} (the newest) are missing"))
        elif prev != head.head_hash and expected_seq - 1 == head.seq and result.checked:
            result.findings.append(Finding("changed", head.seq, prev_row.id if prev_row else None,
                                           "the newest row does not match the recorded chain head"))
    result.unsealed = session.execute(select(func.count()).select_from(AuditLog)
                                      .where(AuditLog.seq.is_(None))).scalar_one()
    if result.unsealed:
        result.findings.append(Finding("unsealed", None, None,
                                       f"{result.unsealed} rows are not sealed yet (`aidgraph audit seal`)"))
    return result


def announce_pruning(session: Session, through_seq: int) -> None:
    """Let the append-only triggers accept the deletion of rows up to ``through_seq`` (retention) and move the
    chain's start there: verification then begins at ``through_seq + 1`` with that row's recorded link."""
    head = _head(session)
    first = session.execute(select(AuditLog.seq, AuditLog.prev_hash).where(AuditLog.seq > through_seq)
                            .order_by(AuditLog.seq).limit(1)).first()
    head.prune_through = max(head.prune_through, through_seq)
    if first is not None:
        head.base_seq, head.base_prev_hash = first.seq, first.prev_hash
    else:
        head.base_seq, head.base_prev_hash = head.seq + 1, head.head_hash
    session.flush()

