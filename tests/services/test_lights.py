"""The light rule set on plain facts (`app/services/lights.py`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from app.models import TaskStatus
from app.services.lights import Light, LightThresholds, MissingDuty, ReturnedReport, evaluate, expected_progress

START = date(2021, 1, 1)
LIMITS = LightThresholds(missing_days=10, due_soon_days=30, lag_tolerance=20)


def judge(**given: Any) -> tuple[Light, list[str]]:
    facts: dict[str, Any] = {
        "due": date(2025, 12, 31),
        "status": TaskStatus.in_progress,
        "progress": 50,
        "as_of": date(2023, 6, 30),
        "term_start": START,
        "delayed_units": [],
        "missing": [],
        "returned": [],
        "thresholds": LIMITS,
    }
    facts.update(given)
    light, reasons = evaluate(**facts)
    return light, [r.rule for r in reasons]


def test_expected_progress_is_the_elapsed_share_of_the_term_up_to_the_due_date() -> None:
    assert expected_progress(term_start=START, due=date(2022, 1, 1), as_of=date(2021, 7, 2)) == 50
    assert expected_progress(term_start=START, due=date(2022, 1, 1), as_of=date(2023, 1, 1)) == 100
    assert expected_progress(term_start=START, due=date(2022, 1, 1), as_of=date(2020, 1, 1)) == 0


def test_green_when_nothing_is_wrong() -> None:
    assert judge() == (Light.green, [])


def test_red_rules() -> None:
    assert judge(due=date(2023, 6, 1), progress=90) == (Light.red, ["overdue"])
    assert judge(due=date(2023, 6, 1))[1] == ["overdue", "behind_schedule"]  # every matching reason
    assert judge(due=date(2023, 6, 1), status=TaskStatus.completed, progress=100) == (Light.green, [])
    assert judge(delayed_units=["县司法局"]) == (Light.red, ["owner_delayed"])
    gap = MissingDuty("县司法局", "2023-Q1", date(2023, 4, 10))
    assert judge(missing=[gap], as_of=date(2023, 4, 20)) == (Light.green, [])  # 10 days: not more than N
    light, rules = judge(missing=[gap], as_of=date(2023, 4, 21))
    assert (light, rules) == (Light.red, ["duty_missing"])
    done = judge(missing=[gap], as_of=date(2023, 4, 21), status=TaskStatus.completed, progress=100)
    assert done == (Light.green, [])  # the gap stays in compliance, not in a completed task's light


def test_yellow_rules_and_the_worst_light_wins() -> None:
    # Expected at 2023-06-30 for a task due 2023-12-31: 2 years 6 months of 3 years ≈ 83%.
    assert judge(due=date(2023, 12, 31), progress=60, as_of=date(2023, 6, 30)) == (Light.yellow, ["behind_schedule"])
    assert judge(due=date(2023, 12, 31), progress=70, as_of=date(2023, 6, 30))[1] == []
    assert judge(due=date(2023, 7, 30), progress=100, status=TaskStatus.ongoing)[1] == ["due_soon"]
    assert judge(due=date(2023, 7, 31), progress=100, status=TaskStatus.ongoing)[1] == []
    back = ReturnedReport("县司法局", "2023-Q1", 7, date(2023, 4, 12))
    assert judge(returned=[back]) == (Light.yellow, ["returned_unresolved"])
    light, rules = judge(returned=[back], delayed_units=["县公安局"])
    assert light == Light.red and rules == ["owner_delayed", "returned_unresolved"]


def test_messages_carry_the_figures() -> None:
    _, reasons = evaluate(
        due=date(2023, 6, 1),
        status=TaskStatus.in_progress,
        progress=40,
        as_of=date(2023, 6, 11),
        term_start=START,
        delayed_units=[],
        missing=[],
        returned=[],
        thresholds=LIMITS,
    )
    overdue = reasons[0]
    assert overdue.figures["days_overdue"] == 10 and "10 天" in overdue.message and "40%" in overdue.message
