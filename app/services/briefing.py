"""A period's picture for the rule-of-law office: what the dashboard shows and the periodic 通报 says.

Nothing here computes a figure of its own. Every number comes from the service function the API
answers with — `plans.plan_stats` (GET …/stats), `duties.plan_duties` + `duties.compliance`
(GET …/compliance, GET …/duties), `tasks.query_tasks` (GET …/tasks?light=red), `progress.list_reports`
(GET /api/v1/progress/{id}) — and carries the API request that produces it (`Sources`), so a reader
of the page or the document can check any figure against the API.

Units' standing in the period (from their compliance row for it):
- `silent` 未报送: at least one duty of the period missing (deadline passed, nothing counting);
- `late` 逾期报送: nothing missing, at least one report sent after the deadline;
- `on_time` 按时报送: every judgeable duty met on time;
- `pending` 尚无可评判: nothing judgeable yet (every duty still due, or excused).

Notable reports of a period: the counting (current) reports on that period that say a task is
completed or delayed, or that were returned in review — what a 通报 names.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from urllib.parse import quote, urlencode

from docx import Document
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt
from docx.text.paragraph import Paragraph
from sqlmodel import Session

from app.core.config import Settings
from app.models import Plan, ReviewState, TaskStatus
from app.schemas.duty import ComplianceOut, ComplianceSort, compliance_out, duty_out, sort_compliance
from app.schemas.duty import DutyOut as DutyRow
from app.schemas.plan import PlanStats, UnitLoad
from app.schemas.progress import ProgressOut
from app.services import duties as duty_service
from app.services import plans as plan_service
from app.services import progress as progress_service
from app.services import schedule as schedule_service
from app.services import tasks as task_service
from app.services import units as unit_service
from app.services.cycle import end_of_day
from app.services.duties import DutyState
from app.services.lights import Light
from app.services.tasks import TaskFilter, TaskView, readable_title
from app.services.units import ResolvedUnit

API_PREFIX = "/api/v1"  # where app.main mounts the API; the links below name its requests
RED_LIMIT = 500  # the task list's largest page: a plan's red list fits in one
RECENT_REPORTS = 10
NOTABLE_LIMIT = 200  # the period's reports read to pick the notable ones (newest first)
NOTABLE_STATUSES = {TaskStatus.completed, TaskStatus.delayed}


class Standing(StrEnum):
    on_time = "on_time"
    late = "late"
    silent = "silent"
    pending = "pending"


STANDING_LABELS = {
    Standing.on_time: "按时报送",
    Standing.late: "逾期报送",
    Standing.silent: "未报送",
    Standing.pending: "尚无可评判",
}


def standing(row: ComplianceOut) -> Standing:
    if row.missing:
        return Standing.silent
    if row.late:
        return Standing.late
    if row.on_time:
        return Standing.on_time
    return Standing.pending


def api_url(path: str, **params: object) -> str:
    """An API request as a relative URL (`/api/v1/plans/…/stats?as_of=…`), parameters in the given order."""
    query = urlencode({k: v for k, v in params.items() if v is not None and v != ""})
    return f"{API_PREFIX}{quote(path)}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Sources:
    """The API requests behind each figure of the picture."""

    stats: str
    compliance: str | None
    missing: str | None
    red: str
    reports: str  # the recent reports: the first page of the plan's report list

    @staticmethod
    def report(report_id: int) -> str:
        return api_url(f"/progress/{report_id}")

    @staticmethod
    def task(plan: str, code: str, as_of: date) -> str:
        return api_url(f"/plans/{plan}/tasks/{code}", as_of=as_of.isoformat())

    @staticmethod
    def chapter_tasks(plan: str, chapter: str, as_of: date, light: str | None = None) -> str:
        return api_url(f"/plans/{plan}/tasks", section=chapter, light=light, as_of=as_of.isoformat(), count="true")


@dataclass
class PeriodPicture:
    plan: Plan
    as_of: date
    period: str | None  # the compliance period: given, or the latest closed by as_of (as stats picks it)
    unit: ResolvedUnit | None
    stats: PlanStats
    compliance: list[ComplianceOut]  # per unit (only the unit's, when one is chosen), worst rate first
    totals: ComplianceOut | None  # plan-wide for the period (None: no period closed yet)
    missing: list[DutyRow]  # duties of the period still missing
    red: list[TaskView]
    reports: list[ProgressOut]  # recent (dashboard) reports up to the end of as_of
    notable: list[ProgressOut]  # the period's notable reports (通报)
    sources: Sources
    unit_ids: set[int] | None = None
    periods: list[str] = field(default_factory=list)  # the plan's periods begun by as_of (the filter's choices)
    standings: dict[Standing, list[ComplianceOut]] = field(default_factory=dict)

    @property
    def by_unit(self) -> list[UnitLoad]:
        """The stats' unit rows: the lead units, or the chosen unit (a group: its members)."""
        rows = self.stats.by_unit
        if self.unit_ids is None:
            return [r for r in rows if r.lead]
        return [r for r in rows if r.unit.id in self.unit_ids]


