"""/api/v1/plans/{plan}/periods/{period}/briefing: the period's 通报, drafted from the data."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response

from app.api.deps import SessionDep, SettingsDep
from app.api.params import IsoDate
from app.api.paths import PlanSlug
from app.api.read_cache import ReadCacheDep
from app.api.responses import Rendered
from app.core.clock import county_today
from app.errors import FieldError, InvalidParameter
from app.services import briefing as briefing_service
from app.services import plans as plan_service

router = APIRouter(tags=["briefing"])

MARKDOWN = "text/markdown; charset=utf-8"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
BRIEFING_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "通报草稿:Markdown(默认)或 Word(.docx)/ the draft as Markdown (default) or .docx",
        "content": {
            "text/markdown": {"schema": {"type": "string"}},
            DOCX: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

PeriodPath = Annotated[
    str, Path(description="报告期(须为本方案报送周期中的一期)/ a period of the plan's calendar", examples=["2023-Q4"])
]
AsOf = Annotated[
    IsoDate | None,
    Query(description="基准日,默认今天:状态、亮灯、报送情况均为该日结束时 / judge with the data as of that day"),
]
UnitFilter = Annotated[
    str | None, Query(description="只看某一单位(id、名称或别名;组表示其成员)/ one unit only (a group: its members)")
]


def _build(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    plan: str,
    period: str,
    as_of: date | None,
    unit: str | None,
    docx: bool,
) -> Rendered:
    row = plan_service.get_plan(session=session, slug=plan)
    try:
        picture = briefing_service.period_picture(
            session=session,
            plan=row,
            as_of=as_of or county_today(),
            settings=settings,
            period=period,
            unit=unit,
            notable=True,
        )
    except InvalidParameter as exc:
        # The period is part of the path here, not a query parameter: say so in the field path.
        if exc.errors and exc.errors[0].field == "query.period":
            exc.errors = [FieldError(field="path.period", message=exc.errors[0].message, type=exc.errors[0].type)]
        raise
    draft = briefing_service.draft_briefing(picture, base_url=str(request.base_url))
    if docx:
        name = quote(f"{draft.filename}.docx")
        disposition = ("Content-Disposition", f"attachment; filename*=UTF-8''{name}")
        return Rendered(briefing_service.briefing_docx(draft), DOCX, (disposition,))
    return Rendered(briefing_service.briefing_markdown(draft).encode(), MARKDOWN)


@router.get("/plans/{plan}/periods/{period}/briefing", response_class=Response, responses=BRIEFING_RESPONSES)
async def get_briefing(
    request: Request,
    plan: PlanSlug,
    period: PeriodPath,
    session: SessionDep,
    settings: SettingsDep,
    cache: ReadCacheDep,
    as_of: AsOf = None,
    unit: UnitFilter = None,
    format: Annotated[
        Literal["md", "docx"], Query(description="md:Markdown(默认);docx:Word 文档 / Markdown or Word")
    ] = "md",
) -> Response:
    """本期通报草稿:总体与分章进展、按时/逾期/未报送单位、红灯任务及原因、值得关注的报告 / The period's 通报, drafted.

    每个数字都注明产生它的 API 请求(Markdown 脚注;Word 文末编号链接)/ every figure cites the API request behind it.
    """
    return await cache.respond(
        lambda: _build(request, session, settings, plan, period, as_of, unit, docx=format == "docx")
    )


@router.get("/plans/{plan}/periods/{period}/briefing.docx", response_class=Response, responses=BRIEFING_RESPONSES)
async def get_briefing_docx(
    request: Request,
    plan: PlanSlug,
    period: PeriodPath,
    session: SessionDep,
    settings: SettingsDep,
    cache: ReadCacheDep,
    as_of: AsOf = None,
    unit: UnitFilter = None,
) -> Response:
    """本期通报草稿(Word 文档)/ The period's 通报 as an editable .docx."""
    return await cache.respond(lambda: _build(request, session, settings, plan, period, as_of, unit, docx=True))
