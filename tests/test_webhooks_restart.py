"""Webhook delivery survives its worker being killed (`kill -9`) mid-request: no event is lost, and
none is delivered under two ids. And several workers at once send each message once. Both backends."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from app.services import webhook_delivery
from tests.factories import PLAN_API, plan_api_env
from tests.webhook_support import Receiver, World, build_world, verified, webhook_settings

REPORTS = [
    ("2.1.3", "教育体育局"),
    ("2.1.4", "司法局"),
    ("2.2.4", "教育体育局"),
    ("4.1.2", "司法局"),
    ("6.1.1", "教育体育局"),
]
HUNG = 3  # the request the worker is killed in the middle of


def start_worker(command: list[str], database_url: str, workdir: Path, n: int) -> subprocess.Popen[bytes]:
    env = {
        **plan_api_env(database_url),
        "WEBHOOK_WORKER": "true",
        "WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
        "WEBHOOK_TIMEOUT_SECONDS": "4",
        "WEBHOOK_RETRY_SCHEDULE": "[0.5, 1, 2]",
        "WEBHOOK_POLL_SECONDS": "0.2",
    }
    log = (workdir / f"worker-{n}.log").open("wb")
    return subprocess.Popen([str(PLAN_API), *command], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(condition: object, what: str, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "command",
    [["webhooks", "run"], ["serve", "--host", "127.0.0.1", "--port", "0"]],
    ids=["webhooks-run", "serve"],
)
def test_a_worker_killed_mid_delivery_loses_nothing(
    webhook_engine: Engine, receiver: Receiver, tmp_path: Path, command: list[str]
) -> None:
    # The third request hangs (longer than the worker's timeout); the worker is killed while it waits.
    receiver.behaviour = lambda path, n: (200, {}, 30.0 if n == HUNG else 0.0)
    url = webhook_engine.url.render_as_string(hide_password=False)
    for world in build_world(webhook_engine, webhook_settings()):
        hook = world.register(receiver.url(), event_types=["report.submitted"])
        reports = [world.report(code, unit) for code, unit in REPORTS]

        worker = start_worker(command, url, tmp_path, 1)
        try:
            wait_for(lambda: len(receiver.received) >= HUNG, "the request the worker will die in")
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
        worker = start_worker(command, url, tmp_path, 2)
        try:
            wanted, secret = {r["id"] for r in reports}, hook["secret"]
            wait_for(lambda: _delivered_reports(receiver, secret) == wanted, "every report, after a restart")  # noqa: B023
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)

        ids_by_seq: dict[int, set[str]] = {}
        for r in receiver.received:
            ids_by_seq.setdefault(verified(r, hook["secret"])["data"]["seq"], set()).add(r.headers["webhook-id"])
        assert len(ids_by_seq) == len(REPORTS)
        assert all(len(ids) == 1 for ids in ids_by_seq.values()), ids_by_seq  # never under two ids
        hung_id = receiver.received[HUNG - 1].headers["webhook-id"]
        assert [r.headers["webhook-id"] for r in receiver.received].count(hung_id) == 2  # sent again, same id


def _delivered_reports(receiver: Receiver, secret: str) -> set[int]:
    return {verified(r, secret)["data"]["report_id"] for r in receiver.delivered()}


def test_several_workers_at_once_send_each_message_once(webhook_engine: Engine, receiver: Receiver) -> None:
    for world in build_world(webhook_engine, webhook_settings()):
        hook = world.register(receiver.url(), event_types=["report.submitted", "task.status_changed"])
        for code, unit in REPORTS:
            world.report(code, unit)
        _run_workers(world, 3)
        payloads = [verified(r, hook["secret"]) for r in receiver.received]
        assert len(payloads) == 2 * len(REPORTS)  # each report: report.submitted and task.status_changed
        ids = [r.headers["webhook-id"] for r in receiver.received]
        assert len(set(ids)) == len(ids)


def _run_workers(world: World, n: int) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                webhook_delivery.run_once(engine=world.engine, settings=world.settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
