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

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from app.db import dialect_insert
from app.errors import ProblemError
from app.models import IdempotencyRecord, utcnow


class IdempotencyKeyReused(ProblemError):
    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency Key Reused"


@dataclass
class Claim:
    record_id: int
    replay_response: str | None  # set: answer with this (a replay); None: do the work, then `complete`


def fingerprint(scope: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{scope}\n{canonical}".encode()).hexdigest()


def claim(*, session: Session, api_key_id: int, key: str, request_hash: str) -> Claim:
    # One statement: on PostgreSQL a concurrent twin makes it wait for the twin's commit, then do
    # nothing, and we replay what the twin answered.
    claimed = session.exec(
        dialect_insert(session)(IdempotencyRecord)
        .values(
            api_key_id=api_key_id, key=key, request_hash=request_hash, status_code=0, response="", created_at=utcnow()
        )
        .on_conflict_do_nothing(index_elements=["api_key_id", "key"])
        .returning(col(IdempotencyRecord.id))
    ).first()
    if claimed is not None:
        return Claim(record_id=claimed[0], replay_response=None)
    existing = session.exec(
        select(IdempotencyRecord).where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
    ).one()
    check_same(key, existing.request_hash, request_hash)
    assert existing.id is not None
    return Claim(record_id=existing.id, replay_response=existing.response)


def check_same(key: str, first_hash: str, request_hash: str) -> None:
    if first_hash != request_hash:
        raise IdempotencyKeyReused(
            f"Idempotency-Key“{key}”已用于另一内容不同的请求;重试请保持请求体不变,新报告请换新键 / "
            "the key was used with a different request"
        )


def release(*, session: Session, claimed: Claim) -> None:
    """Gives a key back when its request was refused, so a corrected retry can use it."""
    session.exec(delete(IdempotencyRecord).where(col(IdempotencyRecord.id) == claimed.record_id))


def complete(*, session: Session, claimed: Claim, status_code: int, response: str) -> None:
    session.exec(
        update(IdempotencyRecord)
        .where(col(IdempotencyRecord.id) == claimed.record_id)
        .values(status_code=status_code, response=response)
    )
