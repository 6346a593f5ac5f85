"""Webhooks against real receivers on localhost: signatures (checked with the `standardwebhooks`
library, not our code), retries, timeouts, 410, the retry schedule running out, filters, private
addresses, secret rotation, replay, and the admin boundary. Both backends.

Set-up in tests/webhook_support.py; the worker runs in the test's thread (`run_once`), except in
tests/test_webhooks_restart.py, which kills worker processes.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.api.read_cache import data_version
from app.models import DutyMissingSeen, Task, TaskLightSeen, Unit, WebhookMessage
from app.services import supervision_watch, webhook_delivery
from tests.factories import SEED_SLUG, make_key
from tests.webhook_support import ALL_TYPES, WEBHOOKS, Receiver, World, build_world, verified, webhook_settings

# --- tests ------------------------------------------------------------------------------------------


def test_every_report_arrives_signed_once_per_event_id(world: World, receiver: Receiver) -> None:
    hook = world.register(receiver.url(), event_types=["report.submitted"], description="OA 系统")
    assert hook["secret"].startswith("whsec_") and hook["enabled"] is True
    reports = [
        world.report("2.1.3", "教育体育局"),
        world.report("2.1.4", "司法局"),
        world.report("6.1.1", "教育体育局"),
    ]
    world.deliver_until(lambda: len(receiver.delivered()) == 3)

    payloads = [verified(r, hook["secret"]) for r in receiver.delivered()]
    assert [p["type"] for p in payloads] == ["report.submitted"] * 3
    assert sorted(p["data"]["report_id"] for p in payloads) == sorted(r["id"] for r in reports)
    ids = [r.headers["webhook-id"] for r in receiver.delivered()]
    assert len(set(ids)) == 3
    assert {r.headers["webhook-id"]: verified(r, hook["secret"])["data"]["seq"] for r in receiver.delivered()} == {
        f"msg_{p['data']['seq']}": p["data"]["seq"] for p in payloads
    }
    # The listing never shows the secret again; the delivery log shows each attempt.
    listed = world.call("GET", "").json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    log = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
    assert [(a["status_code"], a["message_state"], a["next_attempt_at"]) for a in log] == [(200, "delivered", None)] * 3


def test_a_receiver_that_fails_then_recovers_gets_each_event_once(world: World, receiver: Receiver) -> None:
    receiver.behaviour = lambda path, n: (503, {"Retry-After": "0"}, 0.0) if n <= 2 else (200, {}, 0.0)
    hook = world.register(receiver.url())
    world.report("2.1.3", "教育体育局")  # report.submitted and task.status_changed
    world.deliver_until(lambda: len(receiver.delivered()) == 2 and not _pending(world, hook["id"]))

    ids = [r.headers["webhook-id"] for r in receiver.delivered()]
    assert len(ids) == len(set(ids)) == 2
    every_request = [r.headers["webhook-id"] for r in receiver.received]
    assert set(every_request) == set(ids)  # the retries carried the same ids
    for r in receiver.delivered():
        verified(r, hook["secret"])
    log = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
    assert [a["status_code"] for a in log] == [503, 503, 200, 200]
    assert all(a["next_attempt_at"] for a in log[:2]) and world.endpoint(hook["id"]).enabled


def _pending(world: World, endpoint_id: int) -> list[WebhookMessage]:
    return [m for m in world.messages(endpoint_id) if m.state == "pending"]


def test_a_receiver_that_hangs_is_retried_after_the_timeout(world: World, receiver: Receiver) -> None:
    receiver.behaviour = lambda path, n: (200, {}, 3.0 if n == 1 else 0.0)  # 3 s > the 1 s timeout
    hook = world.register(receiver.url(), event_types=["report.submitted"])
    world.report("2.1.3", "教育体育局")
    world.deliver_until(lambda: len(receiver.delivered()) >= 1 and not _pending(world, hook["id"]))

    log = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
    assert [a["status_code"] for a in log] == [None, 200]
    assert "Timeout" in log[0]["error"] and log[0]["next_attempt_at"] is not None
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1


def test_410_gone_disables_the_endpoint_at_once_and_it_can_be_enabled_again(world: World, receiver: Receiver) -> None:
    receiver.behaviour = lambda path, n: (410, {}, 0.0)
    hook = world.register(receiver.url(), event_types=["report.submitted"])
    world.report("2.1.3", "教育体育局")
    world.deliver_until(lambda: not world.endpoint(hook["id"]).enabled)

    shown = world.call("GET", f"/{hook['id']}").json()
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]
    assert len(receiver.received) == 1
    world.report("2.1.4", "司法局")  # not sent while disabled …
    webhook_delivery.run_once(engine=world.engine, settings=world.settings)
    assert len(receiver.received) == 1

    receiver.behaviour = lambda path, n: (200, {}, 0.0)  # … and sent, both, once enabled again
    assert world.call("PATCH", f"/{hook['id']}", json={"enabled": True}).json()["enabled"] is True
    world.deliver_until(lambda: len(receiver.delivered()) == 2)
    assert [verified(r, hook["secret"])["data"]["task"] for r in receiver.delivered()] == ["2.1.3", "2.1.4"]


def test_an_endpoint_failing_for_the_whole_schedule_is_disabled(world: World, receiver: Receiver) -> None:
    receiver.behaviour = lambda path, n: (500, {}, 0.0)
    hook = world.register(receiver.url(), event_types=["report.submitted"])
    world.report("2.1.3", "教育体育局")
    world.deliver_until(lambda: not world.endpoint(hook["id"]).enabled)

    log = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
    schedule = world.settings.webhook_retry_schedule
    assert [a["status_code"] for a in log] == [500] * (len(schedule) + 1)
    assert log[-1]["next_attempt_at"] is None and log[-1]["message_state"] == "failed"
    assert "重试" in world.call("GET", f"/{hook['id']}").json()["disabled_reason"]


def test_filters_by_type_plan_unit_and_chapter(world: World, receiver: Receiver) -> None:
    chapter_2 = world.register(receiver.url("/chapter2"), chapter="2", event_types=["report.submitted"])
    justice = world.register(receiver.url("/justice"), unit="司法局", plan=SEED_SLUG, event_types=ALL_TYPES)
    status_only = world.register(receiver.url("/status"), event_types=["task.status_changed"])
    world.report("2.1.3", "教育体育局")  # chapter 2, 教育体育局
    world.report("4.1.2", "司法局")  # chapter 4, 司法局
    world.report("6.1.1", "教育体育局")  # chapter 6, 教育体育局
    expected = {"/chapter2": 1, "/justice": 2, "/status": 3}
    world.deliver_until(lambda: all(len(receiver.delivered(p)) == n for p, n in expected.items()))
    webhook_delivery.run_once(engine=world.engine, settings=world.settings)  # nothing more arrives

    def seen(path: str, secret: str) -> list[tuple[str, str]]:
        return [(p["type"], p["data"]["task"]) for p in (verified(r, secret) for r in receiver.delivered(path))]

    assert seen("/chapter2", chapter_2["secret"]) == [("report.submitted", "2.1.3")]
    assert seen("/justice", justice["secret"]) == [("report.submitted", "4.1.2"), ("task.status_changed", "4.1.2")]
    assert [t for t, _ in seen("/status", status_only["secret"])] == ["task.status_changed"] * 3


def test_a_correction_is_report_corrected(world: World, receiver: Receiver) -> None:
    hook = world.register(receiver.url(), event_types=["report.corrected"])
    world.report("2.1.3", "教育体育局")
    world.report("2.1.3", "教育体育局", percent=70)  # the unit's second report for the period supersedes
    world.deliver_until(lambda: len(receiver.delivered()) == 1)
    payload = verified(receiver.delivered()[0], hook["secret"])
    assert payload["type"] == "report.corrected" and payload["data"]["data"]["percent"] == 70


def test_secret_rotation_signs_with_both_secrets_during_the_overlap(world: World, receiver: Receiver) -> None:
    hook = world.register(receiver.url(), event_types=["report.submitted"])
    rotated = world.call("POST", f"/{hook['id']}/rotate")
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"] and rotated.json()["previous_secret_expires_at"]
    world.report("2.1.3", "教育体育局")
    world.deliver_until(lambda: len(receiver.delivered()) == 1)

    received = receiver.delivered()[0]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert verified(received, hook["secret"]) == verified(received, new_secret)  # old and new receivers both accept


def test_replay_from_a_cursor_sends_the_same_ids_again(world: World, receiver: Receiver) -> None:
    hook = world.register(receiver.url(), event_types=["report.submitted"])
    world.report("2.1.3", "教育体育局")
    world.report("2.1.4", "司法局")
    world.deliver_until(lambda: len(receiver.delivered()) == 2)
    first = [r.headers["webhook-id"] for r in receiver.delivered()]

    replayed = world.call("POST", f"/{hook['id']}/replay", json={"since": hook["cursor"]})
    assert replayed.status_code == 202, replayed.text
    world.deliver_until(lambda: len(receiver.delivered()) == 4)
    assert [r.headers["webhook-id"] for r in receiver.delivered()] == first + first
    # A cursor from before the endpoint existed reaches older events too (the seed's plan.imported).
    plans = world.register(receiver.url("/plans"), event_types=["plan.imported"])
    assert world.call("POST", f"/{plans['id']}/replay", json={"since": "0"}).status_code == 202
    world.deliver_until(lambda: len(receiver.delivered("/plans")) == 1)
    assert verified(receiver.delivered("/plans")[0], plans["secret"])["data"]["plan"] == SEED_SLUG


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        ([], "http://127.0.0.1:9/hook"),
        ([], "http://localhost:9/hook"),
        (["127.0.0.1"], "http://10.1.2.3/hook"),
        (["127.0.0.1"], "http://169.254.169.254/latest/meta-data"),
        (["127.0.0.1"], "http://[::1]:9/hook"),
        (["127.0.0.1"], "http://192.168.1.10/hook"),
    ],
)
def test_private_addresses_are_refused(webhook_engine: Engine, allowed: list[str], url: str) -> None:
    for world in build_world(webhook_engine, webhook_settings(webhook_allowed_hosts=allowed)):
        response = world.client.post(
            WEBHOOKS, json={"url": url, "event_types": ["report.submitted"]}, headers={"Authorization": world.admin}
        )
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "unsafe-webhook-url" and body["errors"][0]["field"] == "body.url"
        assert world.call("GET", "").json()["items"] == []


def test_the_address_is_checked_again_at_delivery(webhook_engine: Engine, receiver: Receiver) -> None:
    for world in build_world(webhook_engine, webhook_settings()):
        hook = world.register(receiver.url(), event_types=["report.submitted"])
        world.report("2.1.3", "教育体育局")
        strict = webhook_settings(webhook_allowed_hosts=[])  # the worker's settings no longer allow it
        webhook_delivery.run_once(engine=webhook_engine, settings=strict)
        assert receiver.received == []
        log = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
        assert log[0]["status_code"] is None and "非公网地址" in log[0]["error"]


def test_only_admins_of_the_jurisdiction_manage_webhooks(world: World, receiver: Receiver) -> None:
    hook = world.register(receiver.url())
    unit_key = world.key("司法局")
    refused = world.client.get(WEBHOOKS, headers={"Authorization": unit_key})
    assert refused.status_code == 403 and refused.json()["code"] == "admin-only"
    with Session(world.engine) as session:
        other = make_key(session, admin=True, jurisdiction="511725")  # 渠县's office
    assert world.client.get(WEBHOOKS, headers={"Authorization": other}).json()["items"] == []
    outside = world.client.get(f"{WEBHOOKS}/{hook['id']}", headers={"Authorization": other})
    assert outside.status_code == 403 and outside.json()["code"] == "outside-jurisdiction"
    assert world.call("GET", "/999999").json()["code"] == "webhook-not-found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x.example/", "event_types": ["report.submitted"]}, "body.url"),
        ({"url": "https://x.example/", "event_types": []}, "body.event_types"),
        ({"url": "https://x.example/", "event_types": ["report.exploded"]}, "body.event_types.0"),
        ({"url": "https://x.example/", "event_types": ["report.submitted"], "chapter": "二"}, "body.chapter"),
        ({"url": "https://x.example/", "event_types": ["report.submitted"], "colour": "red"}, "body.colour"),
    ],
)
def test_bad_registrations_are_422_with_field_paths(world: World, body: dict[str, Any], field: str) -> None:
    response = world.call("POST", "", json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert world.call("GET", "").json()["items"] == []


def test_update_and_delete(world: World, receiver: Receiver) -> None:
    hook = world.register(receiver.url())
    changed = world.call("PATCH", f"/{hook['id']}", json={"description": "改名", "chapter": "3", "enabled": False})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["chapter"], changed.json()["enabled"]) == ("改名", "3", False)
    assert world.call("DELETE", f"/{hook['id']}").status_code == 204
    assert world.call("GET", f"/{hook['id']}").status_code == 404
    audit = world.client.get("/api/v1/admin/audit", headers={"Authorization": world.admin}).json()["items"]
    assert [e["type"] for e in audit if e["type"].startswith("webhook.")] == [
        "webhook.created",
        "webhook.updated",
        "webhook.deleted",
    ]


def test_payload_is_the_change_feed_item(world: World, receiver: Receiver) -> None:
    hook = world.register(receiver.url(), event_types=["report.submitted"])
    world.report("2.1.3", "教育体育局")
    world.deliver_until(lambda: len(receiver.delivered()) == 1)
    payload = verified(receiver.delivered()[0], hook["secret"])
    feed = world.client.get("/api/v1/changes", params={"since": hook["cursor"]}).json()["items"]
    assert payload["data"] == next(item for item in feed if item["type"] == "report.created")
    assert json.loads(receiver.delivered()[0].body)["timestamp"] == payload["timestamp"]


def test_light_changes_and_missing_duties_are_pushed(world: World, receiver: Receiver) -> None:
    hook = world.register(receiver.url(), unit="教育体育局", event_types=["task.light_changed", "duty.missing"])
    assert supervision_watch.watch(engine=world.engine, settings=world.settings) > 0  # the first look: deadlines
    plan = f"/api/v1/plans/{SEED_SLUG}"
    missing = world.client.get(f"{plan}/duties", params={"unit": "教育体育局", "state": "missing", "limit": 500})
    expected = {(d["task"], d["period"]) for d in missing.json()["items"] if d["period"] == _latest(missing.json())}
    assert expected  # the seed has no reports: the latest closed period's duties are all missing
    world.deliver_until(lambda: len(receiver.delivered()) == len(expected))
    payloads = [verified(r, hook["secret"]) for r in receiver.delivered()]
    assert {p["type"] for p in payloads} == {"duty.missing"}  # first look: lights noted, not changed
    assert {(p["data"]["task"], p["data"]["data"]["period"]) for p in payloads} == expected

    world.report("2.1.3", "教育体育局", status="completed", percent=100)
    assert supervision_watch.watch(engine=world.engine, settings=world.settings) == 1  # only 2.1.3's light moved
    world.deliver_until(lambda: len(receiver.delivered()) == len(expected) + 1)
    change = verified(receiver.delivered()[-1], hook["secret"])
    light = world.client.get(f"{plan}/tasks/2.1.3").json()["light"]
    assert change["type"] == "task.light_changed"
    assert (change["data"]["task"], change["data"]["data"]["from"], change["data"]["data"]["to"]) == (
        "2.1.3",
        "red",
        light,
    )
    assert supervision_watch.watch(engine=world.engine, settings=world.settings) == 0  # each recorded once


def _latest(duties: dict[str, Any]) -> str:
    return max((d["period"] for d in duties["items"]), key=lambda p: (p[:4], p[5:]))


def test_retry_after_is_honoured_within_the_schedule(webhook_engine: Engine, receiver: Receiver) -> None:
    receiver.behaviour = lambda path, n: (429, {"Retry-After": "2"}, 0.0) if n == 1 else (200, {}, 0.0)
    for world in build_world(webhook_engine, webhook_settings(webhook_retry_schedule=[0.1, 5.0])):
        hook = world.register(receiver.url(), event_types=["report.submitted"])
        world.report("2.1.3", "教育体育局")
        world.deliver_until(lambda: len(receiver.delivered()) == 1)
        first, second = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
        waited = datetime.fromisoformat(first["next_attempt_at"]) - datetime.fromisoformat(first["attempted_at"])
        assert (first["status_code"], second["status_code"]) == (429, 200)
        assert waited == timedelta(seconds=2)  # the receiver's 2 s, not the schedule's 0.1 s


def test_deliveries_leave_the_read_cache_valid(world: World, receiver: Receiver) -> None:
    """The worker's bookkeeping (messages, attempts, cursors) is in no cached read: delivering must not
    move the data version, or every delivery would empty every worker's read cache."""
    world.register(receiver.url(), event_types=["report.submitted"])
    world.report("2.1.3", "教育体育局")
    with Session(world.engine) as session:
        before = data_version(session)
    world.deliver_until(lambda: len(receiver.delivered()) == 1)
    with Session(world.engine) as session:
        assert data_version(session) == before
    world.report("2.1.4", "司法局")  # while a real write still moves it
    with Session(world.engine) as session:
        assert data_version(session) > before


