"""The audit log and change feed: every write appends events that other systems read in order."""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import chain
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import ORMExecuteState
from sqlmodel import Session, col, select

from app.models import ApiKey, ChangeEvent, FeedCounter, Plan, Task, Unit
from app.models.progress import DATA_CHANGED
from app.schemas.progress import AuditOut, ChangeOut
from app.schemas.unit import UnitRef
from app.services.keys import Principal

PENDING = "feed_events_pending"


def _is_data(table: Any) -> bool:
    # A table opts out with `info={"data_version": False}` (app/models/webhook.py says why).
    return table is None or table.info.get("data_version", True)


def _changes_data(rows: Iterable[object]) -> bool:
    return any(_is_data(getattr(type(row), "__table__", None)) for row in rows)


@event.listens_for(Session, "after_flush")
def _note_flushed_rows(session: Session, _context: Any) -> None:
    if _changes_data(chain(session.new, session.dirty, session.deleted)):  # still the pre-flush state here
        session.info[DATA_CHANGED] = True  # kept through a rolled-back savepoint: a spare bump costs one cache miss


@event.listens_for(Session, "do_orm_execute")
def _note_statement_writes(state: ORMExecuteState) -> None:
    # Set-based writes (`insert(...).values([...])`, `update(...)`) never pass through a flush.
    writes = state.is_insert or state.is_update or state.is_delete
    if writes and _is_data(getattr(state.statement, "table", None)):
        state.session.info[DATA_CHANGED] = True


@event.listens_for(Session, "before_commit")
def _number_pending_events(session: Session) -> None:
    """Give this transaction's events their feed numbers, and bump the data version if it changed
    anything, as the very last step before commit.

    This is the one place the data version moves: no write has to remember it, so the read cache
    (`app/api/read_cache.py`) cannot serve a rendering a write has made stale (a revoked key, a unit
    renamed behind no event). The counter row stays locked only from here to the commit, and every
    writer takes it last, so it can take part in no deadlock, and numbers are handed out in commit
    order. Events whose savepoint was rolled back have left the session and get no number."""
    if session.in_nested_transaction():
        return  # a SAVEPOINT released (one write of a group commit): numbered once, at the real commit
    pending = [change for change in session.info.pop(PENDING, []) if change in session]
    changed = (
        session.info.pop(DATA_CHANGED, False)
        or bool(pending)
        or _changes_data(chain(session.new, session.dirty, session.deleted))
    )
    if not changed:
        return
    with session.no_autoflush:  # the commit's flush then inserts the events with their numbers
        last: int = session.execute(
            update(FeedCounter)
            .where(col(FeedCounter.id) == 1)
            .values(seq=col(FeedCounter.seq) + len(pending), version=col(FeedCounter.version) + 1)
            .returning(col(FeedCounter.seq))
        ).scalar_one()
    session.info.pop(DATA_CHANGED, None)  # set again by the UPDATE just made
    for number, change in enumerate(pending, start=last - len(pending) + 1):
        change.seq = number  # written by the commit's own flush


@event.listens_for(Session, "after_commit")
def _forget_committed_changes(session: Session) -> None:
    # The commit's own flush (the events, the counter) sets the flag again after the bump: those rows
    # are committed under the new version, so a session used on (a test's, a worker's) starts clean.
    # Also called when a SAVEPOINT is released (then still the current transaction): the enclosing
    # transaction goes on, and so does its flag.
    if not session.in_nested_transaction():
        session.info.pop(DATA_CHANGED, None)


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
) -> ChangeEvent:
    """`jurisdiction_id` defaults to the plan's, else the unit's, else the acting key's (objects the
    session holds already, so this costs no query on the write path)."""
    if jurisdiction_id is None:
        jurisdiction_id = _jurisdiction_of(session, plan_id, unit_id, principal)
    change = ChangeEvent(
        type=type,
        plan_id=plan_id,
        task_id=task_id,
        unit_id=unit_id,
        report_id=report_id,
        api_key_id=principal.key.id if principal is not None else None,
        jurisdiction_id=jurisdiction_id,
        actor=actor or (principal.name if principal is not None else "system"),
        remote_addr=remote_addr,
        data=json.dumps(data, ensure_ascii=False, default=str),
    )
    session.add(change)
    session.info.setdefault(PENDING, []).append(change)
    return change


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
