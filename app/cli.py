"""`plan-api`: serve, migrate, import, version, keys, schedule, rederive; and the department commands
(`tasks`, `template`, `submit`) of the client package, which talk to a server over HTTP."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from plan_api_client import cli as client_cli
from sqlmodel import Session, col, select

from app import __version__
from app.core.config import get_settings
from app.db import get_engine
from app.errors import NotFound, ProblemError
from app.importer.jurisdiction import JurisdictionNotInferred
from app.importer.loader import ImportSummary, PlanMovedError, UnknownUnitsError
from app.importer.parsed import ParsedPlan
from app.importer.parser import PlanTextError, parse_term
from app.importer.service import import_file, seed_if_empty
from app.importer.units import UnitFileError
from app.migrate import upgrade_to_head
from app.models import Cadence, Jurisdiction, JurisdictionLevel, Plan
from app.services import derivation
from app.services.feed import record_event
from app.services.jurisdictions import create_local
from app.services.jurisdictions import resolve as resolve_jurisdiction
from app.services.keys import create_key, list_keys, revoke_key
from app.services.plans import get_plan
from app.services.schedule import get_schedule, schedule_values, set_schedule
from app.services.units import find_unit

app = typer.Typer(help="西吉县实施方案数据服务 / county plan API", no_args_is_help=True, add_completion=False)


def _setup_logging() -> None:
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step is noise here


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def migrate() -> None:
    """Upgrade the database to the latest schema (DATABASE_URL)."""
    _setup_logging()
    upgrade_to_head(get_engine())
    typer.echo("数据库已迁移到最新版本 / database at head")


@app.command()
def seed() -> None:
    """Load the county's units and the seed plan if the database has no seed plan yet."""
    _setup_logging()
    with Session(get_engine()) as session:
        summary = seed_if_empty(session=session, settings=get_settings())
    typer.echo("已导入种子方案 / seeded" if summary else "种子方案已存在 / already seeded")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="listen port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Migrate, seed on first start, then serve the API with uvicorn."""
    import uvicorn

    _setup_logging()
    upgrade_to_head(get_engine())
    with Session(get_engine()) as session:
        seed_if_empty(session=session, settings=get_settings())
    get_engine().dispose()  # uvicorn's workers open their own connections
    settings = get_settings()
    # Forwarded headers are believed only from the proxies named in FORWARDED_ALLOW_IPS: otherwise
    # any caller could write the address the audit log records.
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )


SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def _check_slug(slug: str) -> str:
    # The slug is part of every URL integrators store: keep it plain.
    if not SLUG.match(slug):
        raise typer.BadParameter(
            "只能用小写字母、数字和连字符(不在首尾),至多 64 个字符,如 xiji-fzsh-2021-2025 / a-z, 0-9 and -"
        )
    return slug


def _check_term(term: str | None) -> str | None:
    if term is not None:
        try:
            parse_term(term)
        except PlanTextError as exc:
            raise typer.BadParameter(str(exc)) from None
    return term


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="plan text file (UTF-8 or GB18030)")],
    slug: Annotated[str, typer.Option(help="stable plan id, e.g. xiji-fzsh-2021-2025", callback=_check_slug)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="parse and report; write nothing")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="fail on unknown unit names")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    term: Annotated[
        str | None,
        typer.Option(
            help="plan term YYYY-YYYY, e.g. 2012-2016; wins over the text; `open`: the text states none, leave it open",
            callback=_check_term,
        ),
    ] = None,
    jurisdiction: Annotated[
        str | None,
        typer.Option(
            help="the plan's jurisdiction, code or name (default: read off the document's 索引号/issuer/title)"
        ),
    ] = None,
) -> None:
    """Import (or re-import) a plan text: one transaction, idempotent."""
    _setup_logging()
    if not path.is_file():
        _fail(f"找不到文件 {path} / no such file")
    settings = get_settings()
    upgrade_to_head(get_engine())
    with Session(get_engine()) as session:
        try:
            parsed, summary = import_file(
                session=session,
                path=path,
                slug=slug,
                units_path=settings.seed_units_path,
                strict=strict,
                term=parse_term(term) if term else None,
                jurisdiction=jurisdiction,
            )
        except (PlanTextError, UnknownUnitsError, UnitFileError, JurisdictionNotInferred, PlanMovedError) as exc:
            session.rollback()
            _fail(str(exc))
        if dry_run:
            session.rollback()
        else:
            session.commit()
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, **asdict(summary)}, ensure_ascii=False, indent=2))
        return
    if dry_run:
        _print_structure(parsed)
    _print_summary(summary, dry_run=dry_run)


