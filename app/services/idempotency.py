"""Idempotency-Key: a retried request with the same key and body gets the original answer.

Keys are remembered per API key. The record is claimed *before* the work, inside a savepoint, so a
concurrent twin request on PostgreSQL waits on the unique index and then replays instead of writing
a duplicate (SQLite's writers are serialized already).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.errors import ProblemError
from app.models import IdempotencyRecord


class IdempotencyKeyReused(ProblemError):
    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency Key Reused"


@dataclass
class Claim:
    record: IdempotencyRecord
    replay: bool  # True: answer with record.response; False: do the work, then `complete` it


def fingerprint(scope: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{scope}\n{canonical}".encode()).hexdigest()


def _find(session: Session, api_key_id: int, key: str) -> IdempotencyRecord | None:
    return session.exec(
        select(IdempotencyRecord).where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
    ).first()


def _check(record: IdempotencyRecord, request_hash: str, key: str) -> Claim:
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(
            f"Idempotency-Key“{key}”已用于另一内容不同的请求;重试请保持请求体不变,新报告请换新键 / "
            "the key was used with a different request"
        )
    return Claim(record=record, replay=True)


def claim(*, session: Session, api_key_id: int, key: str, request_hash: str) -> Claim:
    existing = _find(session, api_key_id, key)
    if existing is not None:
        return _check(existing, request_hash, key)
    record = IdempotencyRecord(api_key_id=api_key_id, key=key, request_hash=request_hash, status_code=0, response="")
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        existing = _find(session, api_key_id, key)
        assert existing is not None
        return _check(existing, request_hash, key)
    return Claim(record=record, replay=False)


def complete(*, session: Session, claimed: Claim, status_code: int, response: str) -> None:
    claimed.record.status_code = status_code
    claimed.record.response = response
    session.add(claimed.record)
