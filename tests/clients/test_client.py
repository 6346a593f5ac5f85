"""`plan_api_client.PlanAPI` against a real running server (SQLite and PostgreSQL): lists that follow
`next_cursor`, retry-safe submits, corrections that supersede, typed problem details; and its own
retry logic (backoff, Retry-After) against a stub transport."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from plan_api_client import PlanAPI, PlanAPIError, idempotency_key
from plan_api_client import cli as client_cli
from plan_api_client.sheets import STATUS_LABELS
from typer.testing import CliRunner

from app.models import TaskStatus
from tests.factories import SEED_SLUG, Live

SFJ = "县司法局"


@pytest.fixture(scope="module")
def sfj_key(live: Live) -> str:
    return live.key(SFJ)


def report(
    percent: int = 40, *, period: str = "2023-Q1", summary: str = "组建普法志愿者队伍 12 支"
) -> dict[str, object]:
    return {
        "status": "in_progress",
        "percent": percent,
        "summary": summary,
        "period": period,
        "evidence": ["西司发〔2023〕5号"],
    }


def test_status_labels_are_the_servers() -> None:
    assert {s.value: s.label for s in TaskStatus} == STATUS_LABELS


def test_unit_tasks_follow_next_cursor(live: Live) -> None:
    with PlanAPI(live.base_url) as api:
        paged = [t["code"] for t in api.unit_tasks(SFJ, include_groups=True, limit=7)]
        whole = httpx.get(
            f"{live.base_url}/api/v1/units/{SFJ}/tasks", params={"include_groups": "true", "limit": 500}
        ).json()["items"]
        leads = list(api.unit_tasks(SFJ, role="lead"))
    assert len(paged) > 7 * 3  # several pages were followed
    assert paged == [t["code"] for t in whole]
    assert leads and all(any(r["role"] == "lead" for r in t["responsibilities"]) for t in leads)


def test_unit_duties_lists_what_the_unit_owes(live: Live) -> None:
    with PlanAPI(live.base_url) as api:
        duties = list(api.unit_duties(SFJ, period="2023-Q4"))
    assert duties
    assert {d["period"] for d in duties} == {"2023-Q4"}
    assert {d["state"] for d in duties} == {"missing"}  # nothing was reported for 2023-Q4
    assert {d["role"] for d in duties} <= {"lead", "responsible"}


def test_submitting_the_same_report_twice_stores_it_once(live: Live, sfj_key: str) -> None:
    with PlanAPI(live.base_url, sfj_key) as api:
        first = api.submit("2.3.3", report(), plan=SEED_SLUG)
        again = api.submit("2.3.3", report(), plan=SEED_SLUG)
        history = list(api.history("2.3.3", plan=SEED_SLUG, period="2023-Q1"))
    assert (first.outcome, again.outcome) == ("created", "replayed")
    assert first.report is not None and again.report is not None
    assert again.report["id"] == first.report["id"]
    assert [r["id"] for r in history] == [first.report["id"]]


def test_a_changed_report_supersedes_the_earlier_one(live: Live, sfj_key: str) -> None:
    with PlanAPI(live.base_url, sfj_key) as api:
        first = api.submit("2.3.4", report(40), plan=SEED_SLUG)
        changed = api.submit("2.3.4", report(60), plan=SEED_SLUG)
        history = list(api.history("2.3.4", plan=SEED_SLUG, period="2023-Q1"))
    assert first.report is not None and changed.report is not None
    assert changed.outcome == "created" and changed.corrected and not first.corrected
    assert changed.report["supersedes"] == first.report["id"]
    assert [(r["percent"], r["current"]) for r in history] == [(60, True), (40, False)]


def test_going_back_to_earlier_content_is_a_new_version(live: Live, sfj_key: str) -> None:
    with PlanAPI(live.base_url, sfj_key) as api:
        a = api.submit("2.4.1", report(40, period="2024-Q2"), plan=SEED_SLUG)
        b = api.submit("2.4.1", report(60, period="2024-Q2"), plan=SEED_SLUG)
        back = api.submit("2.4.1", report(40, period="2024-Q2"), plan=SEED_SLUG)  # A's key replays A, replaced by B
        once_more = api.submit("2.4.1", report(40, period="2024-Q2"), plan=SEED_SLUG)
        many = api.submit_many([{"task": "2.4.1", **report(60, period="2024-Q2")}], plan=SEED_SLUG)  # B again
        many_again = api.submit_many([{"task": "2.4.1", **report(60, period="2024-Q2")}], plan=SEED_SLUG)
        history = list(api.history("2.4.1", plan=SEED_SLUG, period="2024-Q2"))
    assert a.report and b.report and back.report and once_more.report and many[0].report and many_again[0].report
    assert back.outcome == "created" and back.report["supersedes"] == b.report["id"]
    assert once_more.outcome == "replayed" and once_more.report["id"] == back.report["id"]
    assert many[0].outcome == "created" and many[0].report["supersedes"] == back.report["id"]
    assert many_again[0].outcome == "replayed" and many_again[0].report["id"] == many[0].report["id"]
    assert [(r["percent"], r["current"]) for r in history] == [(60, True), (40, False), (60, False), (40, False)]


def test_a_refusal_raises_the_typed_problem(live: Live, sfj_key: str) -> None:
    with PlanAPI(live.base_url, sfj_key) as api:
        with pytest.raises(PlanAPIError) as refused:
            api.submit("2.1.3", report(), plan=SEED_SLUG)  # 2.1.3 is 县教育体育局's alone
        assert refused.value.status == 403
        assert refused.value.code == "not-linked-to-task"
        assert "县司法局与任务 2.1.3 无关联" in refused.value.detail
        with pytest.raises(PlanAPIError) as invalid:
            api.submit("2.3.3", report(period="2023-11"), plan=SEED_SLUG)  # finer than the quarterly cadence
        assert invalid.value.status == 422
        assert [e.field for e in invalid.value.errors] == ["body.period"]
    with PlanAPI(live.base_url, "pa_00000000_not-a-key") as api, pytest.raises(PlanAPIError) as unauthenticated:
        api.submit("2.3.3", report(), plan=SEED_SLUG)
    assert unauthenticated.value.status == 401


def test_submit_many_answers_per_report_across_batches(live: Live, sfj_key: str) -> None:
    reports = [
        {"task": "2.4.1", **report(10, period="2023-Q2")},
        {"task": "2.1.3", **report(10, period="2023-Q2")},  # not 县司法局's: refused, the others stored
        {"task": "2.4.2", **report(20, period="2023-Q2")},
    ]
    chunks: list[tuple[int, int]] = []
    with PlanAPI(live.base_url, sfj_key) as api:
        results = api.submit_many(reports, plan=SEED_SLUG, chunk_size=2, on_chunk=lambda d, t: chunks.append((d, t)))
        again = api.submit_many(reports, plan=SEED_SLUG)
    assert chunks == [(2, 3), (3, 3)]
    assert [(r.index, r.task, r.outcome) for r in results] == [
        (0, "2.4.1", "created"),
        (1, "2.1.3", "error"),
        (2, "2.4.2", "created"),
    ]
    assert results[1].error is not None and results[1].error.status == 403
    assert [r.outcome for r in again] == ["replayed", "error", "replayed"]
    assert [r.report["id"] for r in again if r.report] == [r.report["id"] for r in results if r.report]


def test_the_department_commands_against_the_server(live: Live, sfj_key: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"PLAN_API_URL": live.base_url, "PLAN_API_KEY": sfj_key}
    listed = runner.invoke(client_cli.app, ["tasks", "--unit", SFJ, "--plan", SEED_SLUG], env=env)
    assert listed.exit_code == 0, listed.output
    lines = {line.split("\t")[1]: line.split("\t") for line in listed.output.splitlines()}
    assert lines["2.2.5"][2] == "责任" and lines["2.3.3"][2] == "牵头、配合"
    assert "2.1.3" not in lines

    sheet = tmp_path / "q3.json"
    sheet.write_text(json.dumps([{"task": "2.4.1", **report(30, period="2023-Q3")}]), encoding="utf-8")
    refused = runner.invoke(
        client_cli.app, ["submit", str(sheet), "--plan", SEED_SLUG, "--key", "pa_00000000_x"], env=env
    )
    assert refused.exit_code == 1
    assert "401" in refused.output
    assert "第 1 条\t2.4.1\t2023-Q3\t失败" in refused.output
    assert "失败" in (tmp_path / "q3.results.csv").read_text(encoding="utf-8-sig")
    with PlanAPI(live.base_url) as api:
        assert list(api.history("2.4.1", plan=SEED_SLUG, period="2023-Q3")) == []
    sent = runner.invoke(client_cli.app, ["submit", str(sheet), "--plan", SEED_SLUG], env=env)
    assert sent.exit_code == 0, sent.output
    assert "新增 1 / 更正 0 / 已存在 0 / 失败 0" in sent.output


# --- the client's own retry logic, against a stub transport -------------------------------------


class Stub:
    """Answers with the given responses in turn and records every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