def period_picture(
    *,
    session: Session,
    plan: Plan,
    as_of: date,
    settings: Settings,
    period: str | None = None,
    unit: str | None = None,
    notable: bool = False,
) -> PeriodPicture:
    """The plan as of the end of `as_of`, with compliance for `period` (default: the latest period
    whose deadline had passed), optionally narrowed to one unit (`unit`: id, name or alias)."""
    assert plan.id is not None
    resolved = None
    unit_ids = None
    if unit:
        within = unit_service.plan_scope(session=session, plan=plan)
        resolved = unit_service.resolve_unit_param(session=session, param="unit", ref=unit, within=within)
        unit_ids = progress_service.reporting_units(session=session, unit=resolved.unit)
    stats = plan_service.plan_stats(session=session, plan=plan, as_of=as_of, period=period)
    period = stats.compliance_period
    slug = plan.slug
    day = as_of.isoformat()
    unit_param = resolved.as_typed if resolved else None

    compliance_rows: list[ComplianceOut] = []
    totals = None
    missing: list[DutyRow] = []
    if period is not None:
        facts, found = duty_service.plan_duties(
            session=session, plan=plan, as_of=as_of, settings=settings, period=period
        )
        per_unit, total = duty_service.compliance(found)
        totals = compliance_out(facts, total)
        compliance_rows = [
            compliance_out(facts, c) for uid, c in per_unit.items() if unit_ids is None or uid in unit_ids
        ]
        compliance_rows = sort_compliance(compliance_rows, ComplianceSort.rate)  # the endpoint's default order
        missing = [
            duty_out(facts, d)
            for d in found
            if d.state == DutyState.missing and (unit_ids is None or d.unit_id in unit_ids)
        ]

    red = task_service.query_tasks(
        session=session,
        flt=TaskFilter(as_of=as_of, plan_id=plan.id, unit=resolved, lights=(Light.red,)),
        limit=RED_LIMIT,
    ).items

    cutoff = end_of_day(as_of, settings.timezone)
    recent_rows = progress_service.list_reports(  # as GET /plans/{plan}/progress?unit=…&until=… reads them
        session=session,
        flt=progress_service.ReportFilter(plan_id=plan.id, unit_ids=unit_ids, until=cutoff),
        limit=RECENT_REPORTS,
    )
    reports = progress_service.present_reports(session=session, reports=recent_rows)
    notable_reports: list[ProgressOut] = []
    if notable and period is not None:
        of_period = progress_service.list_reports(
            session=session,
            flt=progress_service.ReportFilter(plan_id=plan.id, period=period, until=cutoff, unit_ids=unit_ids),
            limit=NOTABLE_LIMIT,
        )
        notable_reports = [
            r
            for r in progress_service.present_reports(session=session, reports=of_period)
            if (r.current and r.status in NOTABLE_STATUSES) or r.review.state == ReviewState.returned
        ]

    sources = Sources(
        stats=api_url(f"/plans/{slug}/stats", as_of=day, period=period),
        compliance=api_url(f"/plans/{slug}/compliance", period=period, as_of=day) if period else None,
        missing=api_url(f"/plans/{slug}/duties", period=period, state="missing", unit=unit_param, as_of=day)
        if period
        else None,
        red=api_url(
            f"/plans/{slug}/tasks",
            light="red",
            unit=unit_param,
            as_of=day,
            fields="code,title,light,light_reasons",
            limit=RED_LIMIT,
        ),
        reports=api_url(f"/plans/{slug}/progress", unit=unit_param, until=day, limit=RECENT_REPORTS),
    )
    picture = PeriodPicture(
        plan=plan,
        as_of=as_of,
        period=period,
        unit=resolved,
        stats=stats,
        compliance=compliance_rows,
        totals=totals,
        missing=missing,
        red=red,
        reports=reports,
        notable=notable_reports,
        sources=sources,
        unit_ids=unit_ids,
    )
    schedule = schedule_service.get_schedule(session=session, plan=plan)
    picture.periods = [
        r.period.label
        for r in schedule_service.calendar(plan=plan, schedule=schedule, as_of=as_of)
        if r.period.start <= as_of
    ]
    for row in compliance_rows:
        picture.standings.setdefault(standing(row), []).append(row)
    return picture


# --- The 通报 draft: one outline, rendered as Markdown or .docx ------------------------------------

