"""`PlanAPI`: a small, typed client for department scripts (httpx + tenacity).

Every request has a timeout; connection errors, 429 and 5xx are retried with exponential backoff and
jitter, honouring `Retry-After`. Reports carry an idempotency key derived from who sends, the plan, the
task, the period and a hash of the content, reused across retries: re-sending the same data replays the
stored report, changed content is a new version (the server supersedes the old one).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from plan_api_client.errors import PlanAPIError, RetryableStatus

BATCH_LIMIT = 500  # the server's batch size limit
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0
MAX_ROUNDS = 10  # later versions followed when re-sent content had been replaced (see PlanAPI._replaced)  # seconds: a longer Retry-After is capped, not trusted blindly

Outcome = Literal["created", "replayed", "error", "would_create", "would_replay"]  # would_*: check_many


@dataclass
class SubmitResult:
    """One report's answer: `created` (new, or a correction when `report["supersedes"]` is set),
    `replayed` (the server already had exactly this), or `error` (see `error`)."""

    index: int
    task: str
    outcome: Outcome
    report: dict[str, Any] | None = None
    error: PlanAPIError | None = None

    @property
    def corrected(self) -> bool:
        return self.outcome == "created" and self.report is not None and self.report.get("supersedes") is not None


def report_body(report: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a report the server takes (status, percent, summary, period, evidence)."""
    body = {k: report[k] for k in ("status", "percent", "summary", "period") if k in report}
    body["evidence"] = list(report.get("evidence") or [])
    return body


def idempotency_key(*, who: str, plan: str, task: str, report: Mapping[str, Any]) -> str:
    """`pac1-<who>-<plan>-<task>-<period>-<hash>` (ASCII, ≤200 chars: it travels in a header): the same
    data always gives the same key, changed content another one. The hash (over who, plan, task and the
    whole report) carries the safety; the readable part, ASCII only, is for logs."""
    body = report_body(report)
    digest = hashlib.sha256(json.dumps([who, plan, task, body], ensure_ascii=False, sort_keys=True).encode())
    readable = "-".join(_ASCII_UNSAFE.sub("", str(part)) for part in (who, plan, task, body.get("period", "")))
    return f"pac1-{readable[:120]}-{digest.hexdigest()[:40]}"


_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableStatus | httpx.TransportError)


