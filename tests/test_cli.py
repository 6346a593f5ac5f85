"""`plan-api` as an operator runs it: the installed command in a subprocess, on a fresh SQLite file.

Exit codes, what is printed (and what never is: tracebacks, secrets) and what ends up in the database,
read back with the stdlib sqlite3 module, independently of the app.
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import __version__
from app.db import get_session, get_write_session, make_engine
from app.main import create_app
from tests.factories import SEED_PLAN, run_plan_api

FIXTURES = Path(__file__).parent / "fixtures"
KEY_RE = re.compile(r"^pa_([0-9a-f]{8})_[A-Za-z0-9_-]{20,}$")


class Cli:
    """`plan-api` bound to one fresh database file, run from an empty directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.db_path = tmp_path / "plan-api.sqlite3"
        self.url = f"sqlite:///{self.db_path}"

    def __call__(self, *args: str) -> tuple[int, str, str]:
        result = run_plan_api(*args, database_url=self.url, cwd=self.dir)
        assert "Traceback" not in result.stderr, result.stderr
        assert "Traceback" not in result.stdout, result.stdout
        return result.returncode, result.stdout, result.stderr

    def query(self, sql: str, *params: object) -> list[tuple]:
        with closing(sqlite3.connect(self.db_path)) as conn:
            return conn.execute(sql, params).fetchall()

    def count(self, table: str, where: str = "1=1", *params: object) -> int:
        return self.query(f"SELECT count(*) FROM {table} WHERE {where}", *params)[0][0]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_version(cli: Cli) -> None:
    code, out, _ = cli("version")
    assert code == 0 and out.strip() == __version__


def test_migrate_creates_the_schema_and_is_repeatable(cli: Cli) -> None:
    code, out, err = cli("migrate")
    assert code == 0, err
    assert "database at head" in out
    tables = {name for (name,) in cli.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"plan", "task", "unit", "responsibility", "progress_report", "api_key", "alembic_version"} <= tables
    (revision,) = cli.query("SELECT version_num FROM alembic_version")
    code, _, err = cli("migrate")
    assert code == 0, err
    assert cli.query("SELECT version_num FROM alembic_version") == [revision]