CREATED = httpx.Response(201, json={"id": 7, "supersedes": None})


def stub_client(stub: Stub, sleeps: list[float], **kwargs: object) -> PlanAPI:
    return PlanAPI(
        "http://stub", "pa_abcd1234_secret", transport=httpx.MockTransport(stub), sleep=sleeps.append, **kwargs
    )  # type: ignore[arg-type]


def test_retries_honour_retry_after_and_reuse_the_idempotency_key() -> None:
    stub = Stub(
        httpx.Response(
            503, headers={"Retry-After": "2"}, json={"status": 503, "code": "unavailable", "detail": "维护中"}
        ),
        httpx.Response(429, headers={"Retry-After": "1"}),
        CREATED,
    )
    sleeps: list[float] = []
    result = stub_client(stub, sleeps).submit("2.3.3", report(), plan=SEED_SLUG)
    assert result.outcome == "created"
    assert sleeps == [2.0, 1.0]
    keys = {r.headers["Idempotency-Key"] for r in stub.requests}
    assert len(stub.requests) == 3 and len(keys) == 1
    assert keys == {idempotency_key(who="abcd1234", plan=SEED_SLUG, task="2.3.3", report=report())}


def test_connection_errors_back_off_with_jitter_then_give_up() -> None:
    failure = httpx.ConnectError("connection refused")
    sleeps: list[float] = []
    stub = Stub(failure, failure, CREATED)
    assert stub_client(stub, sleeps, backoff=0.5).submit("2.3.3", report(), plan=SEED_SLUG).outcome == "created"
    assert len(sleeps) == 2 and all(0 < s <= 30 for s in sleeps)
    assert sleeps[1] >= 1.0  # exponential: the second wait starts from twice the first's base

    sleeps.clear()
    always = Stub(*[httpx.Response(503, json={"status": 503, "code": "unavailable", "detail": "服务暂不可用"})] * 3)
    with pytest.raises(PlanAPIError) as exhausted:
        stub_client(always, sleeps, attempts=3).submit("2.3.3", report(), plan=SEED_SLUG)
    assert exhausted.value.status == 503 and exhausted.value.detail == "服务暂不可用"
    assert len(always.requests) == 3 and len(sleeps) == 2