class PlanAPI:
    """A client for `/api/v1`. `url` is the server root (`http://host:8000`); `key` a unit's API key.

    `PlanAPI.from_env()` reads `PLAN_API_URL` and `PLAN_API_KEY`.
    """

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "plan-api-client/0.1"}
        if key:
            headers["Authorization"] = key if key.startswith("Bearer ") else f"Bearer {key}"
        base = url.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self._http = httpx.Client(base_url=base, headers=headers, timeout=timeout, transport=transport, trust_env=False)
        self._key = key.removeprefix("Bearer ") if key else None
        self.attempts = attempts
        # backoff·2ⁿ (capped) plus up to `backoff` of random jitter, so many clients do not retry in step
        self._backoff = wait_exponential(multiplier=backoff, max=max_backoff) + wait_random(0, backoff)
        self._sleep = sleep

    @classmethod
    def from_env(cls, url: str | None = None, key: str | None = None, **kwargs: Any) -> PlanAPI:
        url = url or os.environ.get("PLAN_API_URL")
        if not url:
            raise ValueError("缺少服务地址:请设置 PLAN_API_URL 或 --url / no server URL")
        return cls(url, key or os.environ.get("PLAN_API_KEY"), **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlanAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport: timeouts, retries, problem details -------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableStatus):
            after = _retry_after(exc.response)
            if after is not None:
                return after
        return float(self._backoff(state))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with retries; a final 4xx/5xx raises `PlanAPIError`, a final connection error
        raises the `httpx.TransportError`."""

        def attempt() -> httpx.Response:
            response = self._http.request(method, path, **kwargs)
            if response.status_code in RETRY_STATUSES:
                response.read()
                raise RetryableStatus(response)
            return response

        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            response = retrying(attempt)
        except RetryableStatus as exc:
            raise PlanAPIError.from_response(exc.response) from None
        if response.status_code >= 400:
            raise PlanAPIError.from_response(response)
        return response

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        params = {k: v for k, v in params.items() if v is not None}
        while True:
            page = self.request("GET", path, params=params).json()
            yield from page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return
            params["cursor"] = cursor

    @staticmethod
    def _filters(filters: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in filters.items():
            if isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif isinstance(value, list | tuple | set | frozenset):
                out[name] = ",".join(str(v) for v in value)
            else:
                out[name] = value
        return out

    # --- reads --------------------------------------------------------------------------------------

    def unit_tasks(self, unit: str, **filters: Any) -> Iterator[dict[str, Any]]:
        """The unit's tasks across plans (`include_groups=True`, `role=`, `status=[…]`, `plan`-less);
        follows `next_cursor`. Filters are the task list's query parameters."""
        return self._pages(f"/units/{unit}/tasks", self._filters(filters))

    def unit_duties(self, unit: str, period: str | None = None, *, plan: str | None = None) -> Iterator[dict[str, Any]]:
        """The unit's to-do list: duties still due or missing, by deadline."""
        return self._pages(f"/units/{unit}/duties", {"period": period, "plan": plan})

    def history(self, task: str, *, plan: str, **filters: Any) -> Iterator[dict[str, Any]]:
        """A task's reports, newest first (`unit=`, `period=`, `kind=`, `review=`)."""
        return self._pages(f"/plans/{plan}/tasks/{task}/progress", self._filters(filters))

    def template(self, unit: str, *, plan: str | None = None, period: str | None = None, format: str = "xlsx") -> bytes:
        """The unit's fill-in template (`xlsx` or `csv`), one row per task it reports on."""
        params = {k: v for k, v in {"plan": plan, "period": period}.items() if v is not None}
        return self.request("GET", f"/units/{unit}/template.{format}", params=params).content

    # --- writes -------------------------------------------------------------------------------------

    def _who(self, unit: str | None) -> str:
        if unit:
            return unit
        if self._key and self._key.startswith("pa_"):
            return self._key[3:].split("_", 1)[0]  # the key's public prefix, never the secret
        return "anon"

    def _replaced(self, report: Mapping[str, Any]) -> str | None:
        """For a replayed report: None while it still stands; else what replaced it (`s<id>` of the later
        version, `w<id>` for a withdrawal). Sending content A, then B, then A again replays A's first
        report, which B superseded: the A sent last must become a new version, under a key salted with
        that, so that it too is replayed, not duplicated, when sent once more."""
        fresh = self.request("GET", f"/progress/{report['id']}").json()
        if fresh.get("superseded_by") is not None:
            return f"s{fresh['superseded_by']}"
        if fresh.get("withdrawn_at"):
            return f"w{fresh['id']}"
        return None

    def submit(
        self, task: str, report: Mapping[str, Any], *, plan: str, unit: str | None = None, key: str | None = None
    ) -> SubmitResult:
        """Submit one report (`status`, `percent`, `summary`, `period`, `evidence`). Raises `PlanAPIError`
        when the server refuses it."""
        base = key or idempotency_key(who=self._who(unit), plan=plan, task=task, report=report)
        key = base
        for _ in range(MAX_ROUNDS):
            response = self.request(
                "POST",
                f"/plans/{plan}/tasks/{task}/progress",
                json=report_body(report),
                headers={"Idempotency-Key": key},
            )
            answer = response.json()
            if response.headers.get("Idempotent-Replayed") != "true":
                return SubmitResult(index=0, task=task, outcome="created", report=answer)
            salt = self._replaced(answer)
            if salt is None:
                return SubmitResult(index=0, task=task, outcome="replayed", report=answer)
            key = f"{base}-{salt}"
        raise PlanAPIError(
            status=0, code="too-many-versions", detail="报告版本过多,无法确定现行版本 / too many versions"
        )

    def check_many(
        self,
        reports: Iterable[Mapping[str, Any]],
        *,
        plan: str,
        unit: str | None = None,
        chunk_size: int = BATCH_LIMIT,
    ) -> list[SubmitResult]:
        """Validate only: the server runs every check a real submission would (content, permission,
        period and cadence, idempotency) and writes nothing (`progress:batch?dry_run=true`). One result
        per report, in order: `would_create`, `would_replay` (already there, as sent) or `error`."""
        items = list(reports)
        chunk_size = max(1, min(chunk_size, BATCH_LIMIT))
        who = self._who(unit)
        results: list[SubmitResult] = []
        for start in range(0, len(items), chunk_size):
            chunk = items[start : start + chunk_size]
            body = {
                "items": [
                    {
                        "task": item["task"],
                        "idempotency_key": item.get("idempotency_key")
                        or idempotency_key(who=who, plan=plan, task=item["task"], report=item),
                        **report_body(item),
                    }
                    for item in chunk
                ]
            }
            answer = self.request("POST", f"/plans/{plan}/progress:batch", json=body, params={"dry_run": "true"}).json()
            for result in answer["results"]:
                index = start + int(result["index"])
                task = str(items[index]["task"])
                outcome = result["outcome"]
                if outcome == "would_replay" and self._replaced(result["report"]) is not None:
                    outcome = "would_create"  # sent before but since replaced: it would be a new version
                if outcome in ("would_create", "would_replay"):
                    results.append(SubmitResult(index=index, task=task, outcome=outcome, report=result.get("report")))
                else:
                    problem = result.get("problem") or {"status": 422, "code": outcome, "detail": ""}
                    results.append(
                        SubmitResult(index=index, task=task, outcome="error", error=PlanAPIError.from_problem(problem))
                    )
        return results

    def submit_many(
        self,
        reports: Iterable[Mapping[str, Any]],
        *,
        plan: str,
        unit: str | None = None,
        chunk_size: int = BATCH_LIMIT,
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> list[SubmitResult]:
        """Submit many reports (each with `task` and the report fields), in batches of ≤500; one result per
        report, in order. A refused report is an `error` result; a refused batch as a whole raises."""
        items = list(reports)
        chunk_size = max(1, min(chunk_size, BATCH_LIMIT))
        who = self._who(unit)
        bases = [
            item.get("idempotency_key") or idempotency_key(who=who, plan=plan, task=item["task"], report=item)
            for item in items
        ]
        pending = [(i, bases[i]) for i in range(len(items))]
        results: list[SubmitResult] = []
        for round_ in range(MAX_ROUNDS):
            again: list[tuple[int, str]] = []
            for start in range(0, len(pending), chunk_size):
                chunk = pending[start : start + chunk_size]
                body = {
                    "items": [
                        {"task": items[i]["task"], "idempotency_key": k, **report_body(items[i])} for i, k in chunk
                    ]
                }
                answer = self.request("POST", f"/plans/{plan}/progress:batch", json=body).json()
                for result in answer["results"]:
                    index = chunk[int(result["index"])][0]
                    task = str(items[index]["task"])
                    if result["outcome"] == "replayed" and (salt := self._replaced(result["report"])) is not None:
                        again.append((index, f"{bases[index]}-{salt}"))  # content sent before, since replaced
                    elif result["outcome"] in ("created", "replayed"):
                        results.append(
                            SubmitResult(index=index, task=task, outcome=result["outcome"], report=result["report"])
                        )
                    else:
                        problem = result.get("problem") or {"status": 422, "code": result["outcome"], "detail": ""}
                        error = PlanAPIError.from_problem(problem)
                        results.append(SubmitResult(index=index, task=task, outcome="error", error=error))
                if on_chunk is not None and round_ == 0:
                    on_chunk(min(start + chunk_size, len(pending)), len(pending))
            pending = again
            if not pending:
                break
        for index, _ in pending:
            error = PlanAPIError(
                status=0, code="too-many-versions", detail="报告版本过多,无法确定现行版本 / too many versions"
            )
            results.append(SubmitResult(index=index, task=str(items[index]["task"]), outcome="error", error=error))
        results.sort(key=lambda r: r.index)
        return results
