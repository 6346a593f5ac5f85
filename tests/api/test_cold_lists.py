"""The response cache's fast path on a task list's miss (`app/api/read_cache.py`, `cold_task_list` in
`app/api/task_query.py`): a cold list for today is parsed with the route's own definitions and built by
the route's own build, before FastAPI runs; anything else falls through to the route untouched.

Two apps over the same rolled-back session: the test's own (fast path on) and `routed`, whose every
miss goes through the route. Their answers must be the same bytes with the same headers, and the
fast path must have answered every list it should (`fast_builds`), so no test here passes vacuously.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.utils import request_params_to_args
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.datastructures import QueryParams
from starlette.requests import Request

from app.api import read_cache
from app.api.deps import current_settings
from app.api.params import _dependency, query_values
from app.api.read_cache import ResponseCache
from app.api.task_query import task_query_params
from app.core.clock import county_today
from app.core.config import Settings, get_settings
from app.db import get_engine
from app.importer.service import seed_if_empty
from app.main import create_app
from tests.factories import SEED_SLUG, comparable, make_key, report
from tests.services.test_read_model import BATTERY, UNIT_BATTERY

TASKS = f"/api/v1/plans/{SEED_SLUG}/tasks"
UNIT_TASKS = "/api/v1/units/县司法局/tasks"


def store(client: TestClient) -> ResponseCache:
    found: ResponseCache = client.app.state.response_cache  # type: ignore[attr-defined]
    return found


def answered(client: TestClient) -> tuple[int, int]:
    return store(client).fast_builds, store(client).fast_hits


def same(fast: TestClient, routed: TestClient, url: str, params: dict[str, Any], **headers: str) -> Any:
    """The two apps' answers, equal in status, bytes and headers; the fast app's answered before
    FastAPI (built, or a hit of what it built) exactly when it is a list for today that the route
    answers 200, and built by the route otherwise."""
    builds, hits = answered(fast)
    a = fast.get(url, params=params, headers=headers)
    b = routed.get(url, params=params, headers=headers)
    assert (a.status_code, a.content) == (b.status_code, b.content), (params, a.text, b.text)
    assert comparable(a.headers) == comparable(b.headers), params
    today = params.get("as_of", str(county_today())) == str(county_today())
    if a.status_code == 200 and today and "authorization" not in headers:
        assert sum(answered(fast)) == builds + hits + 1, (params, "the fast path was not taken")
    else:
        assert answered(fast)[0] == builds, (params, "the fast path built what the route should")
    assert store(routed).fast_builds == 0
    return a


def test_every_list_is_the_routes_answer_byte_for_byte(reported: TestClient, routed: TestClient) -> None:
    for params in BATTERY:
        same(reported, routed, TASKS, params)
        same(reported, routed, TASKS, params, **{"accept-encoding": "gzip"})  # the same key: a hit, compressed
    same(reported, routed, TASKS, {"unit": "司法局"}, accept="text/csv")
    for params in UNIT_BATTERY:
        same(reported, routed, UNIT_TASKS, params)
    same(reported, routed, "/api/v1/units/没有这个单位/tasks", {})  # 404
    same(reported, routed, "/api/v1/plans/no-such-plan/tasks", {})  # 404
    # Asked again: a hit, answered before FastAPI as before.
    builds, hits = answered(reported)
    same(reported, routed, TASKS, BATTERY[3])
    assert answered(reported) == (builds, hits + 1)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (TASKS, {"sort": "code", "limit": "13", "count": "true"}),
        (TASKS, {"sort": "-updated_at", "limit": "5", "light": "red"}),
        (TASKS, {"sort": "due", "limit": "20", "format": "csv", "count": "true"}),
        (UNIT_TASKS, {"sort": "-due", "limit": "9", "include_groups": "true"}),
        (UNIT_TASKS, {"limit": "7", "format": "csv"}),
    ],
)
def test_every_page_of_a_cursor_walk_is_the_same(
    reported: TestClient, routed: TestClient, url: str, params: dict[str, Any]
) -> None:
    pages, cursor = 0, None
    while True:
        response = same(reported, routed, url, {**params, **({"cursor": cursor} if cursor else {})})
        pages += 1
        cursor = response.headers.get("x-next-cursor") if params.get("format") else response.json()["next_cursor"]
        if cursor is None:
            break
    assert pages > 2


def test_a_plain_cold_list_is_built_by_the_fast_path(client: TestClient) -> None:
    before = answered(client)
    response = client.get(TASKS, params={"unit": "县司法局", "role": "lead", "section": "2"})
    assert response.status_code == 200 and response.json()["items"]
    assert answered(client) == (before[0] + 1, before[1])
    client.get(TASKS, params={"section": "2", "role": "lead", "unit": "县司法局"})  # the same key, reordered
    assert answered(client) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize(
    "params",
    [
        {"staus": "completed"},  # unknown: 400 unknown-parameter
        {"unit": "司法局", "Unit": "x"},
        {"limit": "0"},  # 422 with the field path
        {"limit": "many"},
        {"role": "boss"},  # the route's own rules: 400 with the parameter
        {"status": "done,completed"},
        {"fields": "code,nope"},
        {"section": "two"},
        {"q": ""},
        {"due_before": "2023-1-1"},
        {"due_after": "2024-01-01", "due_before": "2023-01-01"},
        {"include_groups": "maybe"},
        {"format": "xlsx"},
        {"unit": "司\x00法局"},  # a control character
        {"cursor": "not-a-cursor"},
        {"unit": "没有这个单位"},
        {"section": "9.9"},
    ],
)
def test_anything_unusual_falls_through_to_the_route(
    client: TestClient, routed: TestClient, params: dict[str, Any]
) -> None:
    refused = same(client, routed, TASKS, params)
    assert refused.status_code in (400, 404, 422), refused.text
    problem = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    if refused.status_code == 422 or problem["code"] == "unknown-parameter":
        assert problem["errors"][0]["field"].startswith("query."), problem


def test_unknown_parameter_and_field_paths_are_as_before(client: TestClient) -> None:
    unknown = client.get(TASKS, params={"staus": "completed"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown-parameter"
    assert [e["field"] for e in unknown.json()["errors"]] == ["query.staus"]
    invalid = client.get(TASKS, params={"limit": "0", "due_before": "2023-1-1"})
    assert invalid.status_code == 422
    assert sorted(e["field"] for e in invalid.json()["errors"]) == ["query.due_before", "query.limit"]
    assert store(client).fast_builds == 0


def test_a_past_as_of_takes_the_query_path_through_the_route(client: TestClient, routed: TestClient) -> None:
    params = {"as_of": "2024-01-01", "unit": "司法局", "count": "true"}
    same(client, routed, TASKS, params)  # asserts the fast path built nothing
    builds, hits = answered(client)
    same(client, routed, TASKS, params)
    assert answered(client) == (builds, hits + 1)  # the route stored it: a hit now
    same(client, routed, TASKS, {"as_of": str(county_today()), "unit": "司法局"})  # today: the fast path


def test_an_authorization_header_goes_to_the_route(client: TestClient, routed: TestClient, db: Session) -> None:
    key = make_key(db, unit="县司法局")
    same(client, routed, TASKS, {"unit": "司法局"}, authorization=key)
    same(client, routed, TASKS, {"role": "lead"}, authorization=key + "x")  # open reads: as the route says


def test_reads_that_need_a_key_are_checked_by_the_route(
    client: TestClient, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    client.app.dependency_overrides[current_settings] = lambda: Settings(require_key_for_reads=True)  # type: ignore[attr-defined]
    key = make_key(db, unit="县司法局")
    assert client.get(TASKS, params={"unit": "司法局"}).status_code == 401
    with caplog.at_level(logging.WARNING, logger="plan_api.audit"):
        refused = client.get(TASKS, params={"role": "lead"}, headers={"Authorization": key + "x"})
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    assert [r for r in caplog.records if r.name == "plan_api.audit"], "a bad key is audited"
    assert client.get(TASKS, params={"role": "lead"}, headers={"Authorization": key}).status_code == 200
    assert store(client).fast_builds == 0


@pytest.fixture
def own_database(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The seed plan in a database of its own that apps reach through their own engine (no session
    override): the fast path then reads SQLite's version on the loop, PostgreSQL's in its one hop."""
    with Session(fresh_engine) as session:
        seed_if_empty(session=session, settings=get_settings())
        session.commit()
        key = make_key(session, unit="县司法局")
    monkeypatch.setenv("DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        yield key
    finally:
        get_engine().dispose()
        get_engine.cache_clear()
        monkeypatch.delenv("DATABASE_URL")
        get_settings.cache_clear()


def test_on_the_apps_own_sessions_and_after_a_write(own_database: str) -> None:
    routed_app = create_app()
    routed_app.state.cold_reads = []
    with TestClient(create_app()) as fast, TestClient(routed_app) as routed:
        for params in BATTERY[:12]:
            same(fast, routed, TASKS, params)
        completed = {"unit": "司法局", "status": "completed", "fields": "code"}
        before = same(fast, routed, TASKS, completed).json()["items"]
        same(fast, routed, TASKS, completed)  # a hit
        report(fast, own_database, "2.3.3", status="completed", percent=100)
        after = same(fast, routed, TASKS, completed).json()["items"]  # built again at the new version
        assert {"code": "2.3.3"} in after and {"code": "2.3.3"} not in before
        assert store(fast).fast_builds >= 12


QUERIES = [
    "",
    "unit=县司法局&role=lead&section=2&limit=101",
    "role=lead&role=responsible,cooperating&status=completed&status=&light=red,green",
    "limit=5&limit=7",  # the last of a single-valued parameter
    "limit=0",
    "limit=501",
    "limit=1e2",
    "limit= 5",
    "limit=５",
    "limit=",
    "include_groups=yes&count=on&overdue=0",
    "include_groups=TRUE&count=f",
    "include_groups=maybe",
    "count=",
    "overdue=null",
    "due_before=2023-12-31&due_after=2023-01-01",
    "due_before=2023-1-1",
    "due_before=２０２３-01-01",
    "as_of=2024-02-30",
    "as_of=0",
    "section=2.1",
    "section=123",
    "section=2.",
    "q=",
    "q=" + "长" * 100,
    "q=" + "长" * 101,
    "sort=-due",
    "sort=bogus",
    "sort=",
    "format=csv",
    "format=CSV",
    "format=",
    "fields=code,title&cursor=abc&jurisdiction=640422",
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_fast_path_parses_as_fastapi_does(query: str) -> None:
    """`query_values` (a model made from the route's fields) against FastAPI's own per-field parsing."""
    for cold in create_app().state.cold_reads:
        dependant = _dependency(cold.route.dependant, task_query_params)
        assert dependant is not None
        params = QueryParams(query)
        expected, errors = request_params_to_args(dependant.query_params, params)
        scope = {"type": "http", "query_string": params.__str__().encode(), "headers": []}
        found = query_values(cold.route, task_query_params, Request(scope))
        assert found == (None if errors else expected), (query, errors)


def test_a_failing_database_is_the_routes_to_answer(own_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A version read failing in the fast path (the database down, the pool exhausted) is not a 500
    from the middleware: the request goes on to the route, whose handlers answer (here it can read)."""

    def failing(*_: object) -> int:
        raise OperationalError("select", {}, Exception("database down"))

    with TestClient(create_app()) as client:
        monkeypatch.setattr(read_cache, "sqlite_data_version", failing)
        monkeypatch.setattr(read_cache, "engine_data_version", failing)
        response = client.get(TASKS, params={"unit": "司法局", "role": "lead"})
        assert response.status_code == 200 and response.json()["items"]
        assert answered(client) == (0, 0)
