"""Preconditions of a write: a report sent with `If-Match` is accepted only against the task as its
sender last read it.

A task's version is the ETag of its detail (`GET /plans/{plan}/tasks/{code}`: `task_detail_bytes`,
hashed by `etag_of`). The check runs on the task as the report's own transaction locked it, read as
that endpoint shows it today; a header that names neither that ETag (in either encoding) nor `*` is
`StaleETag` (412), and the report writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from app.core.clock import county_today
from app.core.etag import etag_matches, etag_of
from app.errors import StaleETag
from app.models import Task
from app.schemas.task import task_detail_bytes
from app.services import tasks as task_service
from app.services.submission import LockedTask


def task_unchanged(*, session: Session, if_match: str) -> Callable[[LockedTask], None]:
    """The precondition `submission.submit` checks on each locked task: its ETag is one `if_match` names."""

    def check(task: LockedTask) -> None:
        entity = session.get(Task, task.id)
        assert entity is not None  # locked by this transaction
        view = task_service.hydrate(session=session, tasks=[entity], as_of=county_today())[0]
        if not etag_matches(if_match, etag_of(task_detail_bytes(view))):
            raise StaleETag(
                f"任务 {task.code} 已被他人更新(ETag 不一致),请重新读取后再提交 / the task changed since you read it"
            )

    return check
