"""A real `plan-api serve` per backend for the client and toolkit tests, with unit keys issued by the
operator's own command (`plan-api keys create`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import fresh_database_url
from tests.factories import run_plan_api, start_server


@dataclass
class Live:
    base_url: str
    database_url: str
    workdir: Path

    def key(self, unit: str) -> str:
        """A new key of `unit`: the secret, as `keys create` prints it on its last line."""
        result = run_plan_api("keys", "create", "--unit", unit, database_url=self.database_url, cwd=self.workdir)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]


def live_server(backend: str, tmp_path: Path) -> Iterator[Live]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    for url in fresh_database_url(backend, tmp_path):
        server = start_server(url, workdir)
        try:
            yield Live(base_url=server.base_url, database_url=url, workdir=workdir)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def live(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server (and database) shared by a module's tests: they use distinct tasks or periods."""
    yield from live_server(backend, tmp_path_factory.mktemp("live"))
