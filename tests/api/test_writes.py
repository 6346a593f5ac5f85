"""Group commit (`app/api/writes.py`): writers that wait together share one transaction, each
validated alone and failing alone, each answered only once that transaction is committed.

(Concurrent reports through a real server, and acknowledged reports surviving SIGKILL, are in
`tests/test_write_robustness.py`; the server's single-report endpoint goes through this path.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.api.read_cache import engine_data_version
from app.api.writes import GroupCommit, group_commit
from app.core.config import get_settings
from app.db import get_engine, make_engine, sqlite_writer
from app.errors import ProblemError
from app.importer.service import seed_if_empty
from app.main import create_app
from app.migrate import upgrade_to_head
from app.models import ChangeEvent, Jurisdiction, JurisdictionLevel, Unit, UnitKind
from app.models.progress import STRUCTURE_VERSION_SQL
from app.services.feed import record_event
from app.services.keys import revoke_key
from tests.conftest import fresh_database_url
from tests.factories import make_key


def _county(engine: Engine) -> int:
    with Session(engine) as session:
        county = Jurisdiction(code="999001", name="测试县", level=JurisdictionLevel.county)
        session.add(county)
        session.commit()
        assert county.id is not None
        return county.id


def test_waiting_writers_share_one_commit_and_fail_alone(fresh_engine: Engine) -> None:
    county = _county(fresh_engine)
    writes = GroupCommit(fresh_engine)

    def add(name: str, *, refuse: bool = False) -> object:
        def work(session: Session) -> str:
            session.add(Unit(name=name, kind=UnitKind.government_department, jurisdiction_id=county))
            record_event(session=session, type="unit.created", principal=None, remote_addr=None, data={"name": name})
            session.flush()
            if refuse:
                raise ProblemError(f"refused {name}")
            return name

        return work

    works = {
        "县甲局": add("县甲局"),
        "县乙局": add("县乙局", refuse=True),  # its own rule refuses it after it wrote
        "县丙局": add("县丙局"),
        "县甲局 again": add("县甲局"),  # the unique constraint refuses it, at its own flush
        "县丁局": add("县丁局"),
    }
    answers: dict[str, object] = {}
    version = engine_data_version(fresh_engine)
    sqlite_writer.acquire()  # hold the writers back until all of them are queued
    try:
        threads = [
            threading.Thread(target=lambda n=n, w=w: answers.__setitem__(n, _run(writes, w))) for n, w in works.items()
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(writes._queue) < len(works):  # readiness, not timing: wait until every writer is queued
            assert time.monotonic() < deadline, "writers never queued"
            time.sleep(0.01)
        assert answers == {}, "nobody is answered before the commit"
    finally:
        sqlite_writer.release()
    for thread in threads:
        thread.join(60)

    assert writes.groups == 1 and writes.writes == len(works)  # one transaction, one commit
    assert answers["县甲局"] == "县甲局" and answers["县丙局"] == "县丙局" and answers["县丁局"] == "县丁局"
    assert isinstance(answers["县乙局"], ProblemError)
    assert isinstance(answers["县甲局 again"], IntegrityError)
    with Session(fresh_engine) as session:
        stored = session.exec(select(Unit.name).where(col(Unit.jurisdiction_id) == county)).all()
        events = session.exec(select(ChangeEvent).where(ChangeEvent.type == "unit.created")).all()
    assert sorted(stored) == sorted(["县甲局", "县丙局", "县丁局"])
    # The refused works' events went with their savepoints; the rest numbered in one run, in order.
    assert sorted(json.loads(e.data)["name"] for e in events) == sorted(stored)
    seqs = sorted(e.seq or 0 for e in events)
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert engine_data_version(fresh_engine) == version + 1  # one commit, one new data version


def test_a_failed_commit_fails_everyone_in_it(fresh_engine: Engine) -> None:
    county = _county(fresh_engine)
    writes = GroupCommit(fresh_engine)

    def breaks_the_commit(session: Session) -> str:
        # Deferred until commit: the foreign key is checked at the statement on both backends, so
        # instead make the whole transaction fail as a commit does, after this work's savepoint.
        session.add(Unit(name="县戊局", kind=UnitKind.government_department, jurisdiction_id=county))
        session.flush()
        session.info["break_commit"] = True
        return "县戊局"

    from sqlalchemy import event

    def fail(session: Session) -> None:
        if session.info.pop("break_commit", False):
            raise RuntimeError("disk full")

    event.listen(Session, "before_commit", fail)
    try:
        outcome = _run(writes, breaks_the_commit)
    finally:
        event.remove(Session, "before_commit", fail)
    assert isinstance(outcome, RuntimeError)
    with Session(fresh_engine) as session:
        assert session.exec(select(Unit).where(Unit.name == "县戊局")).first() is None


def _run(writes: GroupCommit, work: object) -> object:
    try:
        return writes.run(work)  # type: ignore[arg-type]
    except Exception as exc:  # the test inspects what each writer was told
        return exc


# --- Through the real app: batches are pieces of work in the group too ----------------------------

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
REPORT = {"status": "in_progress", "percent": 60, "summary": "开展宪法进校园活动 42 场", "period": "2022-H2"}


@pytest.fixture
def sqlite_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The real app on a seeded SQLite file, with no substituted session: its writes go through the
    process's group commit."""
    for url in fresh_database_url("sqlite", tmp_path):
        engine = make_engine(url)
        upgrade_to_head(engine)
        with Session(engine) as session:
            seed_if_empty(session=session, settings=get_settings())
            session.commit()
            keys = {unit: make_key(session, unit=unit) for unit in ("司法局", "教育体育局")}
        engine.dispose()
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
        get_settings.cache_clear()
        get_engine.cache_clear()
        try:
            with TestClient(create_app()) as client:
                yield client, keys
        finally:
            get_engine().dispose()
            get_engine.cache_clear()
            monkeypatch.delenv("DATABASE_URL")
            get_settings.cache_clear()