def test_dry_run_prints_the_structure_and_writes_nothing(cli: Cli) -> None:
    assert cli("migrate")[0] == 0
    code, out, err = cli("import", str(SEED_PLAN), "--slug", "x", "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "西吉县法治社会建设实施方案(2021-2025年)(2021-2025)"
    assert "2 推动全社会增强法治观念" in lines and "  2.1 维护宪法法律权威" in lines
    assert "    2.1.1 lead:委宣传部;cooperating:各乡镇、各部门(单位)" in lines
    assert "    2.1.3 [编号推断] responsible:县教育体育局" in lines
    assert sum(1 for line in lines if re.match(r"^    \d+\.\d+\.\d+ ", line)) == 76
    assert "dry run, nothing written: x" in out and "tasks: 76 (+76 ~0 -0)" in out
    # Nothing written: not the plan, not even the units the unit file would have created.
    assert [cli.count(t) for t in ("plan", "section", "task", "unit", "responsibility")] == [0, 0, 0, 0, 0]
    code, out, _ = cli("import", str(SEED_PLAN), "--slug", "x", "--dry-run", "--json")
    assert code == 0 and '"plan_created": true' in out  # still no plan x


def test_import_prints_a_summary_and_reimport_changes_nothing(cli: Cli) -> None:
    code, out, err = cli("import", str(SEED_PLAN), "--slug", "x")  # migrates an empty database itself
    assert code == 0, err
    assert "imported: x" in out
    assert "tasks: 76 (+76 ~0 -0)" in out and "links: 286 (+286 -0)" in out
    assert cli.count("task") == 76 and cli.query("SELECT slug FROM plan") == [("x",)]
    task_ids = cli.query("SELECT id, code FROM task ORDER BY id")

    code, out, err = cli("import", str(SEED_PLAN), "--slug", "x")
    assert code == 0, err
    assert "tasks: 76 (+0 ~0 -0)" in out and "links: 286 (+0 -0)" in out
    assert cli.query("SELECT id, code FROM task ORDER BY id") == task_ids  # ids stay
    assert cli.count("plan") == 1


def test_strict_refuses_unknown_units_in_chinese(cli: Cli) -> None:
    # The fixture has no header to read the jurisdiction off: it is given, by name.
    code, out, err = cli(
        "import", str(FIXTURES / "inline_units.txt"), "--slug", "y", "--strict", "--jurisdiction", "西吉县"
    )
    assert code == 1
    assert "县政务服务管理局" in err and "无法识别" in err and "--strict" in err
    assert "imported" not in out
    assert cli.count("plan") == 0 and cli.count("unit", "name = ?", "县政务服务管理局") == 0
    # Without --strict the same file goes in, with the unknown unit created and warned about.
    code, out, err = cli("import", str(FIXTURES / "inline_units.txt"), "--slug", "y", "--jurisdiction", "640422")
    assert code == 0, err
    assert "县政务服务管理局" in out and cli.count("unit", "name = ? AND kind = 'other'", "县政务服务管理局") == 1


def test_a_plan_whose_jurisdiction_cannot_be_read_is_refused(cli: Cli) -> None:
    # No 索引号, no issuer, a title naming no division: an error saying what to do, never a default.
    code, out, err = cli("import", str(FIXTURES / "inline_units.txt"), "--slug", "y")
    assert code == 1 and "--jurisdiction" in err and "imported" not in out
    assert cli.count("plan") == 0 and cli.count("unit") == 0
    code, _, err = cli("import", str(FIXTURES / "inline_units.txt"), "--slug", "y", "--jurisdiction", "火星县")
    assert code == 1 and "火星县" in err
    code, out, err = cli("import", str(SEED_PLAN), "--slug", "x")
    assert code == 0 and "jurisdiction: 西吉县 640422 (from 索引号 640422001/2022-00081 → 640422)" in out, err
    assert cli.query("SELECT code, name, level FROM jurisdiction ORDER BY code") == [
        ("640000", "宁夏回族自治区", "province"),
        ("640400", "固原市", "prefecture"),
        ("640422", "西吉县", "county"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "文件为空", id="empty"),
        pytest.param(b"  \n\n\t \n", "文本为空", id="only-whitespace"),
        pytest.param(bytes(range(256)) * 8, "无法识别编码", id="binary"),
        pytest.param(zlib.compress(SEED_PLAN.read_bytes()), "无法识别编码", id="compressed-plan"),
        pytest.param("一、总体要求\n".encode() + b"\x00" * 50, "不是文本文件", id="nul-bytes"),
    ],
)
def test_unreadable_files_are_refused(cli: Cli, content: bytes, message: str) -> None:
    path = cli.dir / "plan.txt"
    path.write_bytes(content)
    code, out, err = cli("import", str(path), "--slug", "bad")
    assert code == 1
    assert message in err, err
    assert "import refused" in err and "imported" not in out
    assert cli.count("plan") == 0


def test_missing_file_is_refused(cli: Cli) -> None:
    code, _, err = cli("import", str(cli.dir / "nope.txt"), "--slug", "bad")
    assert code == 1
    assert "找不到文件" in err and "nope.txt" in err


@pytest.mark.parametrize("slug", ["Bad Slug", "trail-", "-lead", "中文", "a" * 65, ""])
def test_slugs_that_would_make_poor_urls_are_refused(cli: Cli, slug: str) -> None:
    code, _, err = cli("import", str(SEED_PLAN), "--slug", slug)
    assert code == 2 and "--slug" in err
    assert not cli.db_path.exists() or cli.count("plan") == 0


@contextmanager
def client_on(url: str) -> Iterator[TestClient]:
    """The app on the CLI's database file (the real request sessions, not a test transaction)."""
    engine = make_engine(url)

    def read() -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    def write() -> Iterator[Session]:
        with Session(engine.execution_options(sqlite_immediate=True)) as session:
            yield session

    app = create_app()
    app.dependency_overrides[get_session] = read
    app.dependency_overrides[get_write_session] = write
    try:
        with TestClient(app) as client:
            yield client
    finally:
        engine.dispose()


