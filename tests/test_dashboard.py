"""/dashboard without a browser: strict parameters, the read rule (HTTP Basic for browsers), assets
from the package only, every number a link to an API request that answers, and the package data
that ships the templates and the vendored chart library."""

from __future__ import annotations

import base64
import re
import tomllib
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.api.deps import current_settings
from app.core.config import Settings
from app.dashboard import STATIC_DIR, TEMPLATES_DIR
from app.db import get_session, get_write_session
from app.main import create_app
from tests.factories import SEED_SLUG, make_key
from tests.test_docs_browser import _external_urls

ROOT = Path(__file__).resolve().parents[1]
PAGE = f"/dashboard/{SEED_SLUG}"
FIGURE = re.compile(r'<a class="num" href="([^"]+)" data-figure="([^"]+)"[^>]*>([^<]*)</a>')


def test_dashboard_redirects_to_the_only_plan(client: TestClient) -> None:
    response = client.get("/dashboard", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == PAGE


def test_page_uses_only_its_own_assets_and_every_number_links_to_an_answering_request(client: TestClient) -> None:
    response = client.get(PAGE, params={"as_of": "2024-02-01"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert _external_urls(page) == [], "the dashboard references outside URLs (CDN, fonts)"
    assets = re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", page)
    assert any(a.endswith("chart.umd.min.js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "Chart.js v4.6.1" in client.get("/static/dashboard/vendor/chartjs/chart.umd.min.js").text
    assert "MIT License" in client.get("/static/dashboard/vendor/chartjs/LICENSE.md").text

    figures = FIGURE.findall(page)
    assert len(figures) > 50
    stats = client.get(f"/api/v1/plans/{SEED_SLUG}/stats", params={"as_of": "2024-02-01"}).json()
    found = {name: (unescape(href), value) for href, name, value in figures}
    assert found["tasks"][1] == str(stats["tasks"]) and "/stats?as_of=2024-02-01" in found["tasks"][0]
    for href in {unescape(h) for h, _, _ in figures}:
        assert href.startswith("/api/v1/"), href
        assert client.get(href).status_code == 200, href


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"perod": "2023-Q4"}, 400, "query.perod"),
        ({"period": "2023-Q9"}, 400, "query.period"),
        ({"period": "2031-Q1"}, 400, "query.period"),
        ({"unit": "不存在的局"}, 400, "query.unit"),
        ({"as_of": "2024-02-30"}, 422, "query.as_of"),
        ({"unit": "司法局\x00"}, 400, "query.unit"),
    ],
)
def test_filters_are_strict_like_the_api(client: TestClient, params: dict[str, str], status: int, field: str) -> None:
    response = client.get(PAGE, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_unknown_plan_is_404(client: TestClient) -> None:
    assert client.get("/dashboard/no-such-plan").status_code == 404


def test_filters_narrow_to_a_unit_and_a_period(client: TestClient) -> None:
    page = client.get(PAGE, params={"as_of": "2024-02-01", "period": "2023-Q3", "unit": "司法局"}).text
    assert 'data-period="2023-Q3"' in page and "县司法局" in page
    rows = set(re.findall(r'data-unit-row="(\d+)"', page))
    unit = client.get("/api/v1/units/司法局").json()
    assert rows == {str(unit["id"])}
    assert "unit=%E5%8F%B8%E6%B3%95%E5%B1%80" in page  # the red list's and duties' links carry the unit


def _locked_app(db: Session) -> TestClient:
    app = create_app()
    app.dependency_overrides[get_session] = lambda: db
    app.dependency_overrides[get_write_session] = lambda: db
    app.dependency_overrides[current_settings] = lambda: Settings(require_key_for_reads=True)
    return TestClient(app)


def test_reads_with_a_key_required_a_browser_passes_it_by_basic_auth(db: Session) -> None:
    client = _locked_app(db)
    refused = client.get(PAGE)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    assert refused.headers["www-authenticate"].startswith('Basic realm="plan-api dashboard"')
    bearer = make_key(db, unit="司法局")
    key = bearer.removeprefix("Bearer ")
    basic = "Basic " + base64.b64encode(f"依法治县办:{key}".encode()).decode()
    assert client.get(PAGE, headers={"Authorization": basic}).status_code == 200
    assert client.get(PAGE, headers={"Authorization": bearer}).status_code == 200
    wrong = "Basic " + base64.b64encode(b"x:pa_deadbeef_nope").decode()
    assert client.get(PAGE, headers={"Authorization": wrong}).status_code == 401
    assert client.get(PAGE, headers={"Authorization": "Basic %%%"}).status_code == 401
    # The assets hold no data: the login box must not be needed for them.
    assert client.get("/static/dashboard/dashboard.css").status_code == 200


def test_package_data_ships_the_templates_and_assets() -> None:
    """A wheel (and the Docker image, which copies app/) carries every file the dashboard serves."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["app.dashboard"]
    package = TEMPLATES_DIR.parent
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    needed = {p for base in (TEMPLATES_DIR, STATIC_DIR) for p in base.rglob("*") if p.is_file()}
    assert needed and needed <= shipped, sorted(str(p.relative_to(package)) for p in needed - shipped)
    assert "COPY app ./app" in (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_before_any_deadline_there_is_no_period_yet(client: TestClient) -> None:
    page = client.get(PAGE, params={"as_of": "2021-02-01"}).text
    assert 'data-period=""' in page and "尚无已过报送期限的报告期" in page
    assert 'data-figure="compliance.rate"' not in page and 'id="chart-compliance"' not in page


def test_the_page_has_an_etag_and_revalidates(client: TestClient) -> None:
    first = client.get(PAGE, params={"as_of": "2024-02-01"})
    etag = first.headers["etag"]
    again = client.get(PAGE, params={"as_of": "2024-02-01"}, headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_recent_reports_are_the_first_page_of_one_api_request(client: TestClient, db: Session) -> None:
    justice, court = make_key(db, unit="司法局"), make_key(db, unit="法院")
    report = {"status": "in_progress", "percent": 60, "summary": "开展宪法进校园活动 42 场", "period": "2022-H2"}
    sent = {}
    for code, key in (("2.2.2", justice), ("4.1.2", justice), ("2.2.2", court)):
        response = client.post(
            f"/api/v1/plans/{SEED_SLUG}/tasks/{code}/progress", json=report, headers={"Authorization": key}
        )
        assert response.status_code == 201, response.text
        sent[response.json()["id"]] = key
    for params, expected in (({}, set(sent)), ({"unit": "司法局"}, {i for i, k in sent.items() if k == justice})):
        page = client.get(PAGE, params=params).text
        rows = [int(i) for i in re.findall(r'data-report="(\d+)"', page)]
        href, value = {name: (unescape(h), v) for h, name, v in FIGURE.findall(page)}["reports"]
        assert href.startswith(f"/api/v1/plans/{SEED_SLUG}/progress?"), href
        listed = client.get(href)
        assert listed.status_code == 200, listed.text
        assert [r["id"] for r in listed.json()["items"]] == rows and value == str(len(rows))  # the same list
        assert expected <= set(rows) and rows == sorted(rows, reverse=True)  # newest first
        if params:
            assert {r["unit"]["name"] for r in listed.json()["items"]} == {"县司法局"}
