"""The write path's size (`app/services/submission.py`): a report costs a bounded number of SQL
statements, and a batch costs what one report does — set-based, never a statement (or a lazy load)
per item, but for the events on SQLite (the ORM inserts those one by one there, to learn their ids).
Counted at the driver, through the real app, on both databases; the bounds are what the path takes
today (main before this: 27, 30 and 76 statements), so any statement added to it fails here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.models import Task, TaskStatus
from app.schemas.progress import ProgressCreate
from app.services import derivation, submission
from app.services.keys import authenticate
from app.services.plans import plan_to_read
from tests.factories import make_key

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
REPORT = {"status": "in_progress", "percent": 60, "summary": "开展宪法进校园活动 42 场", "period": "2022-H2"}
# 司法局 leads or is responsible for these (a batch of them moves each task's status).
JUSTICE_TASKS = ("2.3.3", "2.3.4", "2.2.2")


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _listing(seen: list[str]) -> str:
    return "\n".join(" ".join(s.split())[:120] for s in seen)


def test_one_report_costs_a_handful_of_statements(client: TestClient, db: Session, seeded_engine: Engine) -> None:
    key = make_key(db, unit="司法局")
    url = f"{PLAN}/tasks/2.3.3/progress"
    with statements(seeded_engine) as first:
        created = client.post(url, json=REPORT, headers={"Authorization": key, "Idempotency-Key": "s-1"})
    assert created.status_code == 201, created.text
    with statements(seeded_engine) as second:  # a new version of the same period: one more UPDATE
        again = client.post(
            url, json={**REPORT, "percent": 70}, headers={"Authorization": key, "Idempotency-Key": "s-2"}
        )
    assert again.status_code == 201 and again.json()["supersedes"] == created.json()["id"]
    assert len(first) <= FIRST, _listing(first)
    assert len(second) <= SECOND, _listing(second)


def test_a_batch_costs_what_one_report_does(client: TestClient, db: Session, seeded_engine: Engine) -> None:
    key = make_key(db, unit="司法局")
    items = [
        {"task": code, **REPORT, "percent": 10 + n, "idempotency_key": f"b-{n}"}
        for n, code in enumerate(JUSTICE_TASKS * 4)
    ]
    with statements(seeded_engine) as seen:
        answer = client.post(f"{PLAN}/progress:batch", json={"items": items}, headers={"Authorization": key})
    assert answer.status_code == 200 and answer.json()["created"] == len(items), answer.text
    events = [s for s in seen if s.startswith("INSERT INTO change_event")]
    assert len(events) <= len(items) + len(JUSTICE_TASKS), _listing(seen)  # report.created, task.status_changed
    # Nothing remembered yet, as for the first report; the versions within the batch add two UPDATEs.
    assert len(seen) - len(events) <= FIRST + 2, _listing(seen)


# Both include the key check on the read session and the savepoints of the test's transaction. What a
# write needs before it starts (the key, its unit, the plan, its schedule, the key's jurisdictions and
# groups) is remembered at the structure version (`app/services/structure_memo.py`), which a report
# does not move: each check reads that version, and only the first use loads the rows.
FIRST = 25  # a report that moves its task (and so two events), nothing remembered yet (was 26)

SECOND = 18  # a new version of the same period, everything remembered (the task's links too): one UPDATE marks the old (was 20)


def test_a_task_entity_the_session_holds_learns_the_state_a_report_derives(db: Session) -> None:
    # The report path writes the task with Core, on a plain row; an entity of the same task already in
    # the transaction (a precondition's, or another write's in the same group commit, whose session
    # expires nothing between writes) must not go stale: a later write in that transaction would
    # re-derive from its old status, and miss the change or report it twice.
    key = make_key(db, unit="司法局")  # commits: everything the session held is expired
    principal = authenticate(session=db, authorization=key)
    task = db.exec(select(Task).where(Task.code == "2.3.3")).one()
    assert (task.status, task.progress) == (TaskStatus.not_started, 0)
    [outcome] = submission.submit(
        session=db,
        plan=plan_to_read(session=db, slug="xiji-fzsh-2021-2025"),
        principal=principal,
        submissions=[submission.Submission(index=0, code="2.3.3", data=ProgressCreate.model_validate(REPORT))],
        remote_addr=None,
    )
    assert outcome.problem is None and outcome.report is not None
    assert (task.status, task.progress) == (TaskStatus.in_progress, 60)
    assert task.updated_at == outcome.report.created_at
    assert task not in db.dirty  # learnt as committed values: no second UPDATE at the next flush


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's planner, which has no statistics to go by
def test_a_write_finds_its_versions_by_seeks_not_by_reading_the_task_history(fresh_engine: Engine) -> None:
    # The heads and the newest counting versions come from their partial indexes: with the full
    # (task, period, unit) index, a write read every version its task ever had (24 ms at 10^6).
    def plan(statement: Any, **params: Any) -> str:
        sql = str(
            statement.params(**params).compile(dialect=fresh_engine.dialect, compile_kwargs={"literal_binds": True})
        )
        with fresh_engine.connect() as connection:
            return " | ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))

    heads = plan(submission._HEADS, task_ids=[1], periods=["2023-Q1"])
    assert "INDEX ix_progress_report_head" in heads, heads
    counting = plan(derivation._COUNTING_NOW, task_ids=[1])
    assert "INDEX ix_progress_report_head" in counting and "INDEX ix_progress_report_counting" in counting, counting
    assert "SCAN progress_report" not in counting, counting