def test_key_lifecycle(cli: Cli) -> None:
    assert cli("import", str(SEED_PLAN), "--slug", "x")[0] == 0
    code, out, err = cli("keys", "create", "--unit", "司法局")  # an alias resolves
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    match = KEY_RE.match(secret)
    assert match, f"last line is not a key: {secret!r}"
    prefix = match.group(1)
    assert prefix in out.splitlines()[0] and "县司法局" in out.splitlines()[0]
    # Only a hash is stored.
    assert cli.query("SELECT prefix, name FROM api_key") == [(prefix, "县司法局")]
    assert secret not in str(cli.query("SELECT * FROM api_key"))

    code, listed, _ = cli("keys", "list")
    assert code == 0
    assert re.search(rf"^{prefix}\t县司法局\t.*\tactive$", listed, re.MULTILINE), listed
    assert secret not in listed and secret.split("_", 2)[2] not in listed

    report = {"status": "in_progress", "percent": 10, "summary": "已部署。", "period": "2023-H1"}
    with client_on(cli.url) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        response = client.post("/api/v1/plans/x/tasks/2.3.3/progress", json=report, headers=headers)
        assert response.status_code == 201, response.text

        code, out, err = cli("keys", "revoke", prefix)
        assert code == 0, err
        assert prefix in out
        code, listed, _ = cli("keys", "list")
        assert re.search(rf"^{prefix}\t县司法局\t.*\trevoked \d{{4}}-\d{{2}}-\d{{2}}$", listed, re.MULTILINE), listed

        # Effective at once, on the running app.
        response = client.post("/api/v1/plans/x/tasks/2.3.3/progress", json=report, headers=headers)
        assert response.status_code == 401, response.text
        assert "吊销" in response.json()["detail"]
    events = [t for (t,) in cli.query("SELECT type FROM change_event ORDER BY seq")]
    assert events.count("key.created") == 1 and events.count("key.revoked") == 1


def test_admin_key_needs_a_name(cli: Cli) -> None:
    code, _, err = cli("keys", "create", "--admin")
    assert code == 1 and "--name" in err
    code, out, err = cli("keys", "create", "--admin", "--name", "依法治县办")
    assert code == 0, err
    assert KEY_RE.match(out.strip().splitlines()[-1])
    assert cli.query("SELECT is_admin, unit_id FROM api_key") == [(1, None)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "--unit", id="neither-unit-nor-admin"),
        pytest.param(["--unit", "司法局", "--admin", "--name", "x"], "--unit", id="both"),
        pytest.param(["--unit", "不存在局"], "未知单位“不存在局”", id="unknown-unit"),
    ],
)
def test_keys_create_refusals(cli: Cli, args: list[str], message: str) -> None:
    code, out, err = cli("keys", "create", *args)
    assert code == 1
    assert message in err, err
    assert "pa_" not in out
    assert not cli.db_path.exists() or cli.count("api_key") == 0


def test_revoking_an_unknown_prefix_fails(cli: Cli) -> None:
    assert cli("migrate")[0] == 0
    code, _, err = cli("keys", "revoke", "deadbeef")
    assert code == 1 and "deadbeef" in err


def test_term_option_imports_a_plan_whose_text_names_no_term(cli: Cli) -> None:
    path = cli.dir / "opinion.txt"
    path.write_text(
        "关于推进法治建设的实施意见\n一、任务\n(一)甲组\n1.2014年完成甲。(牵头单位:县司法局)\n", encoding="utf-8"
    )
    code, _, err = cli("import", str(path), "--slug", "opinion")
    assert code == 1 and "找不到实施期限" in err and "--term" in err
    assert cli.count("plan") == 0
    code, out, err = cli("import", str(path), "--slug", "opinion", "--term", "2012-2016", "--jurisdiction", "640422")
    assert code == 0, err
    assert "实施期限取自 --term 2012-2016 / term taken from --term" in out
    assert cli.query("SELECT period_start, period_end FROM plan WHERE slug = 'opinion'") == [(2012, 2016)]
    assert cli.query("SELECT due FROM task") == [("2014-12-31",)]


