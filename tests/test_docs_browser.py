"""/docs (Swagger UI) and /redoc render in a real browser with no outside network.

The county intranet has no route to any CDN, so the docs pages must load their JavaScript and CSS
from the service itself (`FastAPIOffline` serves them from the `fastapi-offline` package). These
tests start the real server (`plan-api serve` on a fresh SQLite file) and open the pages in headless
Chromium whose resolver refuses every host except 127.0.0.1: a page that needed a CDN would stay an
empty shell. The assertions are on the rendered DOM, i.e. on what the JavaScript built.

A control pair proves the harness can tell the difference: one page built on the service's own
Swagger UI bundle renders, while the same page on the CDN bundle does not.

The browser tests (marked `browser`) skip when Chromium is missing, except in CI (`CI=true`), where
that is a failure. The HTML check needs no browser.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.factories import LiveServer, start_server

BROWSER_REQUIRED = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BROWSER_TIMEOUT = 180.0  # wall clock for one Chromium run
VIRTUAL_TIME_BUDGET_MS = 30_000  # virtual time only advances when the page is idle; network waits pause it
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
URL_RE = re.compile(r"""https?://[^\s"'<>()]+""", re.IGNORECASE)


def _chromium() -> str:
    found = os.environ.get("PLAN_API_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "headless Chromium not found (apt-get install chromium, or set PLAN_API_TEST_CHROMIUM)"
    if BROWSER_REQUIRED:
        pytest.fail(f"Chromium is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`plan-api serve` on a fresh SQLite database and a kernel-chosen port (no port race)."""
    workdir = tmp_path_factory.mktemp("docs-server")
    try:
        live = start_server(f"sqlite:///{workdir / 'db.sqlite3'}", workdir)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def openapi(server: LiveServer) -> dict:
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as client:
        response = client.get("/openapi.json")
    response.raise_for_status()
    return response.json()


def _operations(openapi: dict) -> list[tuple[str, dict]]:
    return [
        (path, op)
        for path, item in openapi["paths"].items()
        for method, op in item.items()
        if method in {"get", "put", "post", "patch", "delete", "head", "options"}
    ]


def _run_chromium(chromium: str, tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run that can reach 127.0.0.1 and nothing else."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # tests run as root in containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-proxy-server",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={profile}",
        # Every host name fails to resolve except 127.0.0.1: the intranet has no CDN.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        *args,
        url,
    ]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"Chromium did not finish within {BROWSER_TIMEOUT:.0f}s on {url}: {exc.stderr!r}")


def _dump_dom(chromium: str, tmp_path: Path, url: str) -> str:
    result = _run_chromium(chromium, tmp_path, url, "--dump-dom")
    stderr = "\n".join(line for line in result.stderr.splitlines() if "dbus" not in line.lower())
    assert result.returncode == 0 and result.stdout.strip(), (
        f"Chromium could not load {url} (exit {result.returncode}):\n{stderr[-3000:]}"
    )
    return result.stdout


def _external_urls(text: str) -> list[str]:
    return sorted({url for url in URL_RE.findall(text) if urlsplit(url).hostname not in LOCAL_HOSTS})


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_html_references_no_outside_url(server: LiveServer, page: str) -> None:
    """The HTML shells load scripts, styles, fonts and icons from the service only, and those exist."""
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as client:
        response = client.get(page)
        assert response.status_code == 200
        assert _external_urls(response.text) == [], f"{page} references outside URLs (CDN, fonts)"
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
        assert assets, f"{page} loads no assets at all?"
        for asset in assets:
            assert client.get(asset).status_code == 200, f"{page} references {asset}, which is not served"


@pytest.mark.browser
def test_swagger_ui_renders_offline(chromium: str, server: LiveServer, openapi: dict, tmp_path: Path) -> None:
    dom = _dump_dom(chromium, tmp_path, f"{server.base_url}/docs")
    rendered_paths = set(re.findall(r'class="opblock-summary-path"[^>]*data-path="([^"]+)"', dom))
    api_paths = {p for p in rendered_paths if p.startswith("/api/v1/")}
    assert "opblock-summary" in dom, "Swagger UI did not render operations: its JavaScript did not run"
    assert len(api_paths) >= 3, f"Swagger UI rendered too few /api/v1 operations: {sorted(rendered_paths)}"
    missing = set(openapi["paths"]) - rendered_paths
    assert not missing, f"Swagger UI did not render these paths: {sorted(missing)}"
    for _, op in _operations(openapi):
        assert html.escape(op["summary"], quote=False) in dom, f"operation summary {op['summary']!r} not rendered"

    # One screenshot as an artifact for humans; the assertions above are what count.
    shot = tmp_path / "docs.png"
    result = _run_chromium(
        chromium, tmp_path, f"{server.base_url}/docs", f"--screenshot={shot}", "--window-size=1280,2000"
    )
    assert result.returncode == 0 and shot.is_file(), f"no screenshot:\n{result.stderr[-3000:]}"
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1280, 2000)
    print(f"/docs screenshot: {shot}")


@pytest.mark.browser
def test_redoc_renders_offline(chromium: str, server: LiveServer, openapi: dict, tmp_path: Path) -> None:
    dom = _dump_dom(chromium, tmp_path, f"{server.base_url}/redoc")
    operations = _operations(openapi)
    assert len(operations) >= 3
    for _, op in operations:
        # ReDoc gives every rendered operation a section anchored on its operationId.
        assert f'data-section-id="operation/{op["operationId"]}"' in dom, (
            f"ReDoc did not render operation {op['operationId']}: its JavaScript did not run"
        )
        assert html.escape(op["summary"], quote=False) in dom, f"operation summary {op['summary']!r} not rendered"


SWAGGER_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="{base}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{spec: {spec}, dom_id: "#swagger-ui"}});</script>
</body></html>
"""


@pytest.mark.browser
@pytest.mark.parametrize(
    ("assets", "renders"),
    [
        pytest.param("local", True, id="own-bundle-renders"),
        pytest.param("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5", False, id="cdn-bundle-blocked"),
    ],
)
def test_harness_tells_offline_from_cdn(
    chromium: str, server: LiveServer, openapi: dict, tmp_path: Path, assets: str, renders: bool
) -> None:
    """Control: the same page renders on the service's bundle and stays empty on a CDN's.

    So a passing /docs test means "works without outside network", not "the harness cannot fail".
    No request leaves the machine: the resolver rules fail the CDN host name locally.
    """
    base = f"{server.base_url}/static-offline-docs" if assets == "local" else assets
    page = tmp_path / "page.html"
    page.write_text(SWAGGER_PAGE.format(base=base, spec=json.dumps(openapi)), encoding="utf-8")
    dom = _dump_dom(chromium, tmp_path, page.as_uri())
    assert ("opblock-summary" in dom) is renders
