"""What a write needs before it starts, remembered per process at the structure version
(`app/services/structure_memo.py`): a report does not move that version, so the next report finds
the key, plan, schedule and jurisdictions remembered; anything else that commits moves it, so a change
made through another worker is obeyed by the very next report here. Both backends, committed databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import delete, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.core.config import get_settings
from app.db import make_engine
from app.models import Responsibility, Task, Unit
from app.services.structure_memo import memo
from tests.factories import make_key
from tests.webhook_support import app_on

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
REPORT = {"status": "in_progress", "percent": 40, "summary": "开展宪法进校园活动", "period": "2023-Q4"}


def _versions(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        row = connection.execute(text("SELECT version, structure_version FROM feed_counter WHERE id = 1")).one()
    return int(row[0]), int(row[1])


@contextmanager
def _worker(engine: Engine) -> Iterator[TestClient]:
    own = make_engine(engine.url.render_as_string(hide_password=False))  # its own pool, as another process
    try:
        yield TestClient(app_on(own, get_settings()))
    finally:
        own.dispose()


def test_a_report_moves_the_data_version_not_the_structure_version(webhook_engine: Engine) -> None:
    with Session(webhook_engine) as s:
        key = make_key(s, unit="县司法局")
    with _worker(webhook_engine) as one:
        url = f"{PLAN}/tasks/2.3.3/progress"
        assert one.post(url, json=REPORT, headers={"Authorization": key}).status_code == 201
        before = _versions(webhook_engine)
        hits = memo.hits
        again = one.post(url, json={**REPORT, "percent": 50}, headers={"Authorization": key})
        assert again.status_code == 201, again.text
        after = _versions(webhook_engine)
        assert after == (before[0] + 1, before[1])  # data moved, structure did not
        # The key (on the read session and again in the write), the plan, its schedule, the task's
        # links, the key's jurisdictions and groups: all remembered from the first report.
        assert memo.hits - hits >= 6
        with Session(webhook_engine) as s:
            make_key(s, admin=True)  # anything off the report path moves both
        assert _versions(webhook_engine) == (after[0] + 1, after[1] + 1)


def test_a_schedule_changed_through_another_worker_is_obeyed_by_the_next_report(webhook_engine: Engine) -> None:
    with Session(webhook_engine) as s:
        key, admin = make_key(s, unit="县司法局"), make_key(s, admin=True)
    with _worker(webhook_engine) as one, _worker(webhook_engine) as two:
        url = f"{PLAN}/tasks/2.3.3/progress"
        first = one.post(url, json=REPORT, headers={"Authorization": key})
        assert first.status_code == 201 and first.json()["review"]["state"] == "not_required", first.text
        body = {"cadence": "quarterly", "deadline_days": 10, "cooperating_units_report": False, "review_required": True}
        changed = two.put(f"{PLAN}/schedule", json=body, headers={"Authorization": admin})
        assert changed.status_code == 200, changed.text
        second = one.post(url, json={**REPORT, "percent": 60}, headers={"Authorization": key})
        assert second.status_code == 201 and second.json()["review"]["state"] == "pending", second.text


def test_a_task_unlinked_by_a_re_import_is_obeyed_by_the_next_report(webhook_engine: Engine) -> None:
    # The task's links are remembered too; a re-import (the CLI, another process) that takes the unit
    # off the task as its owner moves the structure version, so the next report here no longer moves
    # the task: it counts only through the group the unit still belongs to (各部门(单位), cooperating).
    with Session(webhook_engine) as s:
        key = make_key(s, unit="县司法局")
    with _worker(webhook_engine) as one:
        url = f"{PLAN}/tasks/2.3.3/progress"
        assert one.post(url, json=REPORT, headers={"Authorization": key}).status_code == 201
        owner = one.post(url, json={**REPORT, "percent": 45}, headers={"Authorization": key})
        assert owner.status_code == 201 and owner.json()["kind"] == "status", owner.text
        with Session(webhook_engine) as s:
            task_id = s.exec(select(Task.id).where(Task.code == "2.3.3")).one()
            unit_id = s.exec(select(Unit.id).where(Unit.name == "县司法局")).one()
            s.exec(
                delete(Responsibility).where(
                    col(Responsibility.task_id) == task_id, col(Responsibility.unit_id) == unit_id
                )
            )
            s.commit()
        after = one.post(url, json={**REPORT, "percent": 50}, headers={"Authorization": key})
        assert after.status_code == 201, after.text
        assert (after.json()["kind"], after.json()["via"]["name"]) == ("contribution", "各部门(单位)"), after.text