def _fail(message: str, *, what: str = "导入失败 / import refused") -> NoReturn:
    typer.secho(f"{what}: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=1)


def _print_structure(parsed: ParsedPlan) -> None:
    term = f"{parsed.period_start}-{parsed.period_end}" if parsed.period_start else "实施期限未定 / term open"
    typer.echo(f"{parsed.title}({term})")
    tasks_by_section: dict[str, list[str]] = {}
    for task in parsed.tasks:
        units = ";".join(
            f"{role}:{'、'.join(m.as_written for m in task.units if m.role == role)}"
            for role in dict.fromkeys(m.role for m in task.units)
        )
        flag = " [编号推断]" if task.number_inferred else ""
        tasks_by_section.setdefault(task.section_code, []).append(f"    {task.code}{flag} {units}")
    for section in parsed.sections:
        indent = "" if section.level == 1 else "  "
        typer.echo(f"{indent}{section.code} {section.title}")
        for line in tasks_by_section.get(section.code, []):
            typer.echo(line)


def _print_summary(summary: ImportSummary, *, dry_run: bool) -> None:
    head = "试运行,未写入 / dry run, nothing written" if dry_run else "已导入 / imported"
    typer.echo(f"{head}: {summary.slug}")
    typer.echo(f"jurisdiction: {summary.jurisdiction_name} {summary.jurisdiction} (from {summary.jurisdiction_source})")
    typer.echo(
        f"tasks: {summary.tasks} (+{len(summary.tasks_added)} ~{len(summary.tasks_changed)} "
        f"-{len(summary.tasks_removed)})  links: {summary.links} (+{summary.links_added} -{summary.links_removed})"
        f"  units: {summary.units} (new: {len(summary.units_created)})  sections: {summary.sections}"
    )
    for warning in summary.warnings:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW)
    typer.echo(f"warnings: {len(summary.warnings)}")


