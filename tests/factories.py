"""Small helpers for tests: plan texts in the other layout, a way to import them, the installed
`plan-api` command (one-off runs and a live server), and the app served in a thread."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.config import SEED_DIR
from app.importer.loader import ImportSummary
from app.importer.parser import Term
from app.importer.service import import_file
from app.main import create_app

SEED_PLAN = SEED_DIR / "xiji-fzsh-2021-2025.txt"
SEED_UNITS_DIR = SEED_DIR / "units"
SEED_UNITS = SEED_UNITS_DIR / "640422.toml"  # 西吉县's unit file
SEED_SLUG = "xiji-fzsh-2021-2025"
XIJI = "640422"  # 西吉县: the seed plan's jurisdiction


def xiji_id(session: Session) -> int:
    """The id of 西吉县's jurisdiction row (the seed created it)."""
    from app.models import Jurisdiction

    found = session.exec(select(Jurisdiction.id).where(Jurisdiction.code == XIJI)).one()
    assert found is not None
    return found


def import_text(
    session: Session,
    tmp_path: Path,
    text: str | bytes,
    *,
    slug: str,
    strict: bool = False,
    term: Term | None = None,
    jurisdiction: str | None = XIJI,
) -> ImportSummary:
    """Imports as 西吉县's plan unless told otherwise (`jurisdiction=None`: inferred from the text,
    as `plan-api import` does without --jurisdiction); most test texts carry no header to infer from."""
    path = tmp_path / f"{slug}.txt"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    _, summary = import_file(
        session=session,
        path=path,
        slug=slug,
        units_path=SEED_UNITS_DIR,
        strict=strict,
        jurisdiction=jurisdiction,
        term=term,
    )
    session.commit()  # as `plan-api import` does; under the `db` fixture this only releases a savepoint
    return summary


def make_key(session: Session, *, unit: str | None = None, admin: bool = False, jurisdiction: str | None = XIJI) -> str:
    """Issues a key through the real service and returns the Authorization header value. `unit` may be
    qualified (`511725:县司法局`); an admin key administers `jurisdiction` (default 西吉县, as the keys
    issued before jurisdictions were migrated to; None: platform-wide)."""
    from app.services.jurisdictions import resolve
    from app.services.keys import create_key
    from app.services.units import get_unit

    found = get_unit(session=session, ref=unit) if unit else None
    scope = resolve(session=session, ref=jurisdiction, store=True) if admin and jurisdiction else None
    name = unit or f"{scope.name if scope else '全平台'}依法治县办"
    _, secret = create_key(session=session, name=name, unit=found, is_admin=admin, jurisdiction=scope)
    session.commit()  # as `keys create` does; under the `db` fixture this only releases a savepoint
    return f"Bearer {secret}"


# --- The installed `plan-api` command, as a user or an operator runs it ------------------------

PLAN_API = Path(sys.executable).with_name("plan-api")
SERVER_START_TIMEOUT = 120.0  # migrate + seed + uvicorn start, on a busy 2-core machine
_STARTED_RE = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def plan_api_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}


