"""Done when: the office's year, tried against a real running server on SQLite and PostgreSQL.

A server (uvicorn, in this process, on a fresh migrated and seeded database) is driven over real HTTP
through a scripted 2023 while `time_machine` moves the clock: a quarterly schedule with review on;
reports on time, late and never; a correction; a back-filled earlier quarter sent after a later one;
a report returned in review and resubmitted; an excusal. Then every duty, compliance figure, light
with its reason rule ids, and task reads as of past dates are compared with an ORACLE computed here,
from the raw list of what the script sent, by its own simple implementation of the documented rules
(`app/services/cycle.py`, `duties.py`, `lights.py`) — it calls nothing in `app.services`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from sqlmodel import Session

from app.core.config import get_settings
from app.db import get_engine, make_engine
from app.importer.service import seed_if_empty
from app.migrate import upgrade_to_head
from tests.conftest import BACKENDS, fresh_database_url
from tests.factories import make_key, serving_in_thread

TZ = ZoneInfo("Asia/Shanghai")
SLUG = "xiji-fzsh-2021-2025"
PLAN = f"/api/v1/plans/{SLUG}"
TERM_START = date(2021, 1, 1)
DEADLINE_DAYS = 10
MISSING_DAYS, DUE_SOON_DAYS, LAG_TOLERANCE = 10, 30, 20  # the documented defaults


# --- The server -------------------------------------------------------------------------------


@dataclass
class Office:
    http: httpx.Client
    keys: dict[str, str]


@pytest.fixture(params=BACKENDS)
def office(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Office]:
    for url in fresh_database_url(str(request.param), tmp_path):
        engine = make_engine(url)
        upgrade_to_head(engine)
        with Session(engine) as session:
            seed_if_empty(session=session, settings=get_settings())
            session.commit()
            keys = {
                name: make_key(session, unit=name)
                for name in ("县司法局", "县委宣传部", "县人大办", "县政府办", "团县委")
            }
            keys["admin"] = make_key(session, admin=True)
        engine.dispose()
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        get_engine.cache_clear()
        try:
            with serving_in_thread() as base_url, httpx.Client(base_url=base_url, trust_env=False, timeout=60) as http:
                yield Office(http=http, keys=keys)
        finally:
            get_engine().dispose()
            get_engine.cache_clear()
            monkeypatch.delenv("DATABASE_URL")
            get_settings.cache_clear()


def local(day: str, hour: int = 10) -> datetime:
    """A county-local moment: `2023-04-06` (10:00) or `2023-10-10T23:30`."""
    moment = datetime.fromisoformat(day)
    return moment.replace(tzinfo=TZ) if "T" in day else moment.replace(hour=hour, tzinfo=TZ)


# --- What the script sends, as the oracle sees it -------------------------------------------------


@dataclass
class Sent:
    id: int
    task: str
    unit: str
    period: str
    status: str
    percent: int
    at: datetime  # when it was sent (UTC)
    decisions: list[tuple[str, datetime]] = field(default_factory=list)  # (accept|return, when)
    withdrawn: datetime | None = None


@dataclass
class Excusal:
    id: int
    task: str
    unit: str
    period: str
    at: datetime
    revoked: datetime | None = None


@dataclass
class Script:
    office: Office
    sent: list[Sent] = field(default_factory=list)
    excusals: list[Excusal] = field(default_factory=list)

    def call(self, when: datetime, method: str, path: str, key: str, body: dict[str, Any]) -> Any:
        with time_machine.travel(when, tick=True):
            response = self.office.http.request(method, path, json=body, headers={"Authorization": key})
            moment = datetime.now(UTC)
        assert response.status_code in (200, 201), response.text
        return response.json(), moment

    def report(self, day: str, task: str, unit: str, period: str, status: str, percent: int) -> Sent:
        body = {"status": status, "percent": percent, "summary": f"{unit} {period} 进展", "period": period}
        out, moment = self.call(local(day), "POST", f"{PLAN}/tasks/{task}/progress", self.office.keys[unit], body)
        sent = Sent(out["id"], task, unit, period, status, percent, moment)
        self.sent.append(sent)
        return sent

    def review(self, day: str, sent: Sent, decision: str, reason: str | None = None) -> None:
        body = {"decision": decision, **({"reason": reason} if reason else {})}
        _, moment = self.call(local(day), "POST", f"/api/v1/progress/{sent.id}/review", self.office.keys["admin"], body)
        sent.decisions.append((decision, moment))

    def withdraw(self, day: str, sent: Sent) -> None:
        body = {"reason": "数据有误,撤回重报"}
        _, moment = self.call(
            local(day), "POST", f"/api/v1/progress/{sent.id}/withdraw", self.office.keys[sent.unit], body
        )
        sent.withdrawn = moment

    def excuse(self, day: str, task: str, unit: str, period: str) -> Excusal:
        body = {"task": task, "unit": unit, "period": period, "reason": "机构改革,职责划转"}
        out, moment = self.call(local(day), "POST", f"{PLAN}/excusals", self.office.keys["admin"], body)
        excusal = Excusal(out["id"], task, unit, period, moment)
        self.excusals.append(excusal)
        return excusal

    def revoke(self, day: str, excusal: Excusal) -> None:
        path = f"{PLAN}/excusals/{excusal.id}"
        _, excusal.revoked = self.call(local(day), "DELETE", path, self.office.keys["admin"], {})

    def accept_batch(self, day: str, sent: list[Sent]) -> None:
        body = {"items": [{"report": s.id, "decision": "accept"} for s in sent]}
        out, moment = self.call(local(day), "POST", f"{PLAN}/reviews:batch", self.office.keys["admin"], body)
        assert out["accepted"] == len(sent), out
        for s in sent:
            s.decisions.append(("accept", moment))

    """The year. Units: 县司法局 (J), 县委宣传部 (P), 县人大办 (R), 县政府办 (G, silent all year), 团县委 (for 各人民团体)."""


def run_2023(script: Script) -> None:
    """The year. Units: 县司法局 (J), 县委宣传部 (P), 县人大办 (R), 县政府办 (G, silent all year)."""
    schedule = {"cadence": "quarterly", "deadline_days": 10, "cooperating_units_report": False, "review_required": True}
    script.call(local("2023-01-02"), "PUT", f"{PLAN}/schedule", script.office.keys["admin"], schedule)
    s = script
    # Q1: J on time, P on time, R late.
    j1 = s.report("2023-04-06", "2.3.3", "县司法局", "2023-Q1", "in_progress", 20)
    s.review("2023-04-07", j1, "accept")
    p1 = s.report("2023-04-08", "2.1.1", "县委宣传部", "2023-Q1", "in_progress", 30)
    s.review("2023-04-09", p1, "accept")
    r1 = s.report("2023-04-12", "3.1.1", "县人大办", "2023-Q1", "in_progress", 10)
    s.review("2023-04-13", r1, "accept")
    # Q2: P completes 2.1.1 (so owes nothing from Q4 on); J's report is returned and resubmitted late;
    # R reports a delay.
    p2 = s.report("2023-07-03", "2.1.1", "县委宣传部", "2023-Q2", "completed", 100)
    s.review("2023-07-04", p2, "accept")
    j2 = s.report("2023-07-05", "2.3.3", "县司法局", "2023-Q2", "in_progress", 40)
    s.review("2023-07-06", j2, "return", "佐证材料不全")
    # 5.3.1 belongs to the group 各人民团体: its member 团县委 reports for it, 县工商联 never does.
    y2 = s.report("2023-07-06", "5.3.1", "团县委", "2023-Q2", "in_progress", 35)
    s.review("2023-07-07", y2, "accept")
    r2 = s.report("2023-07-09", "3.1.1", "县人大办", "2023-Q2", "delayed", 15)
    s.review("2023-07-10", r2, "accept")
    j2b = s.report("2023-07-12", "2.3.3", "县司法局", "2023-Q2", "in_progress", 45)
    s.review("2023-07-13", j2b, "accept")
    # Q3: J reports on time, then corrects it after the deadline (keeps the on-time time); P reports in
    # the last minute of the deadline day, R in the first minute after it; J's Q3 on 3.1.1 is late.
    j3 = s.report("2023-10-08", "2.3.3", "县司法局", "2023-Q3", "in_progress", 60)
    s.review("2023-10-09", j3, "accept")
    j3c = s.report("2023-10-15", "2.3.3", "县司法局", "2023-Q3", "in_progress", 65)
    s.review("2023-10-16", j3c, "accept")
    p3 = s.report("2023-10-10T23:30", "2.1.1", "县委宣传部", "2023-Q3", "completed", 100)  # the last local minute
    s.review("2023-10-11", p3, "accept")
    r3 = s.report("2023-10-11T00:30", "3.1.1", "县人大办", "2023-Q3", "delayed", 20)  # still the 10th in UTC
    s.review("2023-10-12", r3, "accept")
    jr3 = s.report("2023-10-20", "3.1.1", "县司法局", "2023-Q3", "in_progress", 50)
    s.review("2023-10-21", jr3, "accept")
    # G's Q3 on 4.1.1 is excused for a while, then the excusal is revoked: missing again.
    waiver = s.excuse("2023-10-12", "4.1.1", "县政府办", "2023-Q3")
    s.revoke("2023-10-30", waiver)
    # Q4: J on 3.1.1, then a back-fill of the Q2 it never sent; J on 2.3.3 on time; an excusal for G.
    jr4 = s.report("2024-01-05", "3.1.1", "县司法局", "2023-Q4", "in_progress", 70)
    s.review("2024-01-06", jr4, "accept")
    jr2 = s.report("2024-01-08", "3.1.1", "县司法局", "2023-Q2", "in_progress", 30)
    j4 = s.report("2024-01-09", "2.3.3", "县司法局", "2023-Q4", "in_progress", 80)
    s.accept_batch("2024-01-10", [jr2, j4])
    # R reports Q4 on 3.1.1, is accepted, then withdraws it: its state falls back to its Q3 delay.
    r4 = s.report("2024-01-09", "3.1.1", "县人大办", "2023-Q4", "in_progress", 25)
    s.review("2024-01-10", r4, "accept")
    s.withdraw("2024-01-12", r4)
    s.excuse("2024-01-15", "4.1.1", "县政府办", "2023-Q4")


# --- The oracle: the documented rules, written again from scratch -----------------------------------


def cutoff(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=TZ).astimezone(UTC) - timedelta(
        microseconds=1
    )


def quarter_bounds(label: str) -> tuple[date, date]:
    year, q = int(label[:4]), int(label[-1])
    start = date(year, 3 * q - 2, 1)
    end = (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)) - timedelta(days=1)
    return start, end


QUARTERS = [f"{y}-Q{q}" for y in range(2021, 2026) for q in range(1, 5)]


@dataclass
class TaskInfo:
    code: str
    due: date
    slots: list[str]  # the lead/responsible links (a group among them stands for its members)
    owers: list[str]  # the units owing reports: the links, groups replaced by their members
    members: dict[str, list[str]]  # group slot → its members


class Oracle:
    def __init__(self, sent: list[Sent], excusals: list[Excusal], tasks: list[TaskInfo]):
        self.sent, self.excusals, self.tasks = sent, excusals, tasks

    def versions(self, task: str, unit: str, period: str, at: datetime) -> list[Sent]:
        found = [s for s in self.sent if (s.task, s.unit, s.period) == (task, unit, period) and s.at <= at]
        return sorted(found, key=lambda s: s.at)

    @staticmethod
    def decision(s: Sent, at: datetime) -> str | None:
        done = [d for d, when in s.decisions if when <= at]
        return done[-1] if done else None

    def counting(self, task: str, unit: str, period: str, at: datetime) -> Sent | None:
        """Nothing once the head is withdrawn; else the newest accepted version (a pending or returned
        newer one does not displace it)."""
        versions = self.versions(task, unit, period, at)
        if not versions or (versions[-1].withdrawn is not None and versions[-1].withdrawn <= at):
            return None
        accepted = [v for v in versions if self.decision(v, at) == "accept"]
        return accepted[-1] if accepted else None

    def unit_state(self, task: str, unit: str, at: datetime) -> Sent | None:
        periods = {s.period for s in self.sent if s.task == task and s.unit == unit}
        heads = [h for p in periods if (h := self.counting(task, unit, p, at)) is not None]
        return max(heads, key=lambda h: (quarter_bounds(h.period)[1], h.at), default=None)

    def task_state(self, info: TaskInfo, at: datetime) -> tuple[str, int, dict[str, str]]:
        units = {u: st for u in info.owers if (st := self.unit_state(info.code, u, at)) is not None}
        states: dict[str, Sent] = {}
        for slot in info.slots:
            through = [units[u] for u in info.members.get(slot, [slot]) if u in units]
            if through:
                states[slot] = max(through, key=lambda h: (quarter_bounds(h.period)[1], h.at))
        if not states:
            return "not_started", 0, {}
        statuses = {s.status for s in states.values()}
        progress = round(sum(s.percent for s in states.values()) / len(info.slots))
        every = len(states) == len(info.slots)
        if "delayed" in statuses:
            status = "delayed"
        elif every and statuses == {"completed"}:
            status, progress = "completed", 100
        elif every and statuses <= {"completed", "ongoing"}:
            status = "ongoing"
        elif statuses == {"not_started"}:
            status, progress = "not_started", 0
        else:
            status = "in_progress"
        return status, progress, {u: s.status for u, s in units.items()}

    def duties(self, as_of: date) -> dict[tuple[str, str, str], str]:
        at = cutoff(as_of)
        out: dict[tuple[str, str, str], str] = {}
        for info in self.tasks:
            for period in QUARTERS:
                start, end = quarter_bounds(period)
                if start > as_of:
                    continue
                if self.task_state(info, cutoff(start - timedelta(days=1)))[0] == "completed":
                    continue
                deadline = end + timedelta(days=DEADLINE_DAYS)
                for unit in info.owers:
                    out[(info.code, unit, period)] = self.duty_state(info.code, unit, period, at, as_of, deadline)
        return out

    def duty_state(self, task: str, unit: str, period: str, at: datetime, as_of: date, deadline: date) -> str:
        if self.counting(task, unit, period, at) is not None:
            kept = [
                v
                for v in self.versions(task, unit, period, at)
                if self.decision(v, at) != "return" and not (v.withdrawn is not None and v.withdrawn <= at)
            ]
            since = min(v.at for v in kept)
            return "submitted" if since.astimezone(TZ).date() <= deadline else "late"
        if any(
            (e.task, e.unit, e.period) == (task, unit, period) and e.at <= at and (e.revoked is None or e.revoked > at)
            for e in self.excusals
        ):
            return "excused"
        return "missing" if deadline < as_of else "due"

    def lights(self, as_of: date) -> dict[str, tuple[str, list[str], str, int]]:
        at = cutoff(as_of)
        closed = [p for p in QUARTERS if quarter_bounds(p)[1] + timedelta(days=DEADLINE_DAYS) < as_of]
        duties = self.duties(as_of)
        out = {}
        for info in self.tasks:
            status, progress, owners = self.task_state(info, at)
            rules = []
            if info.due < as_of and status != "completed":
                rules.append("overdue")
            if "delayed" in owners.values():
                rules.append("owner_delayed")
            if closed and status != "completed":
                deadline = quarter_bounds(closed[-1])[1] + timedelta(days=DEADLINE_DAYS)
                if (as_of - deadline).days > MISSING_DAYS and any(
                    duties.get((info.code, u, closed[-1])) == "missing" for u in info.owers
                ):
                    rules.append("duty_missing")
            if status not in ("completed", "ongoing"):
                span = (info.due - TERM_START).days
                expected = max(0, min(100, round(100 * (as_of - TERM_START).days / span)))
                if expected - progress > LAG_TOLERANCE:
                    rules.append("behind_schedule")
            if status != "completed" and 0 <= (info.due - as_of).days <= DUE_SOON_DAYS:
                rules.append("due_soon")
            heads = [self.versions(info.code, s.unit, s.period, at) for s in self.sent if s.task == info.code]
            if any(v and self.decision(v[-1], at) == "return" for v in heads):
                rules.append("returned_unresolved")
            red = {"overdue", "owner_delayed", "duty_missing"}
            light = "red" if red & set(rules) else "yellow" if rules else "green"
            out[info.code] = (light, rules, status, progress)
        return out


# --- Reading what the server says ------------------------------------------------------------------


def get(http: httpx.Client, path: str, **params: Any) -> Any:
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def all_duties(http: httpx.Client, as_of: date) -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"as_of": as_of.isoformat(), "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = get(http, f"{PLAN}/duties", **params)
        for d in page["items"]:
            key = (d["task"], d["unit"]["name"], d["period"])
            assert key not in out, key
            out[key] = d["state"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


CHECK_DATES = [
    date(2023, 4, 10),
    date(2023, 7, 8),  # J's Q2 report returned, not yet resubmitted
    date(2023, 7, 20),
    date(2023, 10, 10),  # the Q3 deadline day: silent duties still due
    date(2023, 10, 11),  # … and missing the day after
    date(2023, 10, 15),  # J's Q3 correction sent, waiting for review
    date(2023, 10, 20),  # the silent Q3 duties missing 10 days: not yet more than LIGHT_MISSING_DAYS
    date(2023, 10, 21),  # … 11 days
    date(2023, 10, 25),
    date(2024, 1, 7),  # J's Q4 on 3.1.1 in, the Q2 back-fill not yet
    date(2024, 1, 11),  # R's Q4 accepted, not yet withdrawn
    date(2024, 1, 25),
]
TODAY = date(2024, 2, 1)


def test_the_office_year_matches_the_oracle(office: Office) -> None:
    script = Script(office)
    run_2023(script)
    http = office.http
    with time_machine.travel(local(TODAY.isoformat()), tick=True):
        listed = get(http, f"{PLAN}/tasks", limit=500, fields="code,due,responsibilities")["items"]
        members: dict[str, list[str]] = {}
        tasks = []
        for task in listed:
            links = [r["unit"] for r in task["responsibilities"] if r["role"] != "cooperating"]
            for unit in links:
                if unit["kind"] == "group" and unit["name"] not in members:
                    detail = get(http, f"/api/v1/units/{unit['id']}")
                    members[unit["name"]] = [m["name"] for m in detail["members"]]
            slots = list(dict.fromkeys(u["name"] for u in links))
            owers = [m for slot in slots for m in members.get(slot, [slot])]
            tasks.append(
                TaskInfo(
                    task["code"],
                    date.fromisoformat(task["due"]),
                    slots,
                    list(dict.fromkeys(owers)),
                    {g: members[g] for g in slots if g in members},
                )
            )
        oracle = Oracle(script.sent, script.excusals, tasks)

        for as_of in [*CHECK_DATES, TODAY]:
            # Every duty's state.
            expected = oracle.duties(as_of)
            assert all_duties(http, as_of) == expected, as_of
            # Every compliance figure, for each 2023 quarter begun by then.
            for period in [p for p in QUARTERS if p.startswith("2023") and quarter_bounds(p)[0] <= as_of]:
                report = get(http, f"{PLAN}/compliance", period=period, as_of=as_of.isoformat())
                mine = {k: v for k, v in expected.items() if k[2] == period}
                for row in [*report["items"], report["totals"]]:
                    unit = row["unit"]["name"] if row["unit"] else None
                    states = [v for k, v in mine.items() if unit is None or k[1] == unit]
                    counts = {s: states.count(s) for s in ("submitted", "late", "missing", "due", "excused")}
                    judgeable = len(states) - counts["excused"] - counts["due"]
                    assert row["owed"] == len(states), (as_of, period, unit)
                    assert (row["on_time"], row["late"], row["missing"], row["due"], row["excused"]) == (
                        counts["submitted"],
                        counts["late"],
                        counts["missing"],
                        counts["due"],
                        counts["excused"],
                    ), (as_of, period, unit)
                    assert row["rate"] == (round(counts["submitted"] / judgeable, 4) if judgeable else None)
                assert {r["unit"]["name"] for r in report["items"]} == {k[1] for k in mine}
                rates = [r["rate"] for r in report["items"] if r["rate"] is not None]
                assert rates == sorted(rates)  # worst first
            # Every task's status, progress, overdue, light and reason rule ids, as of that day.
            lights = oracle.lights(as_of)
            params = {"limit": 500, "fields": "code,status,progress,overdue,light,light_reasons"}
            read = get(http, f"{PLAN}/tasks", as_of=as_of.isoformat(), **params)["items"]
            for task in read:
                light, rules, status, progress = lights[task["code"]]
                got = (task["light"], [r["rule"] for r in task["light_reasons"]], task["status"], task["progress"])
                assert got == (light, rules, status, progress), (as_of, task["code"])
                due = next(t.due for t in tasks if t.code == task["code"])
                assert task["overdue"] == (due < as_of and status != "completed")
            # The red list with its reasons, in one request.
            red = get(http, f"{PLAN}/tasks", light="red", as_of=as_of.isoformat(), limit=500, fields="code")["items"]
            assert [t["code"] for t in red] == [c for c, v in lights.items() if v[0] == "red"]
            # A unit's to-do list.
            todo = get(http, "/api/v1/units/县司法局/duties", as_of=as_of.isoformat())["items"]
            owed = {k for k, v in expected.items() if k[1] == "县司法局" and v in ("missing", "due")}
            assert {(d["task"], d["unit"]["name"], d["period"]) for d in todo} == owed

        # The story's landmarks, stated plainly (the oracle agreed with every one above).
        final = oracle.duties(TODAY)
        assert final[("2.3.3", "县司法局", "2023-Q2")] == "late"  # returned, resubmitted after the deadline
        assert final[("2.3.3", "县司法局", "2023-Q3")] == "submitted"  # the correction keeps its time
        assert oracle.duties(date(2023, 10, 15))[("2.3.3", "县司法局", "2023-Q3")] == "submitted"  # pending fix
        assert final[("3.1.1", "县人大办", "2023-Q4")] == "missing"  # withdrawn
        assert oracle.duties(date(2024, 1, 11))[("3.1.1", "县人大办", "2023-Q4")] == "submitted"
        assert final[("3.1.1", "县司法局", "2023-Q2")] == "late"  # the back-fill
        assert final[("4.1.1", "县政府办", "2023-Q4")] == "excused"
        assert final[("4.1.1", "县政府办", "2023-Q3")] == "missing"  # revoked
        assert oracle.duties(date(2023, 10, 25))[("4.1.1", "县政府办", "2023-Q3")] == "excused"
        assert ("2.1.1", "县委宣传部", "2023-Q4") not in final  # completed before Q4 began
        assert final[("2.1.1", "县委宣传部", "2023-Q3")] == "submitted"  # 23:30 local on the deadline day
        task = get(http, f"{PLAN}/tasks/3.1.1")
        assert final[("3.1.1", "县人大办", "2023-Q3")] == "late"  # half past midnight, local time
        assert (task["status"], task["progress"]) == ("delayed", round((20 + 70) / 2))  # Q4 kept over the Q2 back-fill
        assert final[("5.3.1", "团县委", "2023-Q2")] == "submitted"
        assert final[("5.3.1", "县工商联", "2023-Q2")] == "missing"  # a group owes through each member
        group_task = get(http, f"{PLAN}/tasks/5.3.1", as_of="2023-07-31")
        assert (group_task["status"], group_task["progress"]) == ("in_progress", 35)
        returned = get(http, f"{PLAN}/tasks/2.3.3", as_of="2023-07-08")
        assert "returned_unresolved" in [r["rule"] for r in returned["light_reasons"]]
