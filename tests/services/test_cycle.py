"""Which report counts, and a task's state from its owners' latest periods (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import count

from app.models import ReportKind, ReviewState, TaskStatus
from app.services.cycle import ReportFacts, end_of_day, local_date, task_state, unit_states

T0 = datetime(2024, 1, 5, 2, 0, tzinfo=UTC)
_ids = count(1)


def report(unit: int | None, period: str, status: str, percent: int, *, hours: int = 0, **extra: object) -> ReportFacts:
    kind = ReportKind.correction if unit is None else ReportKind.status
    return ReportFacts(
        id=next(_ids),
        task_id=1,
        unit_id=unit,
        via_unit_id=unit,
        kind=extra.pop("kind", kind),  # type: ignore[arg-type]
        period=period,
        status=TaskStatus(status),
        percent=percent,
        created_at=T0 + timedelta(hours=hours),
        **extra,  # type: ignore[arg-type]
    )


def test_a_back_filled_earlier_period_never_moves_the_task_backwards() -> None:
    q4 = report(10, "2023-Q4", "in_progress", 60, hours=0)
    q3 = report(10, "2023-Q3", "in_progress", 40, hours=5)  # arrives later, is about an earlier quarter
    state = task_state(owner_slots=[10], reports=[q4, q3], at=None)
    assert state is not None and state[:2] == (TaskStatus.in_progress, 60)


def test_a_second_report_on_the_same_period_supersedes_the_first() -> None:
    first = report(10, "2023-Q4", "in_progress", 60, hours=0)
    fix = report(10, "2023-Q4", "in_progress", 50, hours=1)
    assert unit_states([first, fix], None)[(1, 10)] == fix
    assert unit_states([first, fix], T0)[(1, 10)] == first  # as it was before the correction


def test_withdrawing_the_head_leaves_nothing_for_that_period() -> None:
    q3 = report(10, "2023-Q3", "in_progress", 40, hours=0)
    q4 = report(10, "2023-Q4", "in_progress", 60, hours=1, withdrawn_at=T0 + timedelta(hours=2))
    assert unit_states([q3, q4], None)[(1, 10)] == q3
    assert unit_states([q3, q4], T0 + timedelta(hours=1))[(1, 10)] == q4


def test_under_review_only_accepted_heads_count_from_acceptance_on() -> None:
    accepted_at = T0 + timedelta(days=2)
    ok = report(10, "2023-Q3", "in_progress", 40, review_state=ReviewState.accepted, reviewed_at=accepted_at)
    returned = report(10, "2023-Q4", "in_progress", 70, hours=1, review_state=ReviewState.returned)
    pending = report(11, "2023-Q4", "completed", 100, hours=1, review_state=ReviewState.pending)
    states = unit_states([ok, returned, pending], None)
    assert list(states) == [(1, 10)] and states[(1, 10)] == ok
    assert unit_states([ok], T0 + timedelta(days=1)) == {}


def test_a_correction_waiting_for_review_leaves_the_accepted_version_standing() -> None:
    accepted = report(
        10, "2023-Q4", "in_progress", 60, review_state=ReviewState.accepted, reviewed_at=T0 + timedelta(hours=1)
    )
    pending = report(10, "2023-Q4", "in_progress", 80, hours=2, review_state=ReviewState.pending)
    assert unit_states([accepted, pending], None)[(1, 10)] == accepted
    returned = replace(pending, review_state=ReviewState.returned)
    assert unit_states([accepted, returned], None)[(1, 10)] == accepted
    taken = replace(pending, review_state=ReviewState.accepted, reviewed_at=T0 + timedelta(hours=3))
    assert unit_states([accepted, taken], None)[(1, 10)] == taken
    assert unit_states([accepted, taken], T0 + timedelta(hours=2, minutes=30))[(1, 10)] == accepted
    # Withdrawing the head (even a pending one) withdraws the unit's report on that period.
    gone = replace(pending, withdrawn_at=T0 + timedelta(hours=4))
    assert unit_states([accepted, gone], None) == {}


def test_an_admin_correction_stands_until_an_owner_report_counts_after_it() -> None:
    owner = report(10, "2023-Q3", "in_progress", 40, hours=0)
    correction = report(None, "2023-Q3", "delayed", 30, hours=1)
    assert task_state(owner_slots=[10, 11], reports=[owner, correction], at=None)[:2] == (TaskStatus.delayed, 30)  # type: ignore[index]
    later = report(11, "2023-Q4", "completed", 100, hours=2)
    assert task_state(owner_slots=[10, 11], reports=[owner, correction, later], at=None)[:2] == (  # type: ignore[index]
        TaskStatus.in_progress,
        70,
    )


def test_nothing_counts_before_the_first_report() -> None:
    assert task_state(owner_slots=[10], reports=[report(10, "2023-Q4", "completed", 100, hours=3)], at=T0) is None


def test_local_days() -> None:
    # 23:30 in Xiji on 10 January is 15:30 UTC the same day; 00:30 on the 11th is 16:30 UTC on the 10th.
    assert local_date(datetime(2024, 1, 10, 16, 30, tzinfo=UTC), "Asia/Shanghai") == date(2024, 1, 11)
    assert end_of_day(date(2024, 1, 10), "Asia/Shanghai") == datetime(2024, 1, 10, 15, 59, 59, 999999, tzinfo=UTC)