KEYS_FAILED = "密钥操作失败 / key command refused"
keys_app = typer.Typer(help="API keys: create, list, revoke", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    unit: Annotated[str | None, typer.Option(help="unit id, name or alias (any alias resolves)")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="an admin key of the rule-of-law office")] = False,
    name: Annotated[str | None, typer.Option(help="key name (required with --admin)")] = None,
    jurisdiction: Annotated[
        str | None,
        typer.Option(
            help="--unit: the unit's jurisdiction, if the name is in several; --admin: the jurisdiction the key "
            "administers (with those below it). --admin without it: a platform-wide admin key"
        ),
    ] = None,
) -> None:
    """Create a key; the secret is printed once, as the last line."""
    _setup_logging()
    if admin == (unit is not None):
        _fail("请指定 --unit NAME 或 --admin --name NAME 之一 / give --unit or --admin", what=KEYS_FAILED)
    if admin and not name:
        _fail("管理密钥需要 --name / --admin needs --name", what=KEYS_FAILED)
    upgrade_to_head(get_engine())
    with Session(get_engine(), expire_on_commit=False) as session:  # key.prefix is printed after commit
        try:
            scope = resolve_jurisdiction(session=session, ref=jurisdiction, store=True) if jurisdiction else None
            found = find_unit(session=session, ref=unit, jurisdiction=scope) if unit else None
        except ProblemError as exc:
            _fail(exc.detail, what=KEYS_FAILED)
        if unit and found is None:
            _fail(f"未知单位“{unit}” / unknown unit", what=KEYS_FAILED)
        key_name = name or (found.name if found else "")
        key, secret = create_key(session=session, name=key_name, unit=found, is_admin=admin, jurisdiction=scope)
        where = found.jurisdiction if found else scope
        record_event(
            session=session,
            type="key.created",
            principal=None,
            actor="cli",
            remote_addr=None,
            unit_id=found.id if found else None,
            jurisdiction_id=key.jurisdiction_id,
            data={"prefix": key.prefix, "is_admin": admin, "name": key_name},
        )
        session.commit()
    typer.echo(f"已创建密钥 {key.prefix}({'管理' if admin else key_name});明文只显示这一次,请妥善保存 / shown once:")
    if where is None:
        typer.secho(
            "全平台管理密钥:可管理所有行政区划 / PLATFORM-WIDE admin key: every jurisdiction", fg=typer.colors.YELLOW
        )
    else:
        typer.echo(f"行政区划 / jurisdiction: {where.name} {where.code}" + (" 及其下级 / and below" if admin else ""))
    typer.echo(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefix, holder, state); never the secrets."""
    _setup_logging()
    upgrade_to_head(get_engine())
    with Session(get_engine()) as session:
        for key, unit in list_keys(session=session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            holder = "admin" if key.is_admin else (unit.name if unit else "?")
            place = session.get(Jurisdiction, key.jurisdiction_id) if key.jurisdiction_id else None
            where = f"{place.name} {place.code}" if place else "platform"
            typer.echo(f"{key.prefix}\t{holder}\t{where}\t{key.name}\t{key.created_at:%Y-%m-%d}\t{state}")


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="the key's prefix, as `keys list` shows it")]) -> None:
    """Revoke a key, effective at once."""
    _setup_logging()
    upgrade_to_head(get_engine())
    with Session(get_engine()) as session:
        try:
            key = revoke_key(session=session, prefix=prefix)
        except NotFound as exc:
            _fail(exc.detail, what=KEYS_FAILED)
        record_event(
            session=session,
            type="key.revoked",
            principal=None,
            actor="cli",
            remote_addr=None,
            unit_id=key.unit_id,
            data={"prefix": prefix},
        )
        session.commit()
    typer.echo(f"已吊销 / revoked: {prefix}")


SCHEDULE_FAILED = "报送周期操作失败 / schedule command refused"
schedule_app = typer.Typer(help="A plan's reporting schedule: show, set", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")


def _print_schedule(slug: str, values: dict[str, object]) -> None:
    typer.echo(f"plan: {slug}")
    for name, value in values.items():
        typer.echo(f"{name}: {value.value if isinstance(value, Cadence) else value}")


@schedule_app.command("show")
def schedule_show(plan: Annotated[str, typer.Argument(help="plan slug")]) -> None:
    """Show the plan's reporting schedule."""
    _setup_logging()
    upgrade_to_head(get_engine())
    with Session(get_engine()) as session:
        try:
            found = get_plan(session=session, slug=plan)
        except NotFound as exc:
            _fail(exc.detail, what=SCHEDULE_FAILED)
        _print_schedule(plan, schedule_values(get_schedule(session=session, plan=found)))


@schedule_app.command("set")
def schedule_set(
    plan: Annotated[str, typer.Argument(help="plan slug")],
    cadence: Annotated[Cadence | None, typer.Option(help="reporting cadence")] = None,
    deadline_days: Annotated[
        int | None, typer.Option(min=0, max=90, help="reports due this many days after a period ends")
    ] = None,
    cooperating: Annotated[
        bool | None, typer.Option("--cooperating/--no-cooperating", help="do cooperating units owe reports")
    ] = None,
    review: Annotated[bool | None, typer.Option("--review/--no-review", help="must reports be accepted first")] = None,
) -> None:
    """Change the plan's reporting schedule (audited, in the change feed); unset options stay."""
    _setup_logging()
    values = {
        name: value
        for name, value in (
            ("cadence", cadence),
            ("deadline_days", deadline_days),
            ("cooperating_units_report", cooperating),
            ("review_required", review),
        )
        if value is not None
    }
    if not values:
        _fail("请至少指定一项修改 / give at least one option", what=SCHEDULE_FAILED)
    upgrade_to_head(get_engine())
    with Session(get_engine()) as session:
        try:
            found = get_plan(session=session, slug=plan)
        except NotFound as exc:
            _fail(exc.detail, what=SCHEDULE_FAILED)
        schedule = set_schedule(
            session=session, plan=found, values=values, principal=None, remote_addr=None, actor="cli"
        )
        shown = schedule_values(schedule)
        session.commit()
    typer.echo("已更新报送周期 / schedule updated")
    _print_schedule(plan, shown)


