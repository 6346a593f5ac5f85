"""A short soak (bench/soak.py, 20 s): a real server under mixed reads and writes answers every request.

The full soak, minutes long with memory and latency sampled, is `bench/soak.py` (see docs/reliability.md);
this keeps its load generator working and its zero-error result true on every run.
"""

from __future__ import annotations

import pytest

from bench.soak import soak


@pytest.mark.soak
def test_short_soak_has_no_errors() -> None:
    result = soak(duration=20, sample=5, readers=2, writers=1, database_url=None, quiet=True)
    summary = result["summary"]
    assert summary["errors"] == {}, summary
    assert summary["writes"] > 0 and summary["replays"] > 0, summary  # retries replayed, as promised
    assert not summary["traceback_in_log"]
    assert all(row["rss_mib"] > 0 for row in result["samples"])
