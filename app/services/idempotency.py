"""Idempotency-Key: a retried request with the same key and body gets the original answer.

Keys are remembered per API key. The record is claimed *before* the work, so a concurrent twin
request on PostgreSQL waits on the unique index and then replays instead of writing a duplicate
(SQLite's writers are serialized already).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from app.models import IdempotencyRecord, utcnow
from app.services.feed import run_core

_TABLE = IdempotencyRecord.__table__  # type: ignore[attr-defined]


@dataclass
class Claim:
    key: str
    record_id: int
    replay_response: str | None  # set: answer with this (a replay); None: do the work, then `complete` it
    reused: bool = False  # the key was used before with another request: refuse


def fingerprint(scope: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{scope}\n{canonical}".encode()).hexdigest()


def claim(*, session: Session, api_key_id: int, requests: dict[str, str]) -> dict[str, Claim]:
    """Claims each key (key → request hash) in one statement: a key seen before comes back with the
    answer first given to it. On PostgreSQL, a concurrent twin makes the INSERT wait for the twin's
    commit and then skip the key, so the twin's answer is replayed instead of written twice."""
    if not requests:
        return {}
    now = utcnow()
    rows = [
        {"api_key_id": api_key_id, "key": key, "request_hash": h, "status_code": 0, "response": "", "created_at": now}
        for key, h in requests.items()
    ]
    inserted = run_core(session, _CLAIM[session.get_bind().dialect.name], rows).all()
    claims = {key: Claim(key=key, record_id=record_id, replay_response=None) for key, record_id in inserted}
    earlier = [key for key in requests if key not in claims]
    if earlier:
        found = session.exec(
            select(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == api_key_id, col(IdempotencyRecord.key).in_(earlier)
            )
        )
        for record in found:
            assert record.id is not None
            claims[record.key] = Claim(
                key=record.key,
                record_id=record.id,
                replay_response=record.response,
                reused=record.request_hash != requests[record.key],
            )
    return claims


def release(*, session: Session, claims: list[Claim]) -> None:
    """Gives keys back when their requests were refused, so a corrected retry can use them."""
    if claims:
        session.exec(delete(IdempotencyRecord).where(col(IdempotencyRecord.id).in_([c.record_id for c in claims])))


def complete(*, session: Session, answers: list[tuple[Claim, int, str]]) -> None:
    """Remembers the answer (status, JSON body) given to each claimed key, in one statement."""
    if answers:
        run_core(session, _COMPLETE, [{"record_id": c.record_id, "status": s, "body": b} for c, s, b in answers])


# On the table, not the entity, built once: the ORM's bulk machinery, and building a statement, cost
# more than SQLite's answer. Several rows go out as one multi-row INSERT (SQLAlchemy's insertmanyvalues).
_CLAIM = {
    name: insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["api_key_id", "key"])
    .returning(_TABLE.c.key, _TABLE.c.id)
    for name, insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}
_COMPLETE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("record_id"))
    .values(status_code=bindparam("status"), response=bindparam("body"))
)
