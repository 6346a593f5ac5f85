"""Duties and compliance on plain facts (rules: `app/services/duties.py`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import count

from app.models import Cadence, ReportKind, ReviewState, Role, TaskStatus, UnitKind
from app.services.cycle import ReportFacts, end_of_day
from app.services.duties import DutyState, compliance, compute_duties, owed_by
from app.services.supervision_facts import ExcusalFacts, PlanTerm, ScheduleFacts, SupervisionFacts, TaskFacts, UnitFacts

TZ = "Asia/Shanghai"
LEAD, RESP, COOP, GROUP, M1, M2 = 10, 11, 12, 20, 21, 22
_ids = count(1)


def local(day: str, hour: int = 12, minute: int = 0) -> datetime:
    """A county-local wall time, as the UTC the database stores."""
    return datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}+08:00").astimezone(UTC)


def report(
    unit: int,
    period: str,
    *,
    at: datetime,
    status: str = "in_progress",
    percent: int = 50,
    via: int | None = None,
    task: int = 1,
    **extra: object,
) -> ReportFacts:
    return ReportFacts(
        id=next(_ids),
        task_id=task,
        unit_id=unit,
        via_unit_id=via or unit,
        kind=extra.pop("kind", ReportKind.status),  # type: ignore[arg-type]
        period=period,
        status=TaskStatus(status),
        percent=percent,
        created_at=at,
        **extra,  # type: ignore[arg-type]
    )


def facts(
    reports: list[ReportFacts],
    *,
    as_of: date,
    links: list[tuple[int, Role]] | None = None,
    schedule: ScheduleFacts | None = None,
    excusals: list[ExcusalFacts] | None = None,
) -> SupervisionFacts:
    cutoff = end_of_day(as_of, TZ)
    return SupervisionFacts(
        cutoff=cutoff,
        plans={1: PlanTerm(1, "p", 2023, 2023)},
        schedules={1: schedule or ScheduleFacts()},
        tasks={1: TaskFacts(1, 1, "1.1.1", 1, date(2023, 12, 31), TaskStatus.not_started, 0)},
        links={1: links if links is not None else [(LEAD, Role.lead)]},
        members={GROUP: [M1, M2]},
        units={
            LEAD: UnitFacts("lead", UnitKind.government_department, "640422", "西吉县"),
            RESP: UnitFacts("resp", UnitKind.government_department, "640422", "西吉县"),
            COOP: UnitFacts("coop", UnitKind.government_department, "640422", "西吉县"),
            GROUP: UnitFacts("各乡镇", UnitKind.group, "640422", "西吉县"),
            M1: UnitFacts("m1", UnitKind.other, "640422", "西吉县"),
            M2: UnitFacts("m2", UnitKind.other, "640422", "西吉县"),
        },
        reports={1: [r for r in reports if r.created_at <= cutoff]},
        excusals=[e for e in excusals or [] if e.created_at <= cutoff],
    )


def states(f: SupervisionFacts, as_of: date, unit: int = LEAD) -> dict[str, DutyState]:
    return {d.period.label: d.state for d in compute_duties(f, as_of=as_of, tz=TZ) if d.unit_id == unit}


def test_who_owes_lead_responsible_group_members_and_cooperating_only_when_the_schedule_says() -> None:
    links = [(LEAD, Role.lead), (GROUP, Role.responsible), (COOP, Role.cooperating), (M1, Role.cooperating)]
    f = facts([], as_of=date(2023, 2, 1), links=links)
    assert owed_by(f, 1) == [(LEAD, Role.lead, LEAD), (M1, Role.responsible, GROUP), (M2, Role.responsible, GROUP)]
    f = facts([], as_of=date(2023, 2, 1), links=links, schedule=ScheduleFacts(cooperating_units_report=True))
    assert (COOP, Role.cooperating, COOP) in owed_by(f, 1)
    assert [o for o in owed_by(f, 1) if o[0] == M1] == [(M1, Role.responsible, GROUP)]  # owed once


def test_only_periods_begun_by_as_of_are_listed_and_states_follow_the_deadline() -> None:
    # Q1 2023 is due 2023-04-10 (quarterly, 10 days).
    on_time = report(LEAD, "2023-Q1", at=local("2023-04-10", 23, 30))  # the deadline day, local time
    f = facts([on_time], as_of=date(2023, 4, 5))
    assert states(f, date(2023, 4, 5)) == {"2023-Q1": DutyState.due, "2023-Q2": DutyState.due}
    f = facts([on_time], as_of=date(2023, 4, 10))
    assert states(f, date(2023, 4, 10))["2023-Q1"] == DutyState.submitted
    f = facts([on_time], as_of=date(2023, 8, 1))
    assert states(f, date(2023, 8, 1)) == {
        "2023-Q1": DutyState.submitted,
        "2023-Q2": DutyState.missing,
        "2023-Q3": DutyState.due,
    }


def test_late_is_judged_in_local_days() -> None:
    late = report(LEAD, "2023-Q1", at=local("2023-04-11", 0, 30))  # 2023-04-10 16:30 UTC, but the 11th locally
    f = facts([late], as_of=date(2023, 5, 1))
    assert states(f, date(2023, 5, 1))["2023-Q1"] == DutyState.late


def test_a_correction_keeps_the_time_of_the_version_it_corrects() -> None:
    first = report(LEAD, "2023-Q1", at=local("2023-04-09"), percent=30)
    fix = report(LEAD, "2023-Q1", at=local("2023-05-20"), percent=35)
    f = facts([first, fix], as_of=date(2023, 6, 1))
    (duty,) = [d for d in compute_duties(f, as_of=date(2023, 6, 1), tz=TZ) if d.period.label == "2023-Q1"]
    assert (duty.state, duty.report_id, duty.sent_at) == (DutyState.submitted, fix.id, first.created_at)


def test_under_review_a_first_report_counts_once_accepted_and_a_returned_one_never() -> None:
    schedule = ScheduleFacts(review_required=True)
    sent = local("2023-04-08")
    pending = report(LEAD, "2023-Q1", at=sent, review_state=ReviewState.pending)
    assert (
        states(facts([pending], as_of=date(2023, 4, 20), schedule=schedule), date(2023, 4, 20))["2023-Q1"]
        == DutyState.missing
    )
    accepted = report(LEAD, "2023-Q1", at=sent, review_state=ReviewState.accepted, reviewed_at=local("2023-04-25"))
    f = facts([accepted], as_of=date(2023, 4, 20), schedule=schedule)
    assert states(f, date(2023, 4, 20))["2023-Q1"] == DutyState.missing  # accepted only later
    f = facts([accepted], as_of=date(2023, 4, 25), schedule=schedule)
    assert states(f, date(2023, 4, 25))["2023-Q1"] == DutyState.submitted  # sent on time, counts once accepted
    returned = report(LEAD, "2023-Q1", at=sent, review_state=ReviewState.returned, reviewed_at=local("2023-04-09"))
    again = report(
        LEAD, "2023-Q1", at=local("2023-04-15"), review_state=ReviewState.accepted, reviewed_at=local("2023-04-16")
    )
    f = facts([returned, again], as_of=date(2023, 5, 1), schedule=schedule)
    assert states(f, date(2023, 5, 1))["2023-Q1"] == DutyState.late  # the resubmission's own time


def test_withdrawn_head_reopens_the_duty() -> None:
    sent = report(LEAD, "2023-Q1", at=local("2023-04-01"), withdrawn_at=local("2023-04-20"))
    assert states(facts([sent], as_of=date(2023, 4, 15)), date(2023, 4, 15))["2023-Q1"] == DutyState.submitted
    assert states(facts([sent], as_of=date(2023, 4, 21)), date(2023, 4, 21))["2023-Q1"] == DutyState.missing


def test_excused_while_the_excusal_stands_and_a_report_wins_over_it() -> None:
    excusal = ExcusalFacts(1, 1, LEAD, "2023-Q1", "机构改革", local("2023-04-12"), local("2023-06-01"))
    f = facts([], as_of=date(2023, 4, 11), excusals=[excusal])
    assert states(f, date(2023, 4, 11))["2023-Q1"] == DutyState.missing  # not yet excused
    f = facts([], as_of=date(2023, 5, 1), excusals=[excusal])
    assert states(f, date(2023, 5, 1))["2023-Q1"] == DutyState.excused
    f = facts([], as_of=date(2023, 6, 2), excusals=[excusal])
    assert states(f, date(2023, 6, 2))["2023-Q1"] == DutyState.missing  # revoked
    sent = report(LEAD, "2023-Q1", at=local("2023-05-02"))
    f = facts([sent], as_of=date(2023, 5, 3), excusals=[excusal])
    assert states(f, date(2023, 5, 3))["2023-Q1"] == DutyState.late


def test_no_duty_once_completed_before_the_period_began_but_ongoing_keeps_owing() -> None:
    done = report(LEAD, "2023-Q1", at=local("2023-03-31"), status="completed", percent=100)
    assert set(states(facts([done], as_of=date(2023, 12, 31)), date(2023, 12, 31))) == {"2023-Q1"}
    ongoing = report(LEAD, "2023-Q1", at=local("2023-03-31"), status="ongoing", percent=100)
    assert len(states(facts([ongoing], as_of=date(2023, 12, 31)), date(2023, 12, 31))) == 4
    # Completed on the first day of Q2: Q2 is still owed, Q3 not.
    done_q2 = report(LEAD, "2023-Q2", at=local("2023-04-01"), status="completed", percent=100)
    assert set(states(facts([done_q2], as_of=date(2023, 12, 31)), date(2023, 12, 31))) == {"2023-Q1", "2023-Q2"}


def test_group_members_owe_each_and_their_own_reports_count() -> None:
    f = facts(
        [report(M1, "2023-Q1", at=local("2023-04-02"), via=GROUP)],
        as_of=date(2023, 4, 30),
        links=[(GROUP, Role.responsible)],
    )
    assert states(f, date(2023, 4, 30), M1)["2023-Q1"] == DutyState.submitted
    assert states(f, date(2023, 4, 30), M2)["2023-Q1"] == DutyState.missing


def test_monthly_cadence_and_compliance_rate_over_judgeable_duties() -> None:
    schedule = ScheduleFacts(cadence=Cadence.monthly, deadline_days=5)
    reports = [
        report(LEAD, "2023-01", at=local("2023-02-03")),  # on time
        report(LEAD, "2023-02", at=local("2023-03-09")),  # late
    ]
    excusal = ExcusalFacts(1, 1, LEAD, "2023-03", "休整", local("2023-03-01"), None)
    f = facts(reports, as_of=date(2023, 5, 3), schedule=schedule, excusals=[excusal])
    found = compute_duties(f, as_of=date(2023, 5, 3), tz=TZ)
    assert [d.state for d in found] == [
        DutyState.submitted,
        DutyState.late,
        DutyState.excused,
        DutyState.due,  # 2023-04 is due by 2023-05-05
        DutyState.due,
    ]
    per_unit, total = compliance(found)
    row = per_unit[LEAD]
    assert (row.owed, row.on_time, row.late, row.missing, row.due, row.excused) == (5, 1, 1, 0, 2, 1)
    assert row.rate == 0.5 and row.reported_rate == 1.0 and total.owed == 5
    _, empty = compliance([])
    assert empty.rate is None


def test_a_period_limit_keeps_other_periods_out() -> None:
    f = facts([], as_of=date(2023, 12, 31))
    assert [d.period.label for d in compute_duties(f, as_of=date(2023, 12, 31), tz=TZ, periods={"2023-Q2"})] == [
        "2023-Q2"
    ]


def test_a_correction_waiting_for_review_or_returned_leaves_the_accepted_original_standing() -> None:
    schedule = ScheduleFacts(review_required=True)
    original = report(
        LEAD, "2023-Q1", at=local("2023-04-08"), review_state=ReviewState.accepted, reviewed_at=local("2023-04-09")
    )
    pending = report(LEAD, "2023-Q1", at=local("2023-04-20"), review_state=ReviewState.pending)
    f = facts([original, pending], as_of=date(2023, 4, 25), schedule=schedule)
    (duty,) = [d for d in compute_duties(f, as_of=date(2023, 4, 25), tz=TZ) if d.period.label == "2023-Q1"]
    assert (duty.state, duty.report_id) == (DutyState.submitted, original.id)
    returned = report(
        LEAD, "2023-Q1", at=local("2023-04-20"), review_state=ReviewState.returned, reviewed_at=local("2023-04-21")
    )
    again = report(
        LEAD, "2023-Q1", at=local("2023-04-22"), review_state=ReviewState.accepted, reviewed_at=local("2023-04-23")
    )
    f = facts([original, returned, again], as_of=date(2023, 4, 25), schedule=schedule)
    (duty,) = [d for d in compute_duties(f, as_of=date(2023, 4, 25), tz=TZ) if d.period.label == "2023-Q1"]
    # The accepted original met the duty on time; the returned correction's time never counts.
    assert (duty.state, duty.report_id, duty.sent_at) == (DutyState.submitted, again.id, original.created_at)
