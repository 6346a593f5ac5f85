"""A real `plan-api serve` per backend for the client and toolkit tests, with unit keys issued by the
operator's own command (`plan-api keys create`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.factories import Live, live_server


@pytest.fixture(scope="module")
def live(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server (and database) shared by a module's tests: they use distinct tasks or periods."""
    yield from live_server(backend, tmp_path_factory.mktemp("live"))
