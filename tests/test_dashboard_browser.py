"""Done when: headless Chromium loads the dashboard of a database holding a simulated year of reports,
from a real running server, with no outside network, and its numbers are the API's.

The year is test_supervision_cycle.py's (`run_2023` against its `office` server, both engines).
Chromium is driven as in test_docs_browser.py: its resolver fails every host but 127.0.0.1, so a page
that needed a CDN would render no charts. The figures are read from the DOM Chromium built (after the
page's JavaScript ran) and compared with GET …/stats, …/compliance, …/duties and …/tasks?light=red.
Screenshots (desktop and phone) are saved under the test's tmp dir and, when PLAN_API_ARTEFACTS is
set, there too.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.test_docs_browser import _dump_dom, _run_chromium
from tests.test_docs_browser import chromium as chromium
from tests.test_supervision_cycle import PLAN, SLUG, Office, Script, get, run_2023
from tests.test_supervision_cycle import office as office

pytestmark = pytest.mark.browser

AS_OF = date(2024, 2, 1)
FIGURE = re.compile(r'<a class="num" href="([^"]+)" data-figure="([^"]+)"[^>]*>([^<]*)</a>')
SCREENS = {"desktop": (1280, 3600), "phone": (390, 7000)}


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def standing(row: dict[str, Any]) -> str:
    if row["missing"]:
        return "silent"
    if row["late"]:
        return "late"
    if row["on_time"]:
        return "on_time"
    return "pending"


def expected_figures(http: httpx.Client, period: str | None, unit: str | None) -> dict[str, str]:
    """Every number the page must show, from the API's answers (the test's own mapping of them)."""
    day = AS_OF.isoformat()
    stats = get(http, f"{PLAN}/stats", as_of=day, **({"period": period} if period else {}))
    period = stats["compliance_period"]
    compliance = get(http, f"{PLAN}/compliance", as_of=day, period=period)
    unit_filter = {"unit": unit} if unit else {}
    red = get(http, f"{PLAN}/tasks", light="red", as_of=day, limit=500, count="true", **unit_filter)
    missing = get(http, f"{PLAN}/duties", period=period, state="missing", as_of=day, limit=500, **unit_filter)
    recent = get(http, f"{PLAN}/progress", until=day, limit=10, **unit_filter)  # the plan's reports, newest first
    unit_ids = {get(http, f"/api/v1/units/{unit}")["id"]} if unit else None

    out: dict[str, Any] = {"tasks": stats["tasks"], "overdue": stats["overdue"]}
    out |= {f"by_status.{k}": v for k, v in stats["by_status"].items()}
    out |= {f"by_light.{k}": v for k, v in stats["by_light"].items()}
    for c in stats["by_chapter"]:
        key = f"chapter.{c['code']}"
        out |= {
            f"{key}.tasks": c["tasks"],
            f"{key}.overdue": c["overdue"],
            f"{key}.mean_progress": f"{c['mean_progress']}%",
        }
        out |= {f"{key}.by_status.{k}": v for k, v in c["by_status"].items()}
        out |= {f"{key}.by_light.{k}": v for k, v in c["by_light"].items()}
    for u in stats["by_unit"]:
        if (unit_ids is None and not u["lead"]) or (unit_ids is not None and u["unit"]["id"] not in unit_ids):
            continue
        key = f"unit.{u['unit']['id']}"
        out[f"{key}.lead"] = u["lead"]
        out |= {f"{key}.lead_by_status.{k}": v for k, v in u["lead_by_status"].items()}
        out |= {f"{key}.lead_by_light.{k}": v for k, v in u["lead_by_light"].items()}
        if u["compliance"]:
            out |= {f"{key}.compliance.{k}": u["compliance"][k] for k in ("owed", "on_time", "late", "missing")}
            out[f"{key}.compliance.rate"] = percent(u["compliance"]["rate"])
    out["compliance.rate"] = percent(compliance["totals"]["rate"])
    out["compliance.missing"] = compliance["totals"]["missing"]
    out["red.count"] = red["total"]
    out["missing.count"] = len(missing["items"])
    rows = [r for r in compliance["items"] if unit_ids is None or r["unit"]["id"] in unit_ids]
    for kind in ("on_time", "late", "silent", "pending"):
        out[f"standing.{kind}"] = sum(1 for r in rows if standing(r) == kind)
    out["__red"] = sorted(t["code"] for t in red["items"])
    out["__missing"] = sorted(f"{d['task']}|{d['unit']['id']}" for d in missing["items"])
    out["reports"] = len(recent["items"])
    out["__reports"] = [str(r["id"]) for r in recent["items"]]
    return {k: v if isinstance(v, list) else str(v) for k, v in out.items()}


def save(shot: Path) -> None:
    target = os.environ.get("PLAN_API_ARTEFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)
    print(f"dashboard screenshot: {shot}")


def test_dashboard_in_chromium_shows_the_apis_numbers(
    chromium: str, office: Office, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run_2023(Script(office))
    http = office.http
    base = str(http.base_url).rstrip("/")
    views = [
        ("all", None, None),
        ("unit", "2023-Q3", "县司法局"),
    ]
    for name, period, unit in views:
        params = {
            "as_of": AS_OF.isoformat(),
            **({"period": period} if period else {}),
            **({"unit": unit} if unit else {}),
        }
        url = f"{base}/dashboard/{SLUG}?{urlencode(params)}"
        dom = _dump_dom(chromium, tmp_path, url)
        # The vendored Chart.js loaded from the service and drew every chart.
        assert 'data-charts="4"' in dom, f"{name}: charts not drawn (Chart.js did not load offline?)"
        assert dom.count('data-rendered="true"') == 4

        expected = expected_figures(http, period, unit)
        shown = {figure: (unescape(href), value) for href, figure, value in FIGURE.findall(dom)}
        red, missing, reports = expected.pop("__red"), expected.pop("__missing"), expected.pop("__reports")
        assert {k: v for k, (_, v) in shown.items()} == expected, name
        assert sorted(re.findall(r'data-red-task="([^"]+)"', dom)) == red
        assert sorted(re.findall(r'data-missing="([^"]+)"', dom)) == missing
        assert re.findall(r'data-report="([^"]+)"', dom) == reports and reports  # in the API's order
        assert [str(r["id"]) for r in http.get(shown["reports"][0]).json()["items"]] == reports
        # Each number's link is the API request that produced it.
        assert all(href.startswith("/api/v1/plans/") for href, _ in shown.values())
        stats_link = shown["tasks"][0]
        assert stats_link.startswith(f"{PLAN}/stats?as_of={AS_OF.isoformat()}")
        assert str(http.get(stats_link).json()["tasks"]) == shown["tasks"][1]
        assert http.get(shown["red.count"][0]).json()["items"].__len__() == int(shown["red.count"][1])

    backend = request.node.callspec.params.get("office", "db")
    for screen, (width, height) in SCREENS.items():
        shot = tmp_path / f"dashboard-{backend}-{screen}.png"
        url = f"{base}/dashboard/{SLUG}?as_of={AS_OF.isoformat()}"
        result = _run_chromium(chromium, tmp_path, url, f"--screenshot={shot}", f"--window-size={width},{height}")
        assert result.returncode == 0 and shot.is_file(), f"no screenshot:\n{result.stderr[-3000:]}"
        png = shot.read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (width, height)
        save(shot)
