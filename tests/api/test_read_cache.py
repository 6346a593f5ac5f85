"""The response cache and its fast path (`app/api/read_cache.py`): a repeated GET is answered before
FastAPI runs, with the route's own bytes and headers, and nothing the route refuses is ever answered."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.api.deps import current_settings
from app.api.read_cache import ENTRY_OVERHEAD, ResponseCache
from app.api.responses import Rendered
from app.core.config import Settings
from app.db import get_session, get_write_session
from app.main import create_app
from tests.factories import comparable, make_key

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
LIST = f"{PLAN}/tasks?unit={quote('县司法局')}&role=lead"


def fast_hits(client: TestClient) -> int:
    return client.app.state.response_cache.fast_hits  # type: ignore[attr-defined]


def test_a_hit_is_the_routes_answer_byte_for_byte(client: TestClient) -> None:
    miss = client.get(LIST)
    before = fast_hits(client)
    hit = client.get(LIST)
    assert fast_hits(client) == before + 1
    assert hit.status_code == miss.status_code == 200
    assert hit.content == miss.content
    assert comparable(hit.headers) == comparable(miss.headers)
    gzip_miss = client.get(f"{PLAN}/tasks?limit=40", headers={"Accept-Encoding": "gzip"})
    gzip_hit = client.get(f"{PLAN}/tasks?limit=40", headers={"Accept-Encoding": "gzip"})
    assert gzip_hit.headers["content-encoding"] == "gzip" and gzip_hit.content == gzip_miss.content
    assert comparable(gzip_hit.headers) == comparable(gzip_miss.headers)


def test_parameter_order_does_not_matter_but_values_do(client: TestClient) -> None:
    first = client.get(LIST)
    before = fast_hits(client)
    reordered = client.get(f"{PLAN}/tasks?role=lead&unit={quote('县司法局')}")
    assert fast_hits(client) == before + 1 and reordered.content == first.content
    other = client.get(f"{PLAN}/tasks?unit={quote('县司法局')}&role=cooperating")
    assert fast_hits(client) == before + 1 and other.content != first.content


def test_new_urls_are_still_validated_strictly(client: TestClient) -> None:
    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 200  # now cached
    unknown = client.get(LIST + "&staus=completed")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown-parameter"
    bad = client.get(f"{PLAN}/tasks?unit={quote('县司法局')}&role=boss")
    assert bad.status_code == 422 or bad.status_code == 400
    assert client.get(LIST + "&limit=0").status_code in (400, 422)
    # An error is never cached: asking again is refused again, by the route.
    assert client.get(LIST + "&staus=completed").status_code == 400


def test_etag_304_and_head_from_the_fast_path(client: TestClient) -> None:
    first = client.get(LIST)
    before = fast_hits(client)
    conditional = client.get(LIST, headers={"If-None-Match": first.headers["etag"]})
    assert conditional.status_code == 304 and conditional.content == b""
    head = client.head(LIST)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == first.headers["etag"]
    assert head.headers["content-length"] == first.headers["content-length"]
    assert fast_hits(client) == before + 2


def test_a_write_changes_the_answer_at_once(client: TestClient, db: Session) -> None:
    url = f"{PLAN}/tasks/2.1.3"
    before = client.get(url).json()
    client.get(url)
    key = make_key(db, unit="教育体育局")
    sent = client.post(
        f"{PLAN}/tasks/2.1.3/progress",
        json={"status": "in_progress", "percent": 40, "summary": "已完成制度起草", "period": "2022-H2"},
        headers={"Authorization": key},
    )
    assert sent.status_code in (200, 201), sent.text
    after = client.get(url).json()
    assert after != before and after["progress"] == 40, after


def test_a_revoked_key_is_refused_at_once(db: Session) -> None:
    app = create_app()
    app.dependency_overrides[get_session] = lambda: db
    app.dependency_overrides[get_write_session] = lambda: db
    app.dependency_overrides[current_settings] = lambda: Settings(require_key_for_reads=True)
    client = TestClient(app)
    key = make_key(db, unit="县司法局")
    other = make_key(db, unit="县公安局")
    assert client.get(LIST, headers={"Authorization": key}).status_code == 200
    before = app.state.response_cache.fast_hits
    assert client.get(LIST, headers={"Authorization": key}).status_code == 200
    assert app.state.response_cache.fast_hits == before + 1
    # Another key is authenticated by the route (not answered from the entry the first key made) …
    assert client.get(LIST).status_code == 401
    assert client.get(LIST, headers={"Authorization": key + "x"}).status_code == 401
    assert client.get(LIST, headers={"Authorization": other}).status_code == 200
    # … and revoking a key through the service alone, with no feed event, still changes the version.
    from app.services.keys import revoke_key

    revoke_key(session=db, prefix=key.split("_")[1])
    db.commit()
    refused = client.get(LIST, headers={"Authorization": key})
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    assert client.get(LIST, headers={"Authorization": other}).status_code == 200


def test_the_store_is_bounded_by_bytes_least_recently_used_out_first() -> None:
    body = b"x" * 10_000
    size = len(body) + len(body) // 2 + ENTRY_OVERHEAD
    store = ResponseCache(max_bytes=3 * size)
    for n in range(3):
        store.put(("/p", (("n", str(n)),)), Rendered(body))
    assert len(store) == 3 and store.bytes == 3 * size
    assert store.get(("/p", (("n", "0"),))) is not None  # now the most recently used
    store.put(("/p", (("n", "3"),)), Rendered(body))
    assert store.bytes <= store.max_bytes and len(store) == 3
    assert store.get(("/p", (("n", "1"),))) is None  # the least recently used went first
    assert store.get(("/p", (("n", "0"),))) is not None
    store.put(("/big",), Rendered(b"y" * (3 * size)))  # larger than the whole store: never kept
    assert store.get(("/big",)) is None and store.bytes <= store.max_bytes
    assert not store.holds_path("/big") and store.holds_path("/p")


def test_the_apps_cache_stays_within_its_setting(db: Session) -> None:
    app = create_app(Settings(response_cache_max_bytes=200_000))
    app.dependency_overrides[get_session] = lambda: db
    client = TestClient(app)
    for limit in range(1, 60):
        assert client.get(f"{PLAN}/tasks?limit={limit}").status_code == 200
    store = app.state.response_cache
    assert 0 < store.bytes <= 200_000
    assert len(store) < 59  # the early pages were evicted
    # and an evicted page is simply rendered again, identically
    again = client.get(f"{PLAN}/tasks?limit=1")
    assert again.status_code == 200 and len(again.json()["items"]) == 1


def test_admin_reads_never_open_a_write_session(db: Session) -> None:
    """The key list and the audit log are reads: they must not queue behind SQLite's writer lock,
    which only the write session takes."""
    app = create_app()
    app.dependency_overrides[get_session] = lambda: db

    def no_writes() -> Session:
        raise AssertionError("an admin read opened a write session")

    app.dependency_overrides[get_write_session] = no_writes
    client = TestClient(app)
    admin = make_key(db, admin=True)
    unit_key = make_key(db, unit="县司法局")
    for url in ("/api/v1/admin/keys", "/api/v1/admin/audit"):
        assert client.get(url, headers={"Authorization": admin}).status_code == 200
        refused = client.get(url, headers={"Authorization": unit_key})
        assert refused.status_code == 403 and refused.json()["code"] == "admin-only"
        assert client.get(url).status_code == 401
