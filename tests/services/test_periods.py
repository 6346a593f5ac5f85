"""Period forms, cadence fit and the calendar (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest

from app.models import Cadence
from app.services.periods import PeriodError, calendar, fits_cadence, parse_period, period_containing


@pytest.mark.parametrize(
    ("label", "start", "end"),
    [
        ("2023", date(2023, 1, 1), date(2023, 12, 31)),
        ("2023-H1", date(2023, 1, 1), date(2023, 6, 30)),
        ("2023-H2", date(2023, 7, 1), date(2023, 12, 31)),
        ("2023-Q1", date(2023, 1, 1), date(2023, 3, 31)),
        ("2024-Q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2023-Q4", date(2023, 10, 1), date(2023, 12, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2023-12", date(2023, 12, 1), date(2023, 12, 31)),
    ],
)
def test_parse_canonical_forms(label: str, start: date, end: date) -> None:
    period = parse_period(label)
    assert (period.start, period.end, period.label) == (start, end, label)


@pytest.mark.parametrize("label", ["２０２３-Q1", "2023-Q5", "2023-13", "2023-7", "2023Q1", "2023-h1", "", "2023-Q1 "])
def test_non_canonical_forms_are_refused(label: str) -> None:
    with pytest.raises(PeriodError, match="报告期"):
        parse_period(label)


def test_deadline_counts_days_after_the_period_ends() -> None:
    assert parse_period("2023-Q4").deadline(10) == date(2024, 1, 10)
    assert parse_period("2023-H1").deadline(15) == date(2023, 7, 15)


def test_a_period_fits_its_cadence_or_a_coarser_one() -> None:
    assert fits_cadence(parse_period("2023-Q2"), Cadence.quarterly)
    assert fits_cadence(parse_period("2023-H1"), Cadence.quarterly)
    assert fits_cadence(parse_period("2023"), Cadence.quarterly)
    assert not fits_cadence(parse_period("2023-05"), Cadence.quarterly)
    assert not fits_cadence(parse_period("2023-Q2"), Cadence.yearly)
    assert fits_cadence(parse_period("2023-05"), Cadence.monthly)


def test_calendar_and_current_period() -> None:
    quarters = calendar(first_year=2021, last_year=2025, cadence=Cadence.quarterly)
    assert len(quarters) == 20
    assert [p.label for p in quarters[:2]] == ["2021-Q1", "2021-Q2"]
    assert quarters == sorted(quarters)
    assert len(calendar(first_year=2023, last_year=2023, cadence=Cadence.monthly)) == 12
    assert period_containing(date(2023, 11, 5), Cadence.quarterly).label == "2023-Q4"
    assert period_containing(date(2023, 11, 5), Cadence.half_yearly).label == "2023-H2"
    assert period_containing(date(2023, 11, 5), Cadence.monthly).label == "2023-11"
