"""/dashboard: the supervision dashboard (督查看板), server-rendered in Chinese for the office.

The page shows what the API answers — `briefing.period_picture` calls the same service functions as
GET …/stats, …/compliance, …/duties, …/tasks?light=red — and every number links to that request.
Query parameters are as strict as the API's (unknown ones are a 400). Reads follow the API's rule:
open unless REQUIRE_KEY_FOR_READS, and then a browser passes the key by HTTP Basic authentication
(any user name, the key as password: the browser asks once and remembers it), or a script sends
`Authorization: Bearer <key>` as to the API.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session

from app.api.deps import AuthorizationHeader, SessionDep, SettingsDep
from app.api.params import IsoDate, reject_unknown_query_params
from app.api.read_cache import ReadCacheDep
from app.api.responses import Rendered
from app.core.clock import county_today
from app.core.config import Settings
from app.dashboard import STATIC_URL, TEMPLATES_DIR
from app.models import TaskStatus
from app.services import briefing as briefing_service
from app.services import plans as plan_service
from app.services.keys import Principal, Unauthenticated, authenticate
from app.services.lights import LIGHT_LABELS, Light

BASIC_REALM = 'Basic realm="plan-api dashboard", charset="UTF-8"'


class DashboardUnauthenticated(Unauthenticated):
    # A browser answers a Basic challenge with its own login box; scripts may still send Bearer.
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": f"{BASIC_REALM}, Bearer"}


def _as_bearer(authorization: str | None) -> str | None:
    """`Basic base64(user:key)` → `Bearer key` (the key is the password, or the user name if no password)."""
    if not authorization or not authorization.lower().startswith("basic "):
        return authorization
    try:
        user, _, password = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "Basic malformed"  # authenticate() then says the header is malformed
    return f"Bearer {password or user}"


async def require_dashboard_reader(
    session: SessionDep, settings: SettingsDep, authorization: AuthorizationHeader
) -> Principal | None:
    """The API's read rule (`deps.require_reader`), with HTTP Basic for browsers."""
    if not settings.require_key_for_reads:
        return None
    try:
        return await run_in_threadpool(authenticate, session=session, authorization=_as_bearer(authorization))
    except Unauthenticated as exc:
        raise DashboardUnauthenticated(exc.detail) from None


router = APIRouter(
    prefix="/dashboard",
    tags=["dashboard"],
    include_in_schema=False,  # HTML for people; the API requests it shows are in the OpenAPI document
    dependencies=[Depends(reject_unknown_query_params), Depends(require_dashboard_reader)],
)
templates = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(), auto_reload=False)
HTML = "text/html; charset=utf-8"
STATUS_ORDER = briefing_service.STATUS_ORDER
LIGHT_ORDER = (Light.red, Light.yellow, Light.green)


def render(template: str, context: dict[str, Any]) -> Rendered:
    return Rendered(templates.get_template(template).render(**context).encode(), HTML)


@router.get("", response_class=HTMLResponse)
def dashboard_home(request: Request, session: SessionDep) -> Response:
    """督查看板首页:一个方案时直接进入,多个方案时列出 / The dashboard: the plan, or the list of plans."""
    plans = plan_service.list_plans(session=session)
    if len(plans) == 1:
        return RedirectResponse(f"/dashboard/{plans[0].slug}", status_code=307)
    page = render("plans.html", {"plans": plans, "static": STATIC_URL})
    return Response(page.body, media_type=HTML)


@router.get("/{plan}", response_class=HTMLResponse)
async def plan_dashboard(
    request: Request,
    plan: str,
    session: SessionDep,
    settings: SettingsDep,
    cache: ReadCacheDep,
    period: Annotated[str | None, Query(description="合规统计的报告期 / compliance period")] = None,
    unit: Annotated[str | None, Query(description="只看某一单位 / one unit only")] = None,
    as_of: Annotated[IsoDate | None, Query(description="基准日,默认今天 / reference date")] = None,
) -> Response:
    """一个方案的督查看板 / One plan's dashboard (kept, with its ETag, until the data changes)."""
    return await cache.respond(lambda: _page(session, settings, plan, period, unit, as_of))


def _page(
    session: Session, settings: Settings, plan: str, period: str | None, unit: str | None, as_of: date | None
) -> Rendered:
    row = plan_service.get_plan(session=session, slug=plan)
    picture = briefing_service.period_picture(
        session=session,
        plan=row,
        as_of=as_of or county_today(),
        settings=settings,
        period=period or None,
        unit=unit or None,
    )
    context: dict[str, Any] = {
        "p": picture,
        "s": picture.stats,
        "src": picture.sources,
        "static": STATIC_URL,
        "statuses": STATUS_ORDER,
        "lights": LIGHT_ORDER,
        "light_labels": LIGHT_LABELS,
        "standing_labels": briefing_service.STANDING_LABELS,
        "Standing": briefing_service.Standing,
        "percent": briefing_service.percent,
        "task_title": briefing_service.task_title,
        "filters": {"period": period or "", "unit": unit or "", "as_of": as_of.isoformat() if as_of else ""},
        "unit_choices": sorted({u.unit.name for u in picture.stats.by_unit}),
        "charts": _charts(picture),
        "TaskStatus": TaskStatus,
    }
    return render("dashboard.html", context)


def _charts(picture: briefing_service.PeriodPicture) -> dict[str, Any]:
    """The figures the charts draw (the same numbers as the tables beside them)."""
    stats = picture.stats
    by_status = stats.by_status.model_dump()
    return {
        "status": {
            "labels": [s.label for s in STATUS_ORDER],
            "values": [by_status[s.value] for s in STATUS_ORDER],
        },
        "lights": {
            "labels": [LIGHT_LABELS[light] + "灯" for light in LIGHT_ORDER],
            "values": [stats.by_light.model_dump()[light.value] for light in LIGHT_ORDER],
        },
        "chapters": {
            "labels": [f"{c.code} {c.title}" for c in stats.by_chapter],
            "series": {
                LIGHT_LABELS[light] + "灯": [c.by_light.model_dump()[light.value] for c in stats.by_chapter]
                for light in LIGHT_ORDER
            },
        },
        "compliance": {
            "labels": [r.unit.name for r in picture.compliance if r.unit],
            "on_time": [r.on_time for r in picture.compliance],
            "late": [r.late for r in picture.compliance],
            "missing": [r.missing for r in picture.compliance],
        },
    }
