"""Who a key is, remembered per process at the structure version (`app/services/structure_memo.py`): two apps on one
committed database stand for two workers, each with its own engine (its own pool) and its own cache
entries; what one worker changes, the other sees on its very next request. Both backends."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.core.config import get_settings
from app.db import make_engine
from app.models import ApiKey, Unit
from app.services.structure_memo import memo
from tests.factories import make_key
from tests.webhook_support import app_on

KEYS = "/api/v1/admin/keys"


def _worker(url: str) -> tuple[TestClient, Engine]:
    engine = make_engine(url)  # its own engine: its own pool, as a second process would have
    return TestClient(app_on(engine, get_settings())), engine


def _two_workers(engine: Engine) -> tuple[TestClient, TestClient, list[Engine]]:
    url = engine.url.render_as_string(hide_password=False)
    (one, e1), (two, e2) = _worker(url), _worker(url)
    return one, two, [e1, e2]


def test_a_key_is_read_once_per_structure_version_and_a_revocation_by_another_worker_refused_at_once(
    webhook_engine: Engine,
) -> None:
    with Session(webhook_engine) as s:
        doomed, other = make_key(s, admin=True), make_key(s, admin=True)
    one, two, engines = _two_workers(webhook_engine)
    try:
        assert one.get(KEYS, headers={"Authorization": doomed}).status_code == 200
        hits = memo.hits
        assert one.get(KEYS, headers={"Authorization": doomed}).status_code == 200
        assert memo.hits > hits  # the same version: the key was not loaded again

        revoked = two.delete(f"{KEYS}/{doomed.split('_')[1]}", headers={"Authorization": other})
        assert revoked.status_code == 200, revoked.text
        refused = one.get(KEYS, headers={"Authorization": doomed})
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
        assert "吊销" in refused.json()["detail"]
        written = one.post("/api/v1/admin/units", json={"name": "县测试局"}, headers={"Authorization": doomed})
        assert written.status_code == 401
        assert one.get(KEYS, headers={"Authorization": other}).status_code == 200
    finally:
        for engine in engines:
            engine.dispose()


def test_a_refusal_is_not_remembered_so_a_key_created_meanwhile_is_accepted(webhook_engine: Engine) -> None:
    from app.services.keys import _hash

    token = "pa_feedc0de_" + "k" * 43
    one, _two, engines = _two_workers(webhook_engine)
    try:
        assert one.get(KEYS, headers={"Authorization": f"Bearer {token}"}).status_code == 401
        with Session(webhook_engine) as s:  # as `plan-api keys create` would, from another process
            s.add(ApiKey(prefix="feedc0de", secret_hash=_hash(token), name="新签发", is_admin=True))
            s.commit()
        assert one.get(KEYS, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        for engine in engines:
            engine.dispose()


def test_a_unit_changed_elsewhere_is_seen_by_the_next_request(webhook_engine: Engine) -> None:
    with Session(webhook_engine) as s:
        key = make_key(s, unit="县司法局")
    one, _two, engines = _two_workers(webhook_engine)
    try:
        for _ in range(2):  # the second answer comes from the cache
            refused = one.get(KEYS, headers={"Authorization": key})
            assert refused.status_code == 403 and "县司法局的密钥" in refused.json()["detail"]
        with Session(webhook_engine) as s:
            unit = s.exec(select(Unit).where(Unit.name == "县司法局")).one()
            unit.name = "县司法局(更名)"
            s.add(unit)
            s.commit()
        renamed = one.get(KEYS, headers={"Authorization": key})
        assert renamed.status_code == 403 and "县司法局(更名)的密钥" in renamed.json()["detail"]
    finally:
        for engine in engines:
            engine.dispose()


def test_the_cache_is_bounded_and_keeps_no_secret(webhook_engine: Engine) -> None:
    with Session(webhook_engine) as s:
        tokens = [make_key(s, admin=True) for _ in range(3)]
    one, _two, engines = _two_workers(webhook_engine)
    size = memo.size
    memo.size = 2
    try:
        for token in tokens:
            assert one.get(KEYS, headers={"Authorization": token}).status_code == 200
        entries = list(memo._entries)
        assert len(entries) == 2
        assert not any(token.split(" ")[1] in str(entry) for entry in entries for token in tokens)
    finally:
        memo.size = size
        for engine in engines:
            engine.dispose()


def test_an_admin_write_that_fails_after_writing_leaves_nothing(webhook_engine: Engine) -> None:
    """The unit is inserted before its alias is found taken: the 409 takes the unit back with it."""
    with Session(webhook_engine) as s:
        admin = make_key(s, admin=True)
    one, _two, engines = _two_workers(webhook_engine)
    try:
        body = {"name": "县新设局", "kind": "government_department", "aliases": ["司法局"]}
        refused = one.post("/api/v1/admin/units", json=body, headers={"Authorization": admin})
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        with Session(webhook_engine) as s:
            assert s.exec(select(Unit).where(Unit.name == "县新设局")).first() is None
        body["aliases"] = ["新设局"]
        created = one.post("/api/v1/admin/units", json=body, headers={"Authorization": admin})
        assert created.status_code == 201, created.text
    finally:
        for engine in engines:
            engine.dispose()
