"""A batch of progress reports (`POST /plans/{plan}/progress:batch`), answered item by item.

What a batch adds to `submission.submit`, which it calls once for every item that parsed:

- each item is parsed on its own: a bad one is that item's `error`, its problem's field paths
  pointing into the request body (`body.items.3.percent`), never the whole batch's;
- the answer lists every item in order (`created`, `replayed` or `error`) and counts them;
- a dry run answers what a real batch would do (`would_create`, with no report: its id and time
  were never real; `would_replay`) after writing exactly as a real batch does, so every check runs;
- an atomic batch with any failing item is refused whole: `BatchRejected` (422) carries the answer,
  every item that did not fail marked `rolled_back`, and the raise undoes its writes.

A dry run's answer is raised as `Rollback(answer)` (`app/db.py`): the write protocol undoes the
batch's writes and still answers, so no caller can keep a dry run's writes by forgetting to.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from app.db import Rollback
from app.errors import BatchRejected, FieldError, ProblemError, ReportRejected, field_errors, problem_body
from app.models import Plan
from app.schemas.progress import BatchItem, BatchOut, BatchResult, ProgressCreate
from app.services import submission
from app.services.keys import Principal

Parsed = submission.Submission | BatchResult  # an item ready to submit, or its `error` answer


def parse_items(items: list[dict[str, Any]]) -> list[Parsed]:
    """Every item as a submission, or as its `error` with the problem's field paths."""
    parsed: list[Parsed] = []
    for index, raw in enumerate(items):
        try:
            parsed.append(_parse_item(index, raw))
        except ProblemError as exc:
            code = raw.get("task") if isinstance(raw.get("task"), str) else None
            parsed.append(BatchResult(index=index, task=code, outcome="error", problem=problem_body(exc)))
    return parsed


def _parse_item(index: int, raw: dict[str, Any]) -> submission.Submission:
    """One batch item as a submission, or the problem with its field paths (`body.items.3.percent`)."""
    code = raw.get("task")
    if not isinstance(code, str) or not code:
        raise ProblemError(
            "缺少 task(任务编号) / missing task code",
            errors=[FieldError(field=f"body.items.{index}.task", message="缺少必填项", type="missing")],
        )
    try:
        item = BatchItem.model_validate(raw)
    except ValidationError as exc:
        raise ReportRejected(
            f"第 {index} 条报告内容校验未通过 / item {index} is invalid",
            errors=field_errors(exc.errors(), ("body", "items", index)),
        ) from None
    data = ProgressCreate.model_validate(item.model_dump(exclude={"task", "idempotency_key"}))
    return submission.Submission(
        index=index, code=item.task, data=data, idempotency_key=item.idempotency_key, path=f"body.items.{index}"
    )


def submit_batch(
    *,
    session: Session,
    plan: Plan,
    principal: Principal,
    items: list[Parsed],
    remote_addr: str | None,
    atomic: bool,
    dry_run: bool,
) -> BatchOut:
    """Submit the items that parsed and answer for every item; a dry run's answer is raised as
    `Rollback`, which undoes its writes."""
    valid = [p for p in items if isinstance(p, submission.Submission)]
    results = {p.index: p for p in items if isinstance(p, BatchResult)}
    for outcome in submission.submit(
        session=session, plan=plan, principal=principal, submissions=valid, remote_addr=remote_addr
    ):
        results[outcome.index] = _batch_result(outcome)
    ordered = [results[i] for i in sorted(results)]
    failed = sum(r.outcome == "error" for r in ordered)
    if dry_run:
        # Every check ran exactly as for a real batch, writes included; none of them will be kept.
        for r in ordered:
            if r.outcome == "created":
                r.outcome, r.report = "would_create", None  # its id and time were never real
            elif r.outcome == "replayed":
                r.outcome = "would_replay"
        raise Rollback(
            BatchOut(
                dry_run=True,
                atomic=atomic,
                created=sum(r.outcome == "would_create" for r in ordered),
                replayed=sum(r.outcome == "would_replay" for r in ordered),
                failed=failed,
                results=ordered,
            )
        )
    if atomic and failed:
        for r in ordered:
            if r.outcome != "error":
                r.outcome, r.report = "rolled_back", None
        out_body = BatchOut(atomic=True, created=0, replayed=0, failed=failed, results=ordered)
        raise BatchRejected(
            f"整批未写入:{failed} 条未通过(见 results)/ atomic batch rejected, nothing written",
            **out_body.model_dump(mode="json"),
        )
    return BatchOut(
        atomic=atomic,
        created=sum(r.outcome == "created" for r in ordered),
        replayed=sum(r.outcome == "replayed" for r in ordered),
        failed=failed,
        results=ordered,
    )


def _batch_result(outcome: submission.Outcome) -> BatchResult:
    if outcome.problem is not None:
        return BatchResult(
            index=outcome.index, task=outcome.code, outcome="error", problem=problem_body(outcome.problem)
        )
    kind = "replayed" if outcome.replayed else "created"
    return BatchResult(index=outcome.index, task=outcome.code, outcome=kind, report=outcome.report)
