"""Path parameters shared by the routers, described once for the OpenAPI document."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from app.schemas.common import MAX_ID

PlanSlug = Annotated[str, Path(description="方案 slug / plan slug", examples=["xiji-fzsh-2021-2025"])]
TaskCode = Annotated[str, Path(description="任务编号 章.节.条 / task code", examples=["5.4.2"])]
UnitRefPath = Annotated[
    str,
    Path(
        description="单位 id、规范名称或别名;可写 区划代码:名称(640422:县司法局);名称全为数字时写 name:12(12 为 id)"
        " / unit id, canonical name or alias; `640422:县司法局`; an all-digit name as `name:12` (bare 12 is an id)",
        examples=["县司法局"],
    ),
]
GroupRefPath = Annotated[str, Path(description="组的 id、名称或别名 / group id, name or alias", examples=["各乡镇"])]
KeyPrefix = Annotated[str, Path(description="密钥前缀(keys list 中显示)/ key prefix", examples=["874f2857"])]
# Bounded: PostgreSQL's integer columns end at 2**31 - 1, and a larger id must be a 422, not an overflow.
ReportId = Annotated[int, Path(ge=1, le=MAX_ID, description="进展报告 id / report id", examples=[1])]
