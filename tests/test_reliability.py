"""The reliability suite (reliability/) in its bounded form: the goals of docs/reliability.md.

Each script runs as a person would run it by hand, with ``--ci`` (fewer accounts, kills and
rounds) and ``--json``; the test holds its figures to the goals. The long forms, whose figures
docs/reliability.md publishes, run by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

RELIABILITY = Path(__file__).resolve().parent.parent / "reliability"


def _run(script: str, tmp_path: Path, *args: str) -> tuple[Any, str]:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(RELIABILITY / script), "--ci", "--json", str(out), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "verdict: every goal met" in done.stdout
    return json.loads(out.read_text()), done.stdout


def test_kill_9_at_random_moments_on_both_backends(tmp_path: Path) -> None:
    """Six kills per backend; the database passes its check after each.

    Then one round ends with exactly one sample per account, and no round is left running.
    """
    outcomes, _ = _run("crashes.py", tmp_path)
    assert [o["backend"] for o in outcomes] == ["sqlite", "postgresql"]
    for outcome in outcomes:
        kills = outcome["kills"]
        assert len(kills) == 6
        assert [k["problems"] for k in kills] == [[]] * 6
        assert any(k["phase"] == "mid-round" for k in kills), kills
        # The kills measured something, and the finishing round measured the rest.
        assert 0 < kills[-1]["samples_after"] < outcome["accounts"]
        assert outcome["finisher_exit"] == 0
        assert outcome["doubled"] == 0
        assert outcome["missing"] == 0
        assert outcome["runs"].get("running", 0) == 0
        assert outcome["runs"]["finished"] == 1
        assert outcome["final_problems"] == []


def test_a_fault_run_loses_nothing_and_stores_no_false_value(tmp_path: Path) -> None:
    """Every kind of fault on 24 hosts, two rounds: no crash, nothing lost, nothing untrue.

    Every round ends within its deadline, and most measurable accounts are measured.
    """
    outcome, stdout = _run("faults.py", tmp_path)
    # Every profile of the chaos is on at least one host.
    assert all(count >= 1 for count in outcome["profiles"].values()), outcome["profiles"]
    assert len(outcome["rounds"]) == 2
    for figures in outcome["rounds"]:
        assert figures["crashed"] is None
        assert figures["status"] == "finished"
        assert figures["lost"] == 0
        assert figures["wrong_values"] == 0
        assert figures["wall"] <= figures["bound"]
        assert figures["measured"] == figures["measured_measurable"], "refused for good, measured"
        assert figures["measured_measurable"] >= 0.9 * figures["measurable"]
        # The hosts refusing for good show in the reasons.
        assert figures["failures_by_code"].get("access_denied", 0) > 0
        assert figures["failures_by_code"].get("bad_response", 0) > 0
    assert outcome["measurable_ever_measured"] >= 0.97 * outcome["measurable"]
    assert outcome["check_problems"] == []
    assert "redirect_loop" in stdout
