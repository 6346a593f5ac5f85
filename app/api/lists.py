"""The one list contract: `limit`, `cursor` → `next_cursor`, `count=true` → `total`, on every list.

Lists computed in memory (duties, compliance, a unit's to-do list, the short reference lists) page
here by position: the cursor is the opaque offset of the next item in the list's fixed order. Lists
read from a table page by keyset in their service (tasks, report history) and only take `CountParam`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from app.api.responses import Rendered, render_json
from app.errors import InvalidParameter
from app.schemas.common import Page

T = TypeVar("T")

CountParam = Annotated[
    bool, Query(description="返回符合条件的总数 total / include the total count in `total`", examples=[True])
]
CursorParam = Annotated[
    str | None, Query(description="上一页响应中的 next_cursor / the next_cursor of the previous page")
]
MAX_LIMIT = 500


@dataclass(frozen=True)
class ListParams:
    limit: int
    cursor: str | None
    count: bool


async def list_params(  # async: pure parsing, no threadpool hop
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="每页条数(1–500)/ page size")] = MAX_LIMIT,
    cursor: CursorParam = None,
    count: CountParam = False,
) -> ListParams:
    return ListParams(limit=limit, cursor=cursor, count=count)


ListParamsDep = Annotated[ListParams, Depends(list_params)]


@dataclass(frozen=True)
class Slice(Generic[T]):
    items: list[T]
    next_cursor: str | None
    total: int | None


def page_in_memory(items: Sequence[T], params: ListParams) -> Slice[T]:
    """One page of a list already in its final order."""
    start = _offset(params.cursor) if params.cursor else 0
    end = start + params.limit
    return Slice(
        items=list(items[start:end]),
        next_cursor=_cursor(end) if end < len(items) else None,
        total=len(items) if params.count else None,
    )


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("o") or not text[1:].isdigit():
            raise ValueError(text)
        return int(text[1:])
    except ValueError as exc:
        raise InvalidParameter("cursor", "游标无效;请使用上一页响应中的 next_cursor 原值") from exc


def render_slice(item_type: type[BaseModel], page: Slice[Any]) -> Rendered:
    """The page as `{"items", "next_cursor"}`, and `total` when it was asked for (`count=true`)."""
    body = Page[item_type](items=page.items, next_cursor=page.next_cursor, total=page.total)  # type: ignore[valid-type]
    return render_json(body, exclude=None if page.total is not None else {"total"})
