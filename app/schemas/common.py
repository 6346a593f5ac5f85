"""Shapes shared by every list endpoint."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field, WithJsonSchema

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


# Models documented in /openapi.json without FastAPI seeing them in a signature (install_openapi adds them).
DOCUMENTED_MODELS: list[type[BaseModel]] = []


def documented_as(model: type[BaseModel]) -> WithJsonSchema:
    """`Annotated[dict[str, Any], documented_as(BatchItem)]`: a batch item received as a plain object —
    each item is validated on its own, so one bad item is answered alone instead of failing the whole
    batch — but documented as `model`, so generated clients get a typed item class, not a bare dict."""
    DOCUMENTED_MODELS.append(model)
    return WithJsonSchema({"$ref": f"#/components/schemas/{model.__name__}"})