@app.command()
def rederive(plan: Annotated[str | None, typer.Option(help="plan slug (default: every plan)")] = None) -> None:
    """Derive every task's state anew from its reports, by the rule in app/services/cycle.py.

    Run once after upgrading a database whose states were kept by an earlier rule (latest arrival)."""
    _setup_logging()
    upgrade_to_head(get_engine())
    with Session(get_engine()) as session:
        if plan is not None:
            try:
                plans = [get_plan(session=session, slug=plan)]
            except NotFound as exc:
                _fail(exc.detail, what="重新推导失败 / rederive refused")
        else:
            plans = list(session.exec(select(Plan).order_by(col(Plan.id))))
        lines = []
        for found in plans:
            assert found.id is not None
            changes = derivation.rederive_plan(session, found.id)
            moved = {
                c.task.code: {"from": c.before[0], "to": c.task.status, "progress": c.task.progress} for c in changes
            }
            record_event(
                session=session,
                type="plan.rederived",
                principal=None,
                actor="cli",
                remote_addr=None,
                plan_id=found.id,
                data={"changed": moved},
            )
            lines.append(f"{found.slug}: {len(moved)} task(s) changed {' '.join(sorted(moved))}".rstrip())
        session.commit()
    for line in lines:
        typer.echo(line)


JURISDICTIONS_FAILED = "区划操作失败 / jurisdiction command refused"
jurisdictions_app = typer.Typer(
    help="jurisdictions (行政区划): local additions such as townships", no_args_is_help=True
)
app.add_typer(jurisdictions_app, name="jurisdictions")


@jurisdictions_app.command("add")
def jurisdictions_add(
    code: Annotated[str, typer.Argument(help="division code: 9+ digits for a township, beginning with its county's")],
    name: Annotated[str, typer.Argument(help="name, e.g. 吉强镇")],
    level: Annotated[JurisdictionLevel, typer.Option(help="province | prefecture | county | township")] = (
        JurisdictionLevel.township
    ),
    parent: Annotated[str | None, typer.Option(help="the parent's code or name, e.g. 640422")] = None,
) -> None:
    """Add a jurisdiction the national table lacks (a township), under its parent."""
    _setup_logging()
    upgrade_to_head(get_engine())
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            above = resolve_jurisdiction(session=session, ref=parent, store=True) if parent else None
            row = create_local(session=session, code=code, name=name, level=level, parent=above)
        except ProblemError as exc:
            _fail(exc.detail, what=JURISDICTIONS_FAILED)
        record_event(
            session=session,
            type="jurisdiction.created",
            principal=None,
            actor="cli",
            remote_addr=None,
            jurisdiction_id=row.id,
            data={"code": row.code, "name": row.name, "level": row.level, "parent": above.code if above else None},
        )
        session.commit()
    typer.echo(
        f"已添加 / added: {row.name} {row.code} ({row.level})" + (f" ⊂ {above.name} {above.code}" if above else "")
    )


webhooks_app = typer.Typer(help="webhook delivery (推送): the worker", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("run")
def webhooks_run(
    once: Annotated[bool, typer.Option(help="one pass (fan out, deliver what is due), then exit")] = False,
) -> None:
    """Deliver webhooks from the change feed (and run the supervision watch) until stopped."""
    import signal
    import threading

    from app.services import supervision_watch, webhook_delivery

    _setup_logging()
    engine, settings = get_engine(), get_settings()
    upgrade_to_head(engine)
    if once:
        supervision_watch.watch(engine=engine, settings=settings)
        done = webhook_delivery.run_once(engine=engine, settings=settings)
        typer.echo(f"投递尝试 {done} 次 / {done} delivery attempts")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    typer.echo("推送投递进程已启动 / webhook worker running", err=True)
    webhook_delivery.run_forever(engine=engine, settings=settings, stop=stop)


client_cli.mount(app)  # tasks, template, submit: HTTP clients of a running server (PLAN_API_URL / PLAN_API_KEY)
