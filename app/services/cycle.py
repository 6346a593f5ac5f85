"""The supervision cycle's rules, in one place. Each rule is implemented where its name points.

**Schedule** (`ReportingSchedule`, one per plan). Cadence `monthly` / `quarterly` / `half_yearly` /
`yearly`; a period's report is due `deadline_days` after the period ends (default: quarterly, 10 days,
cooperating units owe nothing, no review). Calendar and period forms: `app/services/periods.py`.
Dates are the county's local dates (`Settings.timezone`, Asia/Shanghai): a report sent at 23:30 on the
deadline day is on time.

**Versions (supersession).** A unit's report is about one task and one period. When the same unit
reports again on the same task and period, the new report supersedes the earlier one (a correction):
both stay in the history, linked by `supersedes_id` / `superseded_by_id`; the newest version is the
*head* (`current_heads`), and only the head can be withdrawn or reviewed. A unit may withdraw its
head (`withdrawn_at`, with a reason): then nothing counts for that period until it reports again.
Idempotent retries (same Idempotency-Key and body) replay the original answer and create no version.

**Review (审核)**, when the schedule turns it on: reports arrive `pending` and count only once an admin
accepts them (from `reviewed_at` on); a `returned` report never counts and leaves the duty open until
the unit resubmits (a new version). Admin corrections are not reviewed. (`counts`) A newer version
that waits for review or was returned does not displace an accepted earlier one: a unit's correction
of an accepted report changes nothing until the office accepts it (and a returned correction leaves
the accepted original standing).

**Which report counts, and the task's state.** As of a moment *t* (now, or the end of an `as_of` day),
for each (task, unit, period): nothing counts if its head at *t* was withdrawn by *t*; otherwise the
newest version that existed at *t* and counts by review at *t* (no review needed, or accepted by *t*).
(`counting_versions`) Each owner unit's state on a task is its counting
status report for the **latest period** it has reported (by period end; a tie goes to the newer
report), never simply the latest arrival: a back-filled earlier quarter never moves a task backwards.
Each owner link (slot) takes the latest such state among the units reporting through it, and
`progress.derive_task_state` combines the slots. An admin correction sets status and progress
directly until an owner report counts after it. (`unit_states`, `task_state`)

**Duties.** For each period of the calendar, every owner of each task owes one report on it: lead and
responsible units, the members of a group that owns it, and cooperating units when the schedule says
so — unless the task was already `completed` before the period began (`ongoing` tasks keep owing).
A duty is `submitted` when a counting report on exactly that period was first sent by the deadline,
`late` when sent after it, `missing` when the deadline has passed without one, `due` while it has
not, and `excused` when an admin waived it (with a reason) and no report came. A correction keeps
the time of the version it corrects; a returned or withdrawn version's time does not count: once a
version counts (`counting_versions`), the duty's time is the sending time of the unit's oldest
version on that task and period that was neither returned nor withdrawn by then. Only periods begun
by `as_of` are listed; group membership and the schedule are today's. (`app/services/duties.py`)

**Lights (亮灯)**, evaluated for a date from the reports that existed then, with thresholds from
settings (`LIGHT_*`); each task gets `red`, `yellow` or `green` and the reasons behind it
(`app/services/lights.py`, rule set `LIGHT_RULES_VERSION`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.models import ReportKind, ReviewState, TaskStatus
from app.services.periods import parse_period
from app.services.progress import SlotState, derive_task_state


@dataclass(frozen=True)
class ReportFacts:
    """What the rules need of one progress report (a row of `progress_report`)."""

    id: int
    task_id: int
    unit_id: int | None  # None: an admin correction
    via_unit_id: int | None
    kind: ReportKind
    period: str
    status: TaskStatus
    percent: int
    created_at: datetime
    withdrawn_at: datetime | None = None
    review_state: ReviewState = ReviewState.not_required
    reviewed_at: datetime | None = None

    def counting_since(self) -> datetime:
        """When the report began to count (acceptance, under review)."""
        if self.review_state == ReviewState.accepted and self.reviewed_at is not None:
            return self.reviewed_at
        return self.created_at


def _existed(report: ReportFacts, at: datetime | None) -> bool:
    return at is None or report.created_at <= at


def counts(report: ReportFacts, at: datetime | None) -> bool:
    """Does this version count by itself at `at` (None: now): existed, not withdrawn, accepted if reviewed?"""
    if not _existed(report, at):
        return False
    if report.withdrawn_at is not None and (at is None or report.withdrawn_at <= at):
        return False
    if report.review_state == ReviewState.not_required:
        return True
    if report.review_state == ReviewState.accepted and report.reviewed_at is not None:
        return at is None or report.reviewed_at <= at
    return False  # pending, returned, or accepted only after `at`


def current_heads(
    reports: Iterable[ReportFacts], at: datetime | None
) -> dict[tuple[int, int | None, str], ReportFacts]:
    """The newest version of each (task, unit, period) that existed at `at`."""
    heads: dict[tuple[int, int | None, str], ReportFacts] = {}
    for report in reports:
        if not _existed(report, at):
            continue
        key = (report.task_id, report.unit_id, report.period)
        found = heads.get(key)
        if found is None or (report.created_at, report.id) > (found.created_at, found.id):
            heads[key] = report
    return heads


def _recency(report: ReportFacts) -> tuple[object, ...]:
    period = parse_period(report.period)
    return (period.end, report.created_at, report.id)


def counting_versions(
    reports: Iterable[ReportFacts], at: datetime | None
) -> dict[tuple[int, int | None, str], ReportFacts]:
    """Per (task, unit, period): the version that counts at `at` — none when the head was withdrawn,
    else the newest version that counts by review (a pending or returned newer one does not displace it)."""
    versions: dict[tuple[int, int | None, str], list[ReportFacts]] = {}
    for report in reports:
        if _existed(report, at):
            versions.setdefault((report.task_id, report.unit_id, report.period), []).append(report)
    found: dict[tuple[int, int | None, str], ReportFacts] = {}
    for key, candidates in versions.items():
        candidates.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        head = candidates[0]
        if head.withdrawn_at is not None and (at is None or head.withdrawn_at <= at):
            continue
        counting = next((r for r in candidates if counts(r, at)), None)
        if counting is not None:
            found[key] = counting
    return found


def unit_states(reports: Iterable[ReportFacts], at: datetime | None) -> dict[tuple[int, int], ReportFacts]:
    """Per (task, unit): the counting status report for the latest period that unit has reported."""
    best: dict[tuple[int, int], ReportFacts] = {}
    for (task_id, unit_id, _), head in counting_versions(reports, at).items():
        if unit_id is None or head.kind != ReportKind.status:
            continue
        found = best.get((task_id, unit_id))
        if found is None or _recency(head) > _recency(found):
            best[(task_id, unit_id)] = head
    return best


def task_state(
    *, owner_slots: list[int], reports: Iterable[ReportFacts], at: datetime | None
) -> tuple[TaskStatus, int, list[ReportFacts]] | None:
    """One task's status and progress at `at` from its reports (all of them, or at least all that
    existed at `at`), and the owner units' states behind it. None when nothing counts: the task is as
    the plan left it (not started)."""
    reports = list(reports)
    states = unit_states(reports, at)
    slots: dict[int, ReportFacts] = {}
    for state in states.values():
        if state.via_unit_id is None:
            continue
        found = slots.get(state.via_unit_id)
        if found is None or _recency(state) > _recency(found):
            slots[state.via_unit_id] = state
    corrections = [
        version
        for (_, unit_id, _), version in counting_versions(reports, at).items()
        if unit_id is None and version.kind == ReportKind.correction
    ]
    last_correction = max(corrections, key=lambda r: (r.created_at, r.id), default=None)
    newest_owner = max((s.counting_since() for s in states.values()), default=None)
    if last_correction is not None and (newest_owner is None or last_correction.created_at > newest_owner):
        return last_correction.status, last_correction.percent, list(states.values())
    if not states:
        return None
    status, progress = derive_task_state(
        owner_slots, {slot: SlotState(state.status, state.percent) for slot, state in slots.items()}
    )
    return status, progress, list(states.values())


def end_of_day(day: date, tz: str) -> datetime:
    """The last moment of a local calendar day, in UTC: what "as of that date" reads up to."""
    day = min(day, date.max - timedelta(days=1))  # `as_of=9999-12-31` reads everything, not an overflow
    start_next = datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(tz))
    return (start_next - timedelta(microseconds=1)).astimezone(UTC)


def local_date(moment: datetime, tz: str) -> date:
    """The county's calendar day of a stored UTC time (deadlines are compared in local days)."""
    return moment.astimezone(ZoneInfo(tz)).date()