def run_plan_api(*args: str, database_url: str, cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """One `plan-api …` run; cwd should be a temp dir, to keep a developer's `.env` out of it."""
    return subprocess.run(
        [str(PLAN_API), *args],
        cwd=cwd,
        env=plan_api_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class LiveServer:
    """`plan-api serve` in a subprocess on a kernel-chosen loopback port (see `start_server`)."""

    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(timeout=20)


def start_server(
    database_url: str,
    workdir: Path,
    *,
    timeout: float = SERVER_START_TIMEOUT,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> LiveServer:
    """Starts `plan-api serve --port 0` (the kernel picks a free port, uvicorn logs it: no port race)
    and returns once GET /healthz answers 200. The server migrates and seeds an empty database.
    `env` adds settings, `args` more `serve` options (`--workers 2`), `preexec_fn` runs in the child
    before it starts (resource limits)."""
    import httpx

    if not PLAN_API.exists():
        raise RuntimeError(f"{PLAN_API} not found: install the project into this venv (pip install -e '.[test]')")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"server-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(PLAN_API), "serve", "--host", "127.0.0.1", "--port", "0", *args],
            cwd=workdir,
            env={**plan_api_env(database_url), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
    server = LiveServer(proc=proc, base_url="", log_path=log_path)
    try:
        deadline = time.monotonic() + timeout
        while not server.base_url:
            if proc.poll() is not None:
                raise RuntimeError(f"plan-api serve exited with {proc.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"plan-api serve did not start within {timeout:.0f}s:\n{server.log_tail()}")
            match = _STARTED_RE.search(log_path.read_text(errors="replace"))
            if match:
                server.base_url = f"http://127.0.0.1:{match.group(1)}"
            else:
                time.sleep(0.1)
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        return server
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"GET /healthz never answered 200:\n{server.log_tail()}")
                time.sleep(0.1)
    except BaseException:
        server.stop()
        raise


@dataclass
class Live:
    """A running server, its database and the operator's working directory (for `plan-api keys`)."""

    base_url: str
    database_url: str
    workdir: Path

    def key(self, unit: str) -> str:
        """A new key of `unit`: the secret, as `keys create` prints it on its last line."""
        result = run_plan_api("keys", "create", "--unit", unit, database_url=self.database_url, cwd=self.workdir)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]


def live_server(backend: str, tmp_path: Path) -> Iterator[Live]:
    """A fresh database of `backend` and `plan-api serve` on it (migrated, seeded); stopped and dropped after."""
    from tests.conftest import fresh_database_url

    workdir = tmp_path / "work"
    workdir.mkdir()
    for url in fresh_database_url(backend, tmp_path):
        server = start_server(url, workdir)
        try:
            yield Live(base_url=server.base_url, database_url=url, workdir=workdir)
        finally:
            server.stop()


# --- A second county: 渠县 (511725, 四川省达州市), the seed plan under its own header -------------

QU = "511725"
QU_SLUG = "qu-fzsh-2021-2025"


def qu_plan_text() -> str:
    """The seed plan as 渠县 would issue it: its own 索引号, issuer and title (same genre, same unit names)."""
    return SEED_PLAN.read_text(encoding="utf-8").replace("640422", QU).replace("西吉县", "渠县").replace("西吉", "渠县")


def units_dir(tmp_path: Path) -> Path:
    """A unit-file directory with 西吉县's file and 渠县's own (the same names: every county has a 县司法局)."""
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    xiji = (SEED_UNITS_DIR / f"{XIJI}.toml").read_text(encoding="utf-8")
    (directory / f"{XIJI}.toml").write_text(xiji, encoding="utf-8")
    (directory / f"{QU}.toml").write_text(xiji.replace("西吉县", "渠县"), encoding="utf-8")
    return directory


def import_qu(session: Session, tmp_path: Path) -> ImportSummary:
    """Imports 渠县's plan with its jurisdiction read off the document, as `plan-api import` does."""
    path = tmp_path / f"{QU_SLUG}.txt"
    path.write_text(qu_plan_text(), encoding="utf-8")
    _, summary = import_file(session=session, path=path, slug=QU_SLUG, units_path=units_dir(tmp_path))
    session.commit()
    return summary


@contextmanager
def serving_in_thread() -> Iterator[str]:
    """The app (as `create_app()` builds it from the environment) served by uvicorn in a thread on a
    free port; yields its base URL and stops it on exit. For HTTP clients that need a real socket."""
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "the server did not start"
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def report(client: TestClient, key: str, code: str, **body: Any) -> dict[str, Any]:
    """A progress report on one of the seed plan's tasks, which must be accepted."""
    sent = {"status": "in_progress", "percent": 50, "summary": "推进中", "period": "2023-Q4", **body}
    response = client.post(
        f"/api/v1/plans/{SEED_SLUG}/tasks/{code}/progress", json=sent, headers={"Authorization": key}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def comparable(headers: object) -> dict[str, str]:
    """Response headers minus those about the moment of asking: the date, the caller's remaining
    rate-limit allowance and the seconds until its window resets, which may differ between any two answers."""
    moment = {"date", "ratelimit-remaining", "ratelimit-reset"}
    return {k: v for k, v in dict(headers).items() if k not in moment}  # type: ignore[call-overload]
