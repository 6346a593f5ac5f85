"""Shapes shared by every list endpoint."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, Field, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

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


# --- Text that enters through a JSON body -------------------------------------------------------
# One rule for every text field: no control characters. A NUL is refused by PostgreSQL with an error
# and stored by SQLite; the others have no business in a name, a code or a key. Free text (summaries,
# reasons) may keep its line breaks and tabs. The pattern is also in the OpenAPI document, so clients
# and fuzzers know the rule before the server says it.
SINGLE_LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
MULTI_LINE_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"
_SINGLE_LINE_BAD = re.compile(r"[\x00-\x1f\x7f]")
_MULTI_LINE_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class _DocumentedPattern:
    """Adds `pattern` to a field's JSON schema without changing how it validates."""

    pattern: str

    def __get_pydantic_json_schema__(self, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core)
        schema.setdefault("pattern", self.pattern)
        return schema


def _refuse(bad: re.Pattern[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if bad.search(value):
            raise PydanticCustomError(
                "control_character", "不能含控制字符(如 NUL)/ must not contain control characters"
            )
        return value

    return check


# The rule as Annotated metadata, for types with StringConstraints of their own (which must come
# first: constraints on an Annotated type that is itself annotated are applied after its validators).
SINGLE_LINE = (AfterValidator(_refuse(_SINGLE_LINE_BAD)), _DocumentedPattern(SINGLE_LINE_PATTERN))
MULTI_LINE = (AfterValidator(_refuse(_MULTI_LINE_BAD)), _DocumentedPattern(MULTI_LINE_PATTERN))

SingleLine = Annotated[str, SINGLE_LINE[0], SINGLE_LINE[1]]
"""A name, code, reference or key: one line, no control characters."""
MultiLine = Annotated[str, MULTI_LINE[0], MULTI_LINE[1]]
"""Free text (a summary, a reason): line breaks and tabs allowed, other control characters not."""


IDEMPOTENCY_KEY_MAX = 200
IDEMPOTENCY_KEY_PATTERN = "^[^\\s\\u0000-\\u001f\\u007f]([^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f])?$"


def _idempotency_key(value: str) -> str:
    # An empty or blank key is no key: treating it as one would make every keyless retry of every
    # script "the same request". Spaces inside are kept (the key is opaque), not at either end.
    if not value.strip() or value != value.strip() or _SINGLE_LINE_BAD.search(value):
        raise PydanticCustomError(
            "invalid_idempotency_key",
            "幂等键须为 1–200 个可见字符,不能为空白、首尾不能有空格、不能含控制字符"
            " / an idempotency key is 1-200 visible characters, not blank, no control characters",
        )
    return value


IdempotencyKeyValue = Annotated[
    str,
    Field(min_length=1, max_length=IDEMPOTENCY_KEY_MAX),
    AfterValidator(_idempotency_key),
    _DocumentedPattern(IDEMPOTENCY_KEY_PATTERN),
]
"""An `Idempotency-Key` header or a batch item's `idempotency_key`."""
