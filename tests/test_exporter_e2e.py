"""A real Prometheus scrapes a real `fedimeter exporter` process measuring a simulated server."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fedimeter.simfedi import SimFediverse
from peers import free_port
from test_prometheus import (  # noqa: F401 - prometheus is a fixture
    _ok,
    _running,
    _until,
    prometheus,
    running_prometheus,
)

pytestmark = pytest.mark.slow

USERS = ("alice", "bob", "carol", "dave")
#: Environment of the exporter process: the simulated servers are on loopback.
ENV = {"FEDIMETER_ALLOW_PRIVATE_ADDRESSES": "true", "FEDIMETER_RETRY_BASE_DELAY": "0.01"}


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """One simulated Mastodon server with four users, served from a thread."""
    sim = SimFediverse(seed=73)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    for name in USERS:
        social.add_account(name, followers=10, statuses=30, statuses_per_day=2.0)
    sim.advance(days=10)
    with sim.run_in_thread():
        yield sim


def exporter_command(port: int, *instances: str, compat: bool = False) -> list[str]:
    """``fedimeter exporter`` for ``instances`` on ``port``, as a process runs it."""
    args = [sys.executable, "-m", "fedimeter", "exporter", "--port", str(port)]
    for instance in instances:
        args += ["--instance", instance]
    return [*args, "--compat-names"] if compat else args


def prometheus_config(path: Path, target: str) -> None:
    """The exporter scrape config of docs/metrics.md, every second (JSON is YAML)."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "fedimeter-exporter",
                "honor_labels": True,
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    path.write_text(json.dumps(config, indent=2))


def test_prometheus_scrapes_the_users_the_server_serves(
    world: SimFediverse,
    prometheus: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """PromQL sees the simulated users under fedimeter's name and the old one; SIGTERM exits 0."""
    social = world.instance("social")
    port = free_port()
    log = tmp_path / "exporter.log"
    with (
        _running(exporter_command(port, social.base_url, compat=True), log, **ENV) as exporter,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        _until("the exporter ready", lambda: _ok(client, "/healthz"), exporter, log)
        config = tmp_path / "prometheus.yml"
        prometheus_config(config, f"127.0.0.1:{port}")
        with running_prometheus(prometheus, config) as server:
            users = server.until(
                "the users in Prometheus",
                lambda: found if (found := server.query("fedimeter_instance_users")) else None,
            )
            up = server.query('up{job="fedimeter-exporter"}')
            instance_up = server.query("fedimeter_instance_up")
            old_users = server.query("mastodon_user_count")
            weeks = server.query("fedimeter_instance_week_statuses")
    assert exporter.returncode == 0, log.read_text()
    assert "stopped by SIGTERM" in log.read_text()
    host = social.address.authority
    assert [(s["metric"]["instance"], float(s["value"][1])) for s in users] == [
        (host, float(len(USERS)))
    ]
    assert [float(s["value"][1]) for s in up] == [1]
    assert [(s["metric"]["instance"], float(s["value"][1])) for s in instance_up] == [(host, 1)]
    assert [(s["metric"]["instance"], float(s["value"][1])) for s in old_users] == [
        (host, float(len(USERS)))
    ]
    assert [float(s["value"][1]) for s in weeks] == [2.0 * 7 * len(USERS)]  # a whole week


def test_the_process_exports_an_unreachable_instance_as_down_and_stops_on_ctrl_c(
    world: SimFediverse, tmp_path: Path
) -> None:
    """One instance refuses connections: up 0, the other up 1, no 500; SIGINT exits 0."""
    social = world.instance("social")
    nowhere = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    log = tmp_path / "exporter.log"
    with (
        _running(exporter_command(port, nowhere, social.base_url), log, **ENV) as exporter,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        _until("the exporter ready", lambda: _ok(client, "/healthz"), exporter, log)
        answer = client.get("/metrics")
        exporter.send_signal(signal.SIGINT)
        exporter.wait(timeout=30)
    assert answer.status_code == 200, answer.text
    up = {
        sample.labels["instance"]: sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name == "fedimeter_instance_up"
    }
    assert up == {nowhere.removeprefix("http://"): 0, social.address.authority: 1}
    assert exporter.returncode == 0, log.read_text()
    assert "stopped by SIGINT" in log.read_text()
    assert "is down" in log.read_text()