STATUS_ORDER = (
    TaskStatus.completed,
    TaskStatus.ongoing,
    TaskStatus.in_progress,
    TaskStatus.delayed,
    TaskStatus.not_started,
)
CHINESE_NUMERALS = "一二三四五六七八九十"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


@dataclass
class Block:
    """One piece of the draft: a heading, a paragraph, a bullet list or a table. `refs` are indexes
    into the sources list (footnotes in Markdown, bracketed numbers in the .docx)."""

    kind: str  # heading | paragraph | bullets | table
    text: str = ""
    level: int = 2
    items: list[str] = field(default_factory=list)
    item_refs: list[int] = field(default_factory=list)  # per bullet, when each cites its own request
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    refs: list[int] = field(default_factory=list)


@dataclass
class Briefing:
    title: str
    blocks: list[Block]
    sources: list[tuple[str, str]]  # (what, absolute URL)
    filename: str


def draft_briefing(picture: PeriodPicture, *, base_url: str) -> Briefing:
    """The period's 通报 from the picture; every figure cites the API request it came from."""
    stats, src, plan = picture.stats, picture.sources, picture.plan
    base = base_url.rstrip("/")
    sources: list[tuple[str, str]] = []

    def cite(what: str, url: str) -> int:
        sources.append((what, base + url))
        return len(sources)

    period = picture.period or "(尚无已截止的报告期)"
    blocks: list[Block] = []
    numbers = iter(CHINESE_NUMERALS)

    def heading(text: str) -> None:
        blocks.append(Block("heading", f"{next(numbers)}、{text}"))

    stats_ref = cite("全方案统计(状态、亮灯、按章)", src.stats)
    by_status = stats.by_status.model_dump()
    status_text = "、".join(f"{s.label} {by_status[s.value]} 项" for s in STATUS_ORDER)
    heading("总体进展")
    blocks.append(
        Block(
            "paragraph",
            f"截至 {picture.as_of.isoformat()},方案共 {stats.tasks} 项任务:{status_text};"
            f"已过期限未完成 {stats.overdue} 项。亮灯情况:红灯 {stats.by_light.red} 项、"
            f"黄灯 {stats.by_light.yellow} 项、绿灯 {stats.by_light.green} 项(亮灯规则 {stats.light_rules_version})。",
            refs=[stats_ref],
        )
    )
    heading("分章节进展")
    blocks.append(
        Block(
            "table",
            header=["章", "标题", "任务数", *(s.label for s in STATUS_ORDER), "逾期", "平均进度", "红", "黄", "绿"],
            rows=[
                [
                    c.code,
                    c.title,
                    str(c.tasks),
                    *(str(c.by_status.model_dump()[s.value]) for s in STATUS_ORDER),
                    str(c.overdue),
                    f"{c.mean_progress}%",
                    str(c.by_light.red),
                    str(c.by_light.yellow),
                    str(c.by_light.green),
                ]
                for c in stats.by_chapter
            ],
            refs=[stats_ref],
        )
    )
    heading(f"{period} 报送情况")
    if picture.totals is not None and src.compliance is not None and src.missing is not None:
        t = picture.totals
        comp_ref = cite(f"{period} 各单位报送合规情况", src.compliance)
        blocks.append(
            Block(
                "paragraph",
                f"全方案本期应报 {t.owed} 项:按时报送 {t.on_time} 项、逾期报送 {t.late} 项、未报送 {t.missing} 项、"
                f"待报送 {t.due} 项、免报 {t.excused} 项;按时报送率 {percent(t.rate)},报送率 {percent(t.reported_rate)}。",
                refs=[comp_ref],
            )
        )
        items = []
        for kind in (Standing.on_time, Standing.late, Standing.silent, Standing.pending):
            rows = picture.standings.get(kind, [])
            names = "、".join(
                f"{r.unit.name}(未报 {r.missing} 项)"
                if kind == Standing.silent and r.unit
                else (r.unit.name if r.unit else "")
                for r in rows
            )
            items.append(f"{STANDING_LABELS[kind]}的单位({len(rows)} 个):{names or '无'}")
        blocks.append(Block("bullets", items=items, refs=[comp_ref]))
        if picture.missing:
            missing_ref = cite(f"{period} 未报送明细", src.missing)
            blocks.append(
                Block(
                    "table",
                    header=["任务", "单位", "报送期限"],
                    rows=[[d.task, d.unit.name, d.deadline.isoformat()] for d in picture.missing],
                    refs=[missing_ref],
                )
            )
    else:
        blocks.append(Block("paragraph", f"截至 {picture.as_of.isoformat()} 尚无已过报送期限的报告期。"))
    heading("红灯任务及原因")
    red_ref = cite("红灯任务及原因", src.red)
    if picture.red:
        blocks.append(
            Block(
                "bullets",
                items=[
                    f"{v.task.code} {task_title(v)}:"
                    + ";".join(r.message for r in v.light_reasons if r.light == Light.red)
                    for v in picture.red
                ],
                refs=[red_ref],
            )
        )
    else:
        blocks.append(Block("paragraph", "本期无红灯任务。", refs=[red_ref]))
    heading("值得关注的报告")
    if picture.notable:
        items, item_refs = [], []
        for r in picture.notable:
            item_refs.append(cite(f"报告 {r.id}", Sources.report(r.id)))
            unit = r.unit.name if r.unit else r.submitted_by
            if r.review.state == ReviewState.returned:
                what = f"被退回({r.review.reason or '未说明理由'})"
            else:
                what = f"报告{r.status.label}(进度 {r.percent}%)"
            items.append(f"报告 {r.id}:{unit} 任务 {r.task} {what}:{r.summary}")
        blocks.append(Block("bullets", items=items, item_refs=item_refs))
    else:
        blocks.append(Block("paragraph", "本期无报告已完成、滞后或被退回的任务。"))
    scope = f"({picture.unit.unit.name})" if picture.unit else ""
    return Briefing(
        title=f"{plan.title} {period} 推进情况通报{scope}(草稿)",
        blocks=blocks,
        sources=sources,
        filename=f"{plan.slug}-{picture.period or 'briefing'}-briefing",
    )


