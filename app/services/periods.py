"""Reporting periods: one canonical form everywhere, and a plan's calendar of them.

A period is written `2023` (a year), `2023-H1` (a half), `2023-Q4` (a quarter) or `2023-07` (a month),
ASCII digits only. A report's period must fit the plan's cadence or be coarser: a quarterly plan takes
`2023-Q4`, `2023-H2` and `2023`, but not `2023-11`. A period's report is due `deadline_days` after the
period ends (quarterly, 10: the report on 2023-Q4 is due by 2024-01-10, that day included).

Pure functions: no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from app.models.cycle import Cadence

PERIOD_PATTERN = r"^[0-9]{4}(-H[12]|-Q[1-4]|-(0[1-9]|1[0-2]))?$"
_PERIOD_RE = re.compile(PERIOD_PATTERN, re.ASCII)

# Months per period of each cadence; a period "fits" a cadence when it is at least as long.
_MONTHS = {Cadence.monthly: 1, Cadence.quarterly: 3, Cadence.half_yearly: 6, Cadence.yearly: 12}


class PeriodError(ValueError):
    """A period that is not in canonical form; the message (Chinese, then English) says why."""


@dataclass(frozen=True, order=True)
class Period:
    """A reporting period. Ordered by start, then by length (so 2023-Q4 sorts before 2023-H2)."""

    start: date
    end: date  # the last day, included
    label: str

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    def deadline(self, deadline_days: int) -> date:
        return self.end + timedelta(days=deadline_days)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def parse_period(value: str) -> Period:
    """`2023-Q4` → Period(2023-10-01, 2023-12-31). Refuses anything not in canonical form."""
    if not isinstance(value, str) or not _PERIOD_RE.fullmatch(value):
        raise PeriodError(
            f"报告期“{value}”格式不正确,应为 2023、2023-H1、2023-Q4 或 2023-07(半角数字)"
            " / period must be YYYY, YYYY-H1, YYYY-Q1 or YYYY-MM"
        )
    year = int(value[:4])
    rest = value[5:]
    if not rest:
        return Period(date(year, 1, 1), date(year, 12, 31), value)
    if rest[0] == "H":
        first = 1 if rest == "H1" else 7
        return _span(year, first, 6, value)
    if rest[0] == "Q":
        return _span(year, 3 * (int(rest[1]) - 1) + 1, 3, value)
    return _span(year, int(rest), 1, value)


def _span(year: int, first_month: int, months: int, label: str) -> Period:
    last_month = first_month + months - 1
    end = (date(year + 1, 1, 1) if last_month == 12 else date(year, last_month + 1, 1)) - timedelta(days=1)
    return Period(date(year, first_month, 1), end, label)


def label_for(year: int, index: int, cadence: Cadence) -> str:
    """The canonical label of the `index`-th (1-based) period of `year` at this cadence."""
    if cadence == Cadence.yearly:
        return f"{year}"
    if cadence == Cadence.half_yearly:
        return f"{year}-H{index}"
    if cadence == Cadence.quarterly:
        return f"{year}-Q{index}"
    return f"{year}-{index:02d}"


def fits_cadence(period: Period, cadence: Cadence) -> bool:
    """A period fits a cadence when it is one of its periods or a coarser one (a yearly summary)."""
    return period.months >= _MONTHS[cadence]


def calendar(*, first_year: int | None, last_year: int | None, cadence: Cadence) -> list[Period]:
    """Every period of the cadence from January of `first_year` to December of `last_year`; none for
    a plan whose term was left open (no years): it owes no periodic reports until given a term."""
    if first_year is None or last_year is None:
        return []
    per_year = 12 // _MONTHS[cadence]
    return [
        parse_period(label_for(year, index, cadence))
        for year in range(first_year, last_year + 1)
        for index in range(1, per_year + 1)
    ]


def period_containing(day: date, cadence: Cadence) -> Period:
    months = _MONTHS[cadence]
    return parse_period(label_for(day.year, (day.month - 1) // months + 1, cadence))
