"""Department commands: `tasks`, `template`, `submit` (also mounted in the server's `plan-api`).

The server URL and key come from `--url`/`--key` or `PLAN_API_URL`/`PLAN_API_KEY`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from plan_api_client.client import PlanAPI, SubmitResult
from plan_api_client.errors import PlanAPIError
from plan_api_client.sheets import (
    ROLE_LABELS,
    STATUS_LABELS,
    SheetError,
    parse_rows,
    read_rows,
    results_path,
    write_results,
)

app = typer.Typer(
    help="部门报送工具 / department toolkit: tasks, template, submit", no_args_is_help=True, add_completion=False
)

UrlOpt = Annotated[
    str | None, typer.Option("--url", envvar="PLAN_API_URL", help="服务地址 / server URL", show_envvar=True)
]
KeyOpt = Annotated[
    str | None, typer.Option("--key", envvar="PLAN_API_KEY", help="单位 API 密钥 / API key", show_envvar=True)
]

OUTCOME_LABELS = {"new": "新增", "corrected": "更正", "replayed": "已存在", "failed": "失败"}


def _die(message: str, code: int = 2) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _client(url: str | None, key: str | None) -> PlanAPI:
    if not url:
        _die("缺少服务地址:使用 --url 或设置 PLAN_API_URL / no server URL (--url or PLAN_API_URL)")
    return PlanAPI(url, key)


def _short_title(task: dict[str, Any]) -> str:
    """The plan's title, else the text's first clause (the server's template does the same)."""
    if task.get("title"):
        return str(task["title"])
    first = re.split(r"[,。;:,;]", str(task.get("text", "")), maxsplit=1)[0]
    return first[:40]


def _roles(task: dict[str, Any]) -> str:
    links = (task.get("matched_via") or {}).get("links") or []
    return "、".join(sorted({ROLE_LABELS.get(link["role"], link["role"]) for link in links}))


@app.command("tasks")
def tasks_command(
    unit: Annotated[str, typer.Option(help="单位名称、别名或 id / unit")],
    plan: Annotated[str | None, typer.Option(help="只看某一方案 / plan slug")] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """列出本单位的任务(含经所属组的任务)/ List the unit's tasks (also through its groups)."""
    with _client(url, key) as api:
        try:
            for task in api.unit_tasks(unit, include_groups=True, limit=500):
                if plan and task.get("plan") != plan:
                    continue
                status = STATUS_LABELS.get(task["status"], task["status"])
                typer.echo(
                    f"{task['plan']}\t{task['code']}\t{_roles(task)}\t{status}\t{task['progress']}%\t{_short_title(task)}"
                )
        except PlanAPIError as exc:
            _die(str(exc), 1)


@app.command("template")
def template_command(
    unit: Annotated[str, typer.Option(help="单位名称、别名或 id / unit")],
    output: Annotated[Path, typer.Option("-o", "--output", help="输出文件 .xlsx 或 .csv / output file")],
    plan: Annotated[str | None, typer.Option(help="方案 slug / plan slug")] = None,
    period: Annotated[str | None, typer.Option(help="预填的报告期,如 2024-Q1 / prefill this period")] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """下载本单位的报送模板 / Download the unit's fill-in template."""
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("xlsx", "csv"):
        _die("输出文件应以 .xlsx 或 .csv 结尾 / -o must end in .xlsx or .csv")
    with _client(url, key) as api:
        try:
            data = api.template(unit, plan=plan, period=period, format=fmt)
        except PlanAPIError as exc:
            _die(str(exc), 1)
    output.write_bytes(data)
    typer.echo(f"已保存模板 {output} / template saved")


def _reason(error: PlanAPIError) -> str:
    fields = ";".join(f"{e.field}: {e.message}" for e in error.errors)
    return f"{error.detail}({fields})" if fields else error.detail


def _kind(result: SubmitResult) -> str:
    if result.outcome == "error":
        return "failed"
    if result.outcome == "replayed":
        return "replayed"
    return "corrected" if result.corrected else "new"


@app.command("submit")
def submit_command(
    file: Annotated[
        Path, typer.Argument(help="填好的 .xlsx、.csv 或 .json / the filled file", exists=True, dir_okay=False)
    ],
    plan: Annotated[str, typer.Option(help="方案 slug / plan slug")],
    period: Annotated[str | None, typer.Option(help="报告期列为空时使用 / period for rows that leave it empty")] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="只校验,不报送:先本地校验;给出服务地址时再由服务端逐行校验(权限、报告期等),不写入"
            " / validate only: locally, then on the server (nothing written) when a server is given",
        ),
    ] = False,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """校验并报送进展(重复报送不会重复记录)/ Validate and submit reports; re-sending never duplicates."""
    unit_word = "条" if file.suffix.lower() == ".json" else "行"
    try:
        parsed = parse_rows(read_rows(file), period=period, unit_word=unit_word)
    except SheetError as exc:
        _die(f"{file.name}:{exc}")
    for message in parsed.messages():
        typer.echo(message, err=True)
    bad_rows = sorted(parsed.errors)
    typer.echo(
        f"{len(parsed.reports)} {unit_word}校验通过,{len(bad_rows)} {unit_word}有错误,"
        f"{len(parsed.skipped)} {unit_word}未填写(跳过)/ valid, invalid, empty rows"
    )
    if dry_run:
        _dry_run(parsed.reports, bad_rows, plan=plan, url=url, key=key, unit_word=unit_word)
        return
    if not parsed.reports and not bad_rows:
        _die("没有可报送的内容 / nothing to submit", 1)

    lines: list[tuple[int, str, str, str, int | None, str]] = []
    counts = dict.fromkeys(OUTCOME_LABELS, 0)
    if parsed.reports:
        with _client(url, key) as api:
            reports = [report for _, report in parsed.reports]
            try:
                with typer.progressbar(length=len(reports), label="报送中 / sending", file=None) as bar:
                    results = api.submit_many(
                        reports, plan=plan, on_chunk=lambda done, total: bar.update(done - bar.pos)
                    )
            except PlanAPIError as exc:
                # The whole batch was refused (a bad key, say): every row failed, with that reason. Batches
                # sent before it are stored; sending the file again after the fix reports them 已存在.
                typer.echo(f"报送被拒绝 / submission refused:\n{exc}", err=True)
                results = [
                    SubmitResult(index=i, task=r["task"], outcome="error", error=exc) for i, r in enumerate(reports)
                ]
            except httpx.TransportError as exc:
                _die(f"无法连接服务 / cannot reach the server: {exc}", 1)
        for (number, report), result in zip(parsed.reports, results, strict=True):
            kind = _kind(result)
            counts[kind] += 1
            report_id = result.report["id"] if result.report else None
            reason = _reason(result.error) if result.error else ""
            lines.append((number, report["task"], report["period"], OUTCOME_LABELS[kind], report_id, reason))
    for number, problems in parsed.errors.items():
        lines.append(
            (number, parsed.error_tasks.get(number, ""), "", OUTCOME_LABELS["failed"], None, ";".join(problems))
        )
    counts["failed"] += len(bad_rows)
    lines.sort(key=lambda line: line[0])
    for number, task, row_period, outcome, report_id, reason in lines:
        typer.echo(f"第 {number} {unit_word}\t{task}\t{row_period}\t{outcome}\t{report_id or ''}\t{reason}")
    typer.echo(" / ".join(f"{OUTCOME_LABELS[k]} {v}" for k, v in counts.items()))
    out = results_path(file)
    write_results(out, lines)
    typer.echo(f"结果已写入 {out} / results written")
    if counts["failed"]:
        raise typer.Exit(1)


DRY_RUN_LABELS = {"would_create": "将报送", "would_replay": "已存在", "error": "失败"}


def _dry_run(
    reports: list[tuple[int, dict[str, Any]]],
    bad_rows: list[int],
    *,
    plan: str,
    url: str | None,
    key: str | None,
    unit_word: str,
) -> None:
    """`submit --dry-run`: the local check, then — when a server is given — the server's own checks of
    every valid row (permission, period and cadence, …), which write nothing."""
    failed = len(bad_rows)
    if url and reports:
        with _client(url, key) as api:
            try:
                checked = api.check_many([report for _, report in reports], plan=plan)
            except PlanAPIError as exc:
                _die(f"服务端校验被拒绝 / the server refused the check:\n{exc}", 1)
            except httpx.TransportError as exc:
                _die(f"无法连接服务 / cannot reach the server: {exc}", 1)
        for (number, report), result in zip(reports, checked, strict=True):
            reason = _reason(result.error) if result.error else ""
            label = DRY_RUN_LABELS.get(result.outcome, result.outcome)
            typer.echo(f"第 {number} {unit_word}\t{report['task']}\t{report['period']}\t{label}\t{reason}")
            if result.outcome == "error":
                typer.echo(f"第 {number} {unit_word}:{reason}", err=True)
                failed += 1
        typer.echo("服务端校验完成,未写入任何数据(--dry-run)/ checked by the server, nothing written")
    if failed:
        _die(f"校验未通过:{failed} {unit_word}有错误 / validation failed", 1)
    typer.echo("校验通过,未报送(--dry-run)/ valid, nothing sent")


def mount(target: typer.Typer) -> None:
    """Adds `tasks`, `template` and `submit` to another typer app (the server's `plan-api`)."""
    for command in app.registered_commands:
        target.registered_commands.append(command)
