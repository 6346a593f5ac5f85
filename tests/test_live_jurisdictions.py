"""Two counties on a real server process (`plan-api serve`), set up by the operator's commands: the
seed county at first start, 渠县's plan by `plan-api import`, keys by `plan-api keys create`. A unit
key of one county is refused on the other county's task over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import fresh_database_url
from tests.factories import QU, QU_SLUG, SEED_SLUG, XIJI, qu_plan_text, run_plan_api, start_server, units_dir

REPORT = {"status": "in_progress", "percent": 30, "summary": "已部署。", "period": "2023-H1"}


def _secret(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_cross_county_key_is_refused_by_a_real_server(backend: str, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    # The platform's unit files: 西吉县's and 渠县's (read by the server and the commands from .env).
    (workdir / ".env").write_text(f"SEED_UNITS_PATH={units_dir(tmp_path)}\n", encoding="utf-8")
    plan = tmp_path / "qu.txt"
    plan.write_text(qu_plan_text(), encoding="utf-8")
    for url in fresh_database_url(backend, tmp_path):
        server = start_server(url, workdir)
        try:

            def run(*args: str, url: str = url) -> tuple[int, str, str]:
                result = run_plan_api(*args, database_url=url, cwd=workdir)
                assert "Traceback" not in result.stderr, result.stderr
                return result.returncode, result.stdout, result.stderr

            code, out, err = run("import", str(plan), "--slug", QU_SLUG)
            assert code == 0, err
            assert f"jurisdiction: 渠县 {QU} (from 索引号" in out

            code, _, err = run("keys", "create", "--unit", "县司法局")
            assert code == 1 and "西吉县" in err and "渠县" in err  # ambiguous: never a guess
            code, out, err = run("keys", "create", "--unit", "县司法局", "--jurisdiction", XIJI)
            assert code == 0, err
            xiji_key = _secret(out)
            code, out, err = run("keys", "create", "--unit", "司法局", "--jurisdiction", "渠县")
            assert code == 0, err
            qu_key = _secret(out)
            code, out, err = run("keys", "create", "--admin", "--name", "平台")
            assert code == 0 and "PLATFORM-WIDE" in out, err
            code, out, err = run("keys", "create", "--admin", "--name", "渠县依法治县办", "--jurisdiction", QU)
            assert code == 0 and f"渠县 {QU}" in out, err
            qu_admin = _secret(out)
            code, out, err = run("jurisdictions", "add", "640422100", "吉强镇", "--parent", XIJI)
            assert code == 0 and "吉强镇 640422100" in out, err

            with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as client:

                def post(slug: str, key: str) -> httpx.Response:
                    return client.post(
                        f"/api/v1/plans/{slug}/tasks/2.3.3/progress",
                        json=REPORT,
                        headers={"Authorization": f"Bearer {key}"},
                    )

                for key, other in ((xiji_key, QU_SLUG), (qu_key, SEED_SLUG)):
                    refused = post(other, key)
                    assert refused.status_code == 403, refused.text
                    assert refused.json()["code"] == "outside-jurisdiction"
                    assert refused.headers["content-type"].startswith("application/problem+json")
                assert post(SEED_SLUG, xiji_key).status_code == 201
                assert post(QU_SLUG, qu_key).status_code == 201
                keys = client.get("/api/v1/admin/keys", headers={"Authorization": f"Bearer {qu_admin}"}).json()
                assert {k["jurisdiction"]["code"] for k in keys["items"]} == {QU}
                tree = client.get(f"/api/v1/jurisdictions/{XIJI}").json()
                assert [c["code"] for c in tree["children"]] == ["640422100"]
        finally:
            server.stop()
