"""`If-Match` on a report (`app/services/preconditions.py`), through the real app: the task's ETag
is its detail's, in any form a client may hold it; a stale one is a 412 that writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.models import ProgressReport
from tests.factories import SEED_SLUG, make_key

TASK = f"/api/v1/plans/{SEED_SLUG}/tasks/2.1.1"
CORRECTION = {"status": "completed", "percent": 100, "summary": "更正:已全部完成", "period": "2022-H2"}


def etag(client: TestClient) -> str:
    """The task's ETag as sent uncompressed."""
    return str(client.get(TASK, headers={"Accept-Encoding": "identity"}).headers["etag"])


def reports(db: Session) -> int:
    return db.exec(select(func.count()).select_from(ProgressReport)).one()


def correct(client: TestClient, key: str, if_match: str, **headers: str) -> Any:
    return client.post(
        f"{TASK}/progress", json=CORRECTION, headers={"Authorization": key, "If-Match": if_match, **headers}
    )


def test_a_stale_etag_is_a_412_and_writes_nothing(client: TestClient, db: Session) -> None:
    admin, unit = make_key(db, admin=True), make_key(db, unit="委宣传部")
    read = etag(client)
    moved = client.post(
        f"{TASK}/progress", json={**CORRECTION, "status": "in_progress", "percent": 40}, headers={"Authorization": unit}
    )
    assert moved.status_code == 201  # the task moves on after the admin read it
    before, task = reports(db), client.get(TASK).json()

    stale = correct(client, admin, read)
    assert stale.status_code == 412 and stale.json()["code"] == "precondition-failed"
    assert "2.1.1" in stale.json()["detail"]
    assert (reports(db), client.get(TASK).json()) == (before, task)


@pytest.mark.parametrize(
    "form",
    [
        lambda tag: tag,
        lambda tag: "W/" + tag,  # weak, as some proxies send it back
        lambda tag: tag[:-1] + '-gzip"',  # the gzipped detail's, as a client that accepts gzip holds it
        lambda tag: f'"other", {tag}',  # one of several
        lambda tag: "*",
    ],
    ids=["strong", "weak", "gzip", "list", "any"],
)
def test_the_current_etag_is_accepted_in_any_form(client: TestClient, db: Session, form: Any) -> None:
    admin = make_key(db, admin=True)
    ok = correct(client, admin, form(etag(client)))
    assert ok.status_code == 201, ok.text
    assert ok.json()["kind"] == "correction"


def test_a_replay_is_answered_before_the_precondition(client: TestClient, db: Session) -> None:
    """A retried correction replays its answer, though its If-Match is stale by its own doing."""
    admin = make_key(db, admin=True)
    current = etag(client)
    first = correct(client, admin, current, **{"Idempotency-Key": "correction-1"})
    assert first.status_code == 201
    retry = correct(client, admin, current, **{"Idempotency-Key": "correction-1"})
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.content == first.content
    assert correct(client, admin, current).status_code == 412  # the same ETag, without the key
