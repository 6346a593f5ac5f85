"""Typed errors: the server's RFC 9457 problem details, as an exception a script can catch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class FieldProblem:
    """One entry of a problem's `errors[]`: the field path (`body.percent`, `body.items.3.period`) and why."""

    field: str
    message: str
    type: str = ""


@dataclass
class PlanAPIError(Exception):
    """A 4xx/5xx answer. `detail` is the server's Chinese sentence (English after ` / `)."""

    status: int
    code: str
    detail: str
    title: str = ""
    errors: list[FieldProblem] = field(default_factory=list)
    problem: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.status} {self.code}: {self.detail}"]
        lines += [f"  {e.field}: {e.message}" for e in self.errors]
        return "\n".join(lines)

    @classmethod
    def from_problem(cls, body: dict[str, Any], *, status: int | None = None) -> PlanAPIError:
        errors = [
            FieldProblem(field=str(e.get("field", "")), message=str(e.get("message", "")), type=str(e.get("type", "")))
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
        return cls(
            status=int(body.get("status") or status or 0),
            code=str(body.get("code") or "unknown"),
            detail=str(body.get("detail") or body.get("title") or ""),
            title=str(body.get("title") or ""),
            errors=errors,
            problem=body,
        )

    @classmethod
    def from_response(cls, response: httpx.Response) -> PlanAPIError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = response.text[:500]
            return cls(status=response.status_code, code="http-error", detail=text or response.reason_phrase)
        return cls.from_problem(body, status=response.status_code)


class RetryableStatus(Exception):
    """Internal: a 429 or 5xx answer worth retrying; carries the response (for Retry-After and the final error)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
