"""Shapes shared by every list endpoint."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

# Ids are 32-bit integers in PostgreSQL: a larger one is refused as invalid input, not a database error.
MAX_ID = 2_147_483_647


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="下一页游标;为 null 表示已是最后一页 / opaque cursor of the next page, null on the last"
    )
    total: int | None = Field(
        default=None,
        description="符合条件的总数,仅当 count=true 时返回 / total matches, only with count=true",
    )
