"""reliability/load.py in its bounded form: the API under a minute of load keeps its goals.

The script runs as a person would run it by hand, with ``--ci`` (2,000 accounts x 90 days,
a minute of load measured after 150 s of warm-up) and ``--json``; the test holds its figures
to the goals. The long form (10,000 accounts x 365 days, 10 + 30 minutes) runs by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "reliability" / "load.py"


def test_the_api_under_load_keeps_answering_with_stable_memory(tmp_path: Path) -> None:
    """A minute of the mix: no 5xx or connection error, every status as expected.

    The server's memory stops growing, it keeps no more descriptors than after the warm-up,
    it gets no slower, and it is still ready at the end and stops cleanly.
    """
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--ci", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    assert "verdict: every goal met" in done.stdout
    outcome = json.loads(out.read_text())
    assert outcome["ok"] is True
    assert all(outcome["goals"].values()), outcome["goals"]

    # The load happened, and every kind of request was sent and got what it must.
    assert outcome["requests"] >= 500
    assert outcome["failures"] == 0
    assert outcome["unexpected"] == 0
    assert not any(status.startswith("5") for status in outcome["statuses"]), outcome["statuses"]
    for kind in outcome["kinds"]:
        assert kind["requests"] > 0, kind
        assert kind["unexpected"] == 0, kind
        allowed = {str(kind["expect"]), "hung up"}
        assert set(kind["answers"]) <= allowed, kind
    assert {"200", "401", "404", "422"} <= set(outcome["statuses"])
    assert outcome["hung_up"] > 0
    # Every interval answered, none failed.
    assert len(outcome["intervals"]) == 4
    for row in outcome["intervals"]:
        assert row["requests"] > 0
        assert row["failures"] == 0

    # Memory, descriptors, latency.
    assert outcome["rss_median_growth"] <= outcome["rss_growth_limit"]
    assert outcome["rss_median_middle"] > 0
    assert outcome["rss_median_last"] > 0
    assert outcome["rss_start"] > 0
    assert outcome["rss_start"] <= outcome["rss_max"]
    assert outcome["fds_other_end"] <= outcome["fds_other_start"], outcome["fds_added"]
    assert outcome["fds_database_end"] <= outcome["fds_database_start"] + 3
    assert outcome["fds_font_end"] <= 64 * 4  # matplotlib's font cache, with fallbacks
    assert outcome["light_p50_second"] > 0

    # Still serving, nothing written by the refused writes, a clean stop.
    assert outcome["alive_at_end"] is True
    assert outcome["ready_at_end"] is True
    assert outcome["written"] == []
    assert outcome["server_exit"] == 0
    assert outcome["log_trouble"] == []