@pytest.mark.parametrize("term", ["2016-2012", "２０１２-２０１６", "2012–2016", "2012", "0000-2016"])
def test_malformed_term_is_a_usage_error(cli: Cli, term: str) -> None:
    code, _, err = cli("import", str(SEED_PLAN), "--slug", "x", "--term", term)
    assert code == 2 and "--term" in err and "实施期限" in err, err
    assert not cli.db_path.exists() or cli.count("plan") == 0


def test_schedule_show_and_set(cli: Cli) -> None:
    assert cli("import", str(SEED_PLAN), "--slug", "x")[0] == 0
    # A new plan gets its schedule row, with the defaults.
    assert cli.query(
        "SELECT cadence, deadline_days, cooperating_units_report, review_required FROM reporting_schedule"
    ) == [("quarterly", 10, 0, 0)]
    code, out, err = cli("schedule", "show", "x")
    assert code == 0, err
    assert "cadence: quarterly" in out and "deadline_days: 10" in out and "review_required: False" in out

    code, out, err = cli("schedule", "set", "x", "--cadence", "monthly", "--deadline-days", "5", "--review")
    assert code == 0, err
    assert "cadence: monthly" in out and "deadline_days: 5" in out and "review_required: True" in out
    assert "cooperating_units_report: False" in out  # left as it was
    assert cli.query(
        "SELECT cadence, deadline_days, cooperating_units_report, review_required FROM reporting_schedule"
    ) == [("monthly", 5, 0, 1)]
    [(actor, data)] = cli.query("SELECT actor, data FROM change_event WHERE type = 'schedule.changed'")
    assert actor == "cli" and '"to": {"cadence": "monthly", "deadline_days": 5, "review_required": true}' in data
    assert cli.query("SELECT seq FROM change_event WHERE type = 'schedule.changed'")[0][0] is not None

    for args, message in (
        (["set", "x"], "至少"),
        (["set", "x", "--deadline-days", "91"], "'--deadline-days'"),
        (["set", "x", "--cadence", "weekly"], "'weekly'"),
        (["show", "nope"], "nope"),
    ):
        code, _, err = cli("schedule", *args)
        assert code != 0 and message in err, (args, err)
    assert cli.count("change_event", "type = 'schedule.changed'") == 1


def test_rederive_restores_the_state_the_rule_gives(cli: Cli) -> None:
    assert cli("import", str(SEED_PLAN), "--slug", "x")[0] == 0
    secret = cli("keys", "create", "--unit", "司法局")[1].strip().splitlines()[-1]
    report = {"status": "in_progress", "percent": 60, "summary": "四季度", "period": "2023-Q4"}
    with client_on(cli.url) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        q4 = client.post("/api/v1/plans/x/tasks/2.3.3/progress", json=report, headers=headers).json()["id"]
        q3 = client.post(
            "/api/v1/plans/x/tasks/2.3.3/progress", json={**report, "percent": 40, "period": "2023-Q3"}, headers=headers
        ).json()["id"]
    # As an earlier rule (latest arrival) left it, or a raw SQL edit.
    with closing(sqlite3.connect(cli.db_path)) as conn, conn:
        conn.execute("UPDATE task SET progress = 40 WHERE code = '2.3.3'")
        conn.execute("UPDATE task_unit_state SET report_id = ?, percent = 40, period = '2023-Q3'", (q3,))

    code, out, err = cli("rederive", "--plan", "x")
    assert code == 0, err
    assert "x: 1 task(s) changed 2.3.3" in out
    assert cli.query("SELECT status, progress FROM task WHERE code = '2.3.3'") == [("in_progress", 60)]
    assert cli.query("SELECT report_id, percent, period FROM task_unit_state") == [(q4, 60, "2023-Q4")]
    assert cli.count("change_event", "type = 'plan.rederived' AND seq IS NOT NULL") == 1

    code, out, _ = cli("rederive")  # every plan; nothing left to change
    assert code == 0 and "x: 0 task(s) changed" in out
    code, _, err = cli("rederive", "--plan", "nope")
    assert code == 1 and "nope" in err