def test_client_errors_are_not_retried() -> None:
    stub = Stub(
        httpx.Response(422, json={"status": 422, "code": "validation-error", "detail": "校验未通过", "errors": []})
    )
    sleeps: list[float] = []
    with pytest.raises(PlanAPIError) as refused:
        stub_client(stub, sleeps).submit("2.3.3", report(), plan=SEED_SLUG)
    assert refused.value.code == "validation-error" and len(stub.requests) == 1 and sleeps == []


def test_idempotency_keys_follow_the_content() -> None:
    def key(**changes: object) -> str:
        return idempotency_key(who="县司法局", plan=SEED_SLUG, task="2.3.3", report={**report(), **changes})

    assert key() == key()
    assert len({key(), key(percent=41), key(period="2023-Q2"), key(summary="另一摘要"), key(evidence=[])}) == 5
    assert key() != idempotency_key(who="县公安局", plan=SEED_SLUG, task="2.3.3", report=report())
    assert len(key(summary="长" * 2000)) <= 200
    assert key().isascii() and key(period="2024年").isascii()  # it travels in an HTTP header


def test_a_chinese_unit_name_makes_a_valid_header() -> None:
    stub = Stub(CREATED)
    stub_client(stub, []).submit("2.3.3", report(), plan=SEED_SLUG, unit="县司法局")
    assert stub.requests[0].headers["Idempotency-Key"].startswith(f"pac1--{SEED_SLUG}-2.3.3-2023-Q1-")
