"""A real Prometheus scrapes a real `fedimeter serve` and answers PromQL about what it measured."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from fedimeter.config import Settings
from fedimeter.simfedi import SimFediverse

pytestmark = pytest.mark.slow

_T = TypeVar("_T")

TOKEN = "prometheus-api-t0ken-0123456789ab"
READ_TOKEN = "prometheus-read-t0ken-0123456789"
FOLLOWERS = {"alice": 110, "bob": 22, "carol": 3}
#: How long to wait for a process to be ready, a round to end, or a scrape to show.
PATIENCE = 60.0


@pytest.fixture(scope="session")
def prometheus() -> str:
    """The Prometheus server binary (CI must have it; locally the test skips without it)."""
    path = shutil.which("prometheus")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is missing on CI (scripts/test installs Debian's prometheus)")
        pytest.skip("Prometheus not installed (apt-get install prometheus)")
    return path


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """One simulated Mastodon server with three accounts whose counts stay put."""
    sim = SimFediverse(seed=59)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    for name, followers in FOLLOWERS.items():
        social.add_account(name, followers=followers, following=7, statuses=50)
    with sim.run_in_thread():
        yield sim


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _running(args: list[str], log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` as a process logging to ``log``, terminated (then waited for) at the end."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, **env), cwd=log.parent
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _until(
    what: str, check: Callable[[], _T | None], process: subprocess.Popen[bytes], log: Path
) -> _T:
    """Call ``check`` until it returns something; fail if ``process`` dies or it is late."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{log.name}:\n{log.read_text(errors='replace')}"
        with contextlib.suppress(httpx.TransportError):
            if (result := check()) is not None:
                return result
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {PATIENCE} s\n{log.read_text(errors='replace')}")


def _ok(http: httpx.Client, path: str) -> bool | None:
    """True when ``path`` answers 200, else None (not yet)."""
    return True if http.get(path).status_code == httpx.codes.OK else None


def _ended(run: dict[str, Any]) -> dict[str, Any] | None:
    """The round once it is no longer running."""
    return None if run["status"] == "running" else run


@dataclass
class RunningPrometheus:
    """A Prometheus server a test started, its HTTP client, and its log."""

    process: subprocess.Popen[bytes]
    http: httpx.Client
    log: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result of an instant PromQL query."""
        answer = self.http.get("/api/v1/query", params={"query": promql})
        assert answer.status_code == httpx.codes.OK, f"{promql}: {answer.text}"
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def until(self, what: str, check: Callable[[], _T | None]) -> _T:
        """``_until`` with this server as the process that must stay alive."""
        return _until(what, check, self.process, self.log)


@contextlib.contextmanager
def running_prometheus(binary: str, config: Path) -> Iterator[RunningPrometheus]:
    """Prometheus with ``config`` on a free loopback port, ready; its data beside the config."""
    port = _free_port()
    log = config.with_name("prometheus.log")
    with (
        _running(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={config.with_name('tsdb')}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            log,
        ) as process,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
    ):
        server = RunningPrometheus(process, http, log)
        server.until("Prometheus ready", lambda: _ok(http, "/-/ready"))
        yield server


def _prometheus_config(path: Path, target: str) -> None:
    """The scrape config of docs/metrics.md, every second (JSON is YAML)."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "fedimeter",
                "honor_labels": True,
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "authorization": {"type": "Bearer", "credentials": READ_TOKEN},
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    path.write_text(json.dumps(config, indent=2))


def test_prometheus_scrapes_the_followers_the_servers_serve(
    settings: Settings, world: SimFediverse, prometheus: str, tmp_path: Path
) -> None:
    """fedimeter serve + one round, scraped with the read token: PromQL sees every account."""
    social = world.instance("social")
    port = _free_port()
    serve_log = tmp_path / "serve.log"
    with (
        _running(
            [sys.executable, "-m", "fedimeter", "serve", "--port", str(port), "--no-schedule"],
            serve_log,
            FEDIMETER_DATABASE_URL=settings.database_url,
            FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
            FEDIMETER_DEFAULT_SCHEME="http",
            FEDIMETER_API_TOKEN=TOKEN,
            FEDIMETER_READ_TOKEN=READ_TOKEN,
        ) as serve,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ) as fedimeter,
    ):
        _until(
            "fedimeter ready",
            lambda: _ok(fedimeter, "/readyz"),
            serve,
            serve_log,
        )
        for name in FOLLOWERS:
            added = fedimeter.post(
                "/api/v1/accounts", json={"handle": f"@{social.account(name).acct}"}
            )
            assert added.status_code == 201, added.text
        tracked = fedimeter.post("/api/v1/instances", json={"host": social.base_url})
        assert tracked.status_code == 201, tracked.text
        round_id = fedimeter.post("/api/v1/runs").json()["id"]
        ended = _until(
            "the round",
            lambda: _ended(fedimeter.get(f"/api/v1/runs/{round_id}").json()),
            serve,
            serve_log,
        )
        assert ended["status"] == "finished", ended

        config = tmp_path / "prometheus.yml"
        _prometheus_config(config, f"127.0.0.1:{port}")
        with running_prometheus(prometheus, config) as server:
            series = server.until(
                "the followers in Prometheus",
                lambda: (
                    found
                    if len(found := server.query("fedimeter_account_followers")) == 3
                    else None
                ),
            )
            up = server.query('up{job="fedimeter"} == 1')
            measured = server.query('fedimeter_last_round_accounts{result="measured"}')
            success = server.query("fedimeter_last_round_success")
            instance_users = server.query("fedimeter_instance_users")
            instance_up = server.query("fedimeter_instance_up")
            weeks = server.query("fedimeter_instance_week_logins")
        assert server.process.returncode is not None  # stopped with the test
    got = {s["metric"]["account"]: (s["metric"]["instance"], float(s["value"][1])) for s in series}
    assert got == {
        social.account(name).acct: (social.web_domain, followers)
        for name, followers in FOLLOWERS.items()
    }
    assert [s["metric"]["job"] for s in up] == ["fedimeter"]
    assert [float(s["value"][1]) for s in measured] == [3]
    assert [float(s["value"][1]) for s in success] == [1]
    assert [(s["metric"]["instance"], float(s["value"][1])) for s in instance_users] == [
        (social.address.authority, float(len(social.accounts)))
    ]
    assert [float(s["value"][1]) for s in instance_up] == [1]
    assert len(weeks) == 1  # the last complete week of the backfilled activity