def task_title(view: TaskView) -> str:
    return readable_title(view.task)


def _with_refs(block: Block) -> list[tuple[str, int]]:
    refs = block.item_refs or [0] * len(block.items)
    return list(zip(block.items, refs, strict=True))


def briefing_markdown(briefing: Briefing) -> str:
    def refs(block: Block) -> str:
        return "".join(f"[^{n}]" for n in block.refs)

    lines = [f"# {briefing.title}", ""]
    for block in briefing.blocks:
        if block.kind == "heading":
            lines += [f"## {block.text}", ""]
        elif block.kind == "paragraph":
            lines += [block.text + refs(block), ""]
        elif block.kind == "bullets":
            lines += [f"- {item}" + (f"[^{n}]" if n else "") for item, n in _with_refs(block)]
            if block.refs:
                lines.append(f"\n(数据来源{refs(block)})")
            lines.append("")
        elif block.kind == "table":
            lines.append("| " + " | ".join(block.header) + " |")
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in block.rows]
            lines += ["", f"(数据来源{refs(block)})", ""]
    lines += ["---", "", "数据来源(均为本服务的 API 请求,可复核):", ""]
    lines += [f"[^{n}]: {what}:<{url}>" for n, (what, url) in enumerate(briefing.sources, 1)]
    return "\n".join(lines) + "\n"


def briefing_docx(briefing: Briefing) -> bytes:
    """The same draft as an editable Word document (python-docx); sources are numbered and linked."""
    document = Document()
    style = document.styles["Normal"]
    style.font.size = Pt(11)
    # East Asian text needs its own font slot, or Word falls back to a Latin font's missing glyphs.
    style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "宋体")
    document.add_heading(briefing.title, level=1)

    def marks(block: Block) -> str:
        return "".join(f"[{n}]" for n in block.refs)

    for block in briefing.blocks:
        if block.kind == "heading":
            document.add_heading(block.text, level=2)
        elif block.kind == "paragraph":
            document.add_paragraph(block.text + marks(block))
        elif block.kind == "bullets":
            for item, n in _with_refs(block):
                document.add_paragraph(item + (f"[{n}]" if n else ""), style="List Bullet")
            if block.refs:
                document.add_paragraph(f"(数据来源 {marks(block)})")
        elif block.kind == "table":
            table = document.add_table(rows=1, cols=len(block.header))
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, block.header, strict=True):
                cell.text = text
            for row in block.rows:
                for cell, text in zip(table.add_row().cells, row, strict=True):
                    cell.text = text
            document.add_paragraph(f"(数据来源 {marks(block)})")
    document.add_heading("数据来源", level=2)
    for n, (what, url) in enumerate(briefing.sources, 1):
        paragraph = document.add_paragraph(f"[{n}] {what}:")
        _hyperlink(paragraph, url)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _hyperlink(paragraph: Paragraph, url: str) -> None:
    """A clickable link (python-docx has no public API for one: the relationship and run by hand)."""
    rel = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rel)
    run = OxmlElement("w:r")
    props = OxmlElement("w:rPr")
    style = OxmlElement("w:rStyle")
    style.set(qn("w:val"), "Hyperlink")
    props.append(style)
    underline = OxmlElement("w:u")
    underline.set(qn("w:val"), "single")
    props.append(underline)
    run.append(props)
    text = OxmlElement("w:t")
    text.text = url
    run.append(text)
    link.append(run)
    paragraph._p.append(link)