def test_the_watch_reads_today_as_the_api_does(world: World) -> None:
    """The watch reads only today's facts (the report groups the lights and the latest closed period's
    duties judge), not every report of the plan: what it notes must still be what the API derives —
    each task's light as listed today, and the latest period's missing duties as `/duties` (which
    rebuilds from the whole history) lists them."""
    plan = f"/api/v1/plans/{SEED_SLUG}"
    every = world.client.get(f"{plan}/duties", params={"unit": "教育体育局", "limit": 500}).json()
    latest = _latest(every)
    for period in ("2022-H1", "2023-H2", latest):  # old history, and the period the duties are judged in
        world.report("2.1.3", "教育体育局", period=period, percent=40)
    world.report("2.1.3", "教育体育局", period=latest, percent=80)  # a correction: a second version
    world.report("2.3.3", "司法局", status="completed", percent=100, period="2021-H2")  # completed long ago
    world.report("2.2.2", "司法局", period=latest, status="delayed", percent=10)

    assert supervision_watch.watch(engine=world.engine, settings=world.settings) > 0
    listed = world.client.get(f"{plan}/tasks", params={"limit": 500}).json()["items"]
    missing: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"state": "missing", "period": latest, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = world.client.get(f"{plan}/duties", params=params)
        assert page.status_code == 200, page.text
        missing += page.json()["items"]
        if (cursor := page.json()["next_cursor"]) is None:
            break
    with Session(world.engine) as session:
        lights = dict(session.exec(select(Task.code, TaskLightSeen.light).join(Task)).all())
        noted = set(session.exec(select(Task.code, Unit.name).join(Task).join(Unit).select_from(DutyMissingSeen)).all())
    assert lights == {t["code"]: t["light"] for t in listed}
    assert noted and noted == {(d["task"], d["unit"]["name"]) for d in missing}
