"""The audit log and change feed: every write appends events that other systems read in order."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Executable, Result, bindparam, event, insert, update
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import Session, col, select

from app.models import ApiKey, ChangeEvent, FeedCounter, Plan, Task, Unit
from app.models.base import moves_data_version, moves_structure_version, pending_tables, utcnow
from app.models.progress import DATA_CHANGED, STRUCTURE_CHANGED
from app.schemas.progress import AuditOut, ChangeOut
from app.schemas.unit import UnitRef
from app.services.keys import Principal

PENDING = "feed_events_pending"


def _note(info: dict[Any, Any], tables: Iterable[Any]) -> None:
    """Flags what this transaction changed: kept through a rolled-back savepoint (a spare bump costs
    one cache miss), cleared at the outer commit."""
    for table in tables:
        if moves_data_version(table):
            info[DATA_CHANGED] = True
            if moves_structure_version(table):
                info[STRUCTURE_CHANGED] = True
                return


@event.listens_for(Session, "after_flush")
def _note_flushed_rows(session: Session, _context: Any) -> None:
    _note(session.info, pending_tables(session))  # still the pre-flush state here


def run_core(session: Session, statement: Executable, params: Any = None) -> Result[*tuple[Any, ...]]:
    """A Core statement on the session's connection, past the ORM's execution layer, which on the
    report path cost as much CPU as SQLite's answer. Autoflushes and notes a write for the versions
    exactly as `session.execute` (and `_note_statement_writes`) would."""
    if session.autoflush:
        session.flush()
    if isinstance(statement, UpdateBase):
        _note(session.info, [statement.table])
    return session.connection().execute(statement, params)


@event.listens_for(Session, "do_orm_execute")
def _note_statement_writes(state: ORMExecuteState) -> None:
    # Set-based writes (`insert(...).values([...])`, `update(...)`) never pass through a flush.
    if state.is_insert or state.is_update or state.is_delete:
        _note(state.session.info, [getattr(state.statement, "table", None)])


@event.listens_for(Session, "before_commit")
def _number_pending_events(session: Session) -> None:
    """Give this transaction's events their feed numbers and insert them, and bump the data version if
    it changed anything, as the very last step before commit.

    This is the one place the data version moves: no write has to remember it, so the read cache
    (`app/api/read_cache.py`) cannot serve a rendering a write has made stale (a revoked key, a unit
    renamed behind no event). The counter row stays locked only from here to the commit, and every
    writer takes it last, so it can take part in no deadlock, and numbers are handed out in commit
    order. Events recorded in a savepoint that was rolled back were dropped with it (`_drop_undone_events`)."""
    if session.in_nested_transaction():
        return  # a SAVEPOINT released (one write of a group commit): numbered once, at the real commit
    session.flush()  # every row the events name is written before them
    pending = [row for _, row in session.info.pop(PENDING, [])]
    changed = session.info.pop(DATA_CHANGED, False) or bool(pending)
    if not changed:
        return
    structure = 1 if session.info.pop(STRUCTURE_CHANGED, False) else 0
    connection = session.connection()
    last: int = connection.execute(_BUMP, {"events": len(pending), "structure": structure}).scalar_one()
    for number, row in enumerate(pending, start=last - len(pending) + 1):
        row["seq"] = number
    if pending:
        connection.execute(_ADD_EVENTS, pending)  # one executemany of one cached statement


@event.listens_for(Session, "after_soft_rollback")
def _drop_undone_events(session: Session, previous: SessionTransaction) -> None:
    """Events recorded in a savepoint that was rolled back go with its writes."""
    kept = [(where, row) for where, row in session.info.get(PENDING, []) if not _within(where, previous)]
    session.info[PENDING] = kept


@event.listens_for(Session, "after_transaction_end")
def _drop_unsent_events(session: Session, transaction: SessionTransaction) -> None:
    # The session's transaction ended without its commit (a rollback, a close): its events with it.
    if transaction.parent is None:
        session.info.pop(PENDING, None)


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _forget_committed_changes(session: Session) -> None:
    # Also called when a SAVEPOINT is released (then still the current transaction): the enclosing
    # transaction goes on, and so do its flags.
    if not session.in_nested_transaction():
        session.info.pop(DATA_CHANGED, None)
        session.info.pop(STRUCTURE_CHANGED, None)


_COUNTER = FeedCounter.__table__  # type: ignore[attr-defined]
# Core, built once: the ORM-enabled UPDATE cost more to build than SQLite takes to run it.
_BUMP = (
    update(_COUNTER)
    .where(_COUNTER.c.id == 1)
    .values(
        seq=_COUNTER.c.seq + bindparam("events"),
        version=_COUNTER.c.version + 1,
        structure_version=_COUNTER.c.structure_version + bindparam("structure"),
    )
    .returning(_COUNTER.c.seq)
)
_EVENTS = ChangeEvent.__table__  # type: ignore[attr-defined]
_ADD_EVENTS = insert(_EVENTS)


def record_event(
    *,
    session: Session,
    type: str,
    principal: Principal | None,
    remote_addr: str | None,
    data: dict[str, Any],
    plan_id: int | None = None,
    task_id: int | None = None,
    unit_id: int | None = None,
    report_id: int | None = None,
    actor: str | None = None,
    jurisdiction_id: int | None = None,
) -> None:
    """`jurisdiction_id` defaults to the plan's, else the unit's, else the acting key's (objects the
    session holds already, so this costs no query on the write path)."""
    if jurisdiction_id is None:
        jurisdiction_id = _jurisdiction_of(session, plan_id, unit_id, principal)
    row = {
        "type": type,
        "occurred_at": utcnow(),
        "plan_id": plan_id,
        "task_id": task_id,
        "unit_id": unit_id,
        "report_id": report_id,
        "api_key_id": principal.key.id if principal is not None else None,
        "jurisdiction_id": jurisdiction_id,
        "actor": actor or (principal.name if principal is not None else "system"),
        "remote_addr": remote_addr,
        "data": json.dumps(data, ensure_ascii=False, default=str),
    }
    # Kept as a plain row until the commit numbers and inserts it (an entity per event cost more than
    # the report it describes); remembered with the (sub)transaction it belongs to, for a rollback.
    where = session.get_nested_transaction() or session.get_transaction() or session.begin()
    session.info.setdefault(PENDING, []).append((where, row))


def _jurisdiction_of(
    session: Session, plan_id: int | None, unit_id: int | None, principal: Principal | None
) -> int | None:
    if plan_id is not None and (plan := session.get(Plan, plan_id)) is not None:
        return plan.jurisdiction_id
    if unit_id is not None and (unit := session.get(Unit, unit_id)) is not None:
        return unit.jurisdiction_id
    return principal.jurisdiction_id if principal is not None else None


def list_events(
    *, session: Session, since: int, limit: int, plan_id: int | None = None, within: set[int] | None = None
) -> list[ChangeEvent]:
    """`within`: events of these jurisdictions only (None: every event)."""
    query = select(ChangeEvent).where(col(ChangeEvent.seq) > since)  # numbered = committed
    if plan_id is not None:
        query = query.where(ChangeEvent.plan_id == plan_id)
    if within is not None:
        query = query.where(col(ChangeEvent.jurisdiction_id).in_(within))
    return list(session.exec(query.order_by(col(ChangeEvent.seq)).limit(limit)))


# What the public feed (readable without a key) leaves out: which key acted, and admin keys' names.
# A prefix names a key to attack; an admin key's name says who holds the county's master key.
PUBLIC_ADMIN_ACTOR = "管理员 / admin"  # also what reports and excusals show for an admin key, publicly
_KEY_DATA = ("prefix", "key_prefix")


def _public_view(fields: dict[str, Any], type: str, admin_actor: bool) -> dict[str, Any]:
    data = {k: v for k, v in fields["data"].items() if k not in _KEY_DATA}
    if type.startswith("key.") and data.get("is_admin"):
        data.pop("name", None)
    return {**fields, "data": data, "actor": PUBLIC_ADMIN_ACTOR if admin_actor else fields["actor"]}


def present_events(
    *, session: Session, events: list[ChangeEvent], audit: bool = False, public: bool = False
) -> list[ChangeOut]:
    """`public`: as anyone may read them, without key prefixes and admin key names (see `_public_view`)."""
    plan_ids = {e.plan_id for e in events if e.plan_id is not None}
    task_ids = {e.task_id for e in events if e.task_id is not None}
    unit_ids = {e.unit_id for e in events if e.unit_id is not None}
    key_ids = {e.api_key_id for e in events if e.api_key_id is not None}
    slugs = dict(session.exec(select(Plan.id, Plan.slug).where(col(Plan.id).in_(plan_ids))).all())
    codes = dict(session.exec(select(Task.id, Task.code).where(col(Task.id).in_(task_ids))).all())
    units = {u.id: u for u in session.exec(select(Unit).where(col(Unit.id).in_(unit_ids)))}
    prefixes = dict(session.exec(select(ApiKey.id, ApiKey.prefix).where(col(ApiKey.id).in_(key_ids))).all())
    admin_keys = set(session.exec(select(ApiKey.id).where(col(ApiKey.id).in_(key_ids), col(ApiKey.is_admin))).all())
    out: list[ChangeOut] = []
    for e in events:
        fields = {
            "seq": int(e.seq or 0),
            "type": e.type,
            "occurred_at": e.occurred_at,
            "plan": slugs.get(e.plan_id) if e.plan_id else None,
            "task": codes.get(e.task_id) if e.task_id else None,
            "unit": UnitRef.from_unit(units[e.unit_id]) if e.unit_id in units else None,
            "report_id": e.report_id,
            "actor": e.actor,
            "data": json.loads(e.data),
        }
        if audit:
            key_prefix = prefixes.get(e.api_key_id) if e.api_key_id else None
            out.append(AuditOut(**fields, key_prefix=key_prefix, remote_addr=e.remote_addr))
        elif public:
            out.append(ChangeOut(**_public_view(fields, e.type, e.api_key_id in admin_keys or e.actor == "cli")))
        else:
            out.append(ChangeOut(**fields))
    return out