def test_batches_share_a_group_with_single_writers_and_fail_alone(
    sqlite_app: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = sqlite_app
    justice, education = keys["司法局"], keys["教育体育局"]
    requests: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
        "batch": (f"{PLAN}/progress:batch", {"items": [{"task": "2.3.3", **REPORT}, {"task": "2.3.4", **REPORT}]}, {}),
        "atomic, one bad item": (
            f"{PLAN}/progress:batch?atomic=true",
            {"items": [{"task": "2.2.2", **REPORT}, {"task": "2.1.3", **REPORT}]},  # not linked to 2.1.3
            {},
        ),
        "dry run": (f"{PLAN}/progress:batch?dry_run=true", {"items": [{"task": "2.2.2", **REPORT}]}, {}),
        "single": (f"{PLAN}/tasks/2.1.3/progress", REPORT, {"Authorization": education}),
        "single, refused": (f"{PLAN}/tasks/2.1.3/progress", REPORT, {}),  # 司法局 again: not linked
    }
    group = group_commit(get_engine())
    answers: dict[str, httpx.Response] = {}
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    def send(name: str) -> None:
        path, body, headers = requests[name]
        answers[name] = client.post(path, json=body, headers={"Authorization": justice, **headers})

    sqlite_writer.acquire()  # hold the writers back until all of them are queued
    try:
        threads = [threading.Thread(target=send, args=(name,)) for name in requests]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(group._queue) < len(requests):  # readiness, not timing
            assert time.monotonic() < deadline, f"writers never queued: {answers}"
            time.sleep(0.01)
        assert answers == {}, "nobody is answered before the commit"
        groups_before = group.groups
        event.listen(get_engine(), "before_cursor_execute", note)
    finally:
        sqlite_writer.release()
    for thread in threads:
        thread.join(60)
    event.remove(get_engine(), "before_cursor_execute", note)

    assert group.groups == groups_before + 1  # one transaction for the five requests
    # What the writes knew before they started was checked once for the group, not once per write.
    assert sum("structure_version FROM feed_counter" in s for s in seen) == 1, seen
    assert answers["batch"].status_code == 200 and answers["batch"].json()["created"] == 2
    rejected = answers["atomic, one bad item"]
    assert rejected.status_code == 422
    assert [r["outcome"] for r in rejected.json()["results"]] == ["rolled_back", "error"]
    dry = answers["dry run"]
    assert dry.status_code == 200 and dry.json()["results"][0]["outcome"] == "would_create"
    assert answers["single"].status_code == 201
    assert answers["single, refused"].status_code == 403
    stored = {
        r["task"] for r in client.get(f"{PLAN}/progress", params={"limit": 50}).json()["items"]
    }  # what the commit kept: the batch and the single report, nothing of the others
    assert stored == {"2.3.3", "2.3.4", "2.1.3"}


def test_a_remembered_key_is_checked_without_a_read_session_and_a_revoked_one_refused_at_once(
    sqlite_app: tuple[TestClient, dict[str, str]],
) -> None:
    """The key check before a write (`verified_principal`) answers a key accepted at the current
    structure version from memory; the version moves with a revocation, so that key is refused next."""
    client, keys = sqlite_app
    justice = keys["司法局"]
    url = f"{PLAN}/tasks/2.3.3/progress"
    assert client.post(url, json=REPORT, headers={"Authorization": justice}).status_code == 201
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(get_engine(), "before_cursor_execute", note)
    try:
        again = client.post(url, json={**REPORT, "percent": 70}, headers={"Authorization": justice})
    finally:
        event.remove(get_engine(), "before_cursor_execute", note)
    assert again.status_code == 201, again.text
    # Only the write's own check reads the version through the pool; the one before it did not.
    assert seen[0] == "BEGIN IMMEDIATE", seen  # no read transaction before the write's
    assert seen.count(STRUCTURE_VERSION_SQL) == 1, seen

    with Session(get_engine()) as session:  # as `plan-api keys revoke` does, from another process
        revoke_key(session=session, prefix=justice.split("_")[1])
        session.commit()
    refused = client.post(url, json=REPORT, headers={"Authorization": justice})
    assert refused.status_code == 401 and "吊销" in refused.json()["detail"], refused.text
