"""deploy/ and the Dockerfile: what they configure fits together, and the dashboard finds data.

The files are checked as their tools read them where the tools are here (``promtool check
config``) and parsed otherwise (no Docker daemon is needed). The end-to-end test starts a real
``fedimeter serve`` against the simulated fediverse and a real Prometheus scraping it with the
job of ``deploy/prometheus/prometheus.yml``, then sends every dashboard expression to
Prometheus as Grafana would, with the variables set to All.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import test_metrics
import test_prometheus
from fedimeter.simfedi import SimFediverse
from test_exporter_e2e import exporter_command
from test_prometheus import _ended, _free_port, _ok, _running, _until, running_prometheus

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "fedimeter.json"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
COMPOSE = DEPLOY / "compose.yaml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "fedimeter.yaml"

# The binaries, or a skip locally (a failure on CI): fixtures shared with those modules.
promtool = test_metrics.promtool
prometheus = test_prometheus.prometheus

#: Expressions over the old Mastodon exporter's names, which only ``fedimeter exporter
#: --compat-names`` exports (tests/test_exporter.py covers them): ``fedimeter serve`` never does.
EXPORTER_ONLY = frozenset(
    {
        'mastodon_user_count{instance=~"$instance"}',
        'mastodon_status_count{instance=~"$instance"}',
        'rmastodon_domain_count{instance=~"$instance"}',
        'mastodon_weekly_statuses{instance=~"$instance"}',
        'mastodon_weekly_login{instance=~"$instance"}',
        'mastodon_weekly_registrations{instance=~"$instance"}',
    }
)
#: The window Grafana's interval variables stand for in the queries sent to Prometheus.
GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
#: What the dashboard's own variables become with All selected (their allValue).
ALL = ".*"
DASHBOARD_VARIABLES = ("instance", "account")
_METRIC = re.compile(r"\b(?:fedimeter|r?mastodon)_[a-z_]+\b")


def _yaml(path: Path) -> Any:
    """``path`` parsed as YAML (PyYAML comes with schemathesis, a test dependency)."""
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text())


def _dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return result


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _expressions() -> list[tuple[str, str]]:
    """(panel title and query id, PromQL) of every query in the dashboard."""
    return [
        (f"{panel['title']} {target['refId']}", target["expr"])
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def _as_sent(expr: str) -> str:
    """``expr`` as Grafana sends it with every variable at All and intervals filled in."""
    names = "|".join(DASHBOARD_VARIABLES)
    expr = re.sub(rf"\$\{{?(?:{names})(?::\w+)?\}}?(?!\w)", ALL, expr)
    intervals = "|".join(GRAFANA_INTERVALS)
    expr = re.sub(rf"\$\{{?({intervals})\}}?(?!\w)", lambda m: GRAFANA_INTERVALS[m[1]], expr)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


def _variable(name: str) -> dict[str, Any]:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    variable: dict[str, Any] = variables[name]
    return variable


def _label_values(variable: dict[str, Any]) -> tuple[str, str]:
    """(metric, label) of a ``label_values(metric, label)`` variable."""
    found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["query"])
    assert found is not None, variable["query"]
    return found[1], found[2]


# --- the dashboard ----------------------------------------------------------------------------


def test_dashboard_is_ready_to_provision() -> None:
    """The dashboard parses, has its fixed uid and a recent schema, and names no data source."""
    dashboard = _dashboard()
    assert dashboard["uid"] == "fedimeter"
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["id"] is None  # Grafana assigns it; a fixed one would clash on import
    assert "__inputs" not in dashboard  # import asks for nothing: the variable picks the source
    datasource = _variable("datasource")
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")


@pytest.mark.parametrize(
    ("name", "metric", "label"),
    [
        ("instance", "fedimeter_instance_up", "instance"),
        ("account", "fedimeter_account_followers", "account"),
    ],
)
def test_dashboard_variables_select_many_with_all(name: str, metric: str, label: str) -> None:
    """``instance`` and ``account`` list their label's values, many at once, All matching all."""
    variable = _variable(name)
    assert _label_values(variable) == (metric, label)
    assert variable["datasource"]["uid"] == "${datasource}"
    assert (variable["multi"], variable["includeAll"], variable["allValue"]) == (True, True, ALL)


def test_dashboard_panel_ids_are_unique() -> None:
    """No two panels share an id (Grafana would mix up their state and links)."""
    ids = [panel["id"] for panel in _panels(_dashboard()["panels"])]
    assert len(ids) == len(set(ids))


def test_every_panel_and_query_uses_the_datasource_variable() -> None:
    """Every panel and every query asks the data source chosen in ``$datasource``."""
    wrong = [
        (panel["title"], thing.get("refId"), thing.get("datasource"))
        for panel in _panels(_dashboard()["panels"])
        for thing in (panel, *panel.get("targets", []))
        if thing.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}
    ]
    assert wrong == []


def test_every_panel_has_a_description_and_queries_with_expressions() -> None:
    """Panels other than rows say what they show and have queries, each with PromQL."""
    panels = [p for p in _panels(_dashboard()["panels"]) if p["type"] != "row"]
    assert [p["title"] for p in panels if not p.get("description")] == []
    assert [p["title"] for p in panels if not p.get("targets")] == []
    assert [where for where, expr in _expressions() if not expr.strip()] == []


def test_dashboard_metrics_are_documented_or_exporter_only() -> None:
    """fedimeter's names are in docs/metrics.md; the old names appear only where listed here."""
    documented = (ROOT / "docs" / "metrics.md").read_text()
    expressions = {expr for _, expr in _expressions()}
    names = {expr: set(_METRIC.findall(expr)) for expr in expressions}
    old = {expr for expr, found in names.items() if any("mastodon_" in n for n in found)}
    assert old == EXPORTER_ONLY  # the list above stays true to the dashboard, both ways
    undocumented = {
        name
        for expr, found in names.items()
        if expr not in EXPORTER_ONLY
        for name in found
        if not re.search(rf"`{name}[`{{]", documented)  # `name` or `name{label}`
    }
    assert undocumented == set()


# --- Prometheus, Grafana provisioning, compose, Dockerfile ---------------------------------------


def test_promtool_accepts_the_prometheus_config(promtool: str) -> None:
    """``promtool check config`` passes on deploy/prometheus/prometheus.yml."""
    checked = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_scrapes_serve_and_exporter_keeping_their_instance_label() -> None:
    """Both jobs honour fedimeter's ``instance`` label, once a minute, at the compose names."""
    config = _yaml(PROMETHEUS_CONFIG)
    assert config["global"]["scrape_interval"] == "60s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {name: job["static_configs"][0]["targets"] for name, job in jobs.items()}
    assert targets == {"fedimeter": ["fedimeter:8000"], "fedimeter-exporter": ["exporter:9410"]}
    assert all(job["honor_labels"] is True for job in jobs.values())
    assert "credentials_file: /etc/prometheus/fedimeter-read-token" in PROMETHEUS_CONFIG.read_text()


def test_compose_services_are_complete_and_publish_on_loopback_only() -> None:
    """Every service has an image or a build; every published port is bound to 127.0.0.1."""
    services = _yaml(COMPOSE)["services"]
    assert set(services) == {"postgres", "fedimeter", "exporter", "prometheus", "grafana"}
    assert [name for name, s in services.items() if not s.get("image") and not s.get("build")] == []
    ports = [(name, port) for name, s in services.items() for port in s.get("ports", [])]
    assert ports  # there is something to check
    assert [(name, port) for name, port in ports if not port.startswith("127.0.0.1:")] == []
    assert services["exporter"]["profiles"] == ["exporter"]
    assert "healthcheck" in services["postgres"]
    build = services["fedimeter"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
    environment = services["fedimeter"]["environment"]
    assert environment["FEDIMETER_DATABASE_URL"].startswith("postgresql://")
    assert environment["FEDIMETER_API_TOKEN"].startswith("${FEDIMETER_API_TOKEN:?")


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: where in the container -> the file or folder in deploy/."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = DEPLOY / source
    return mounts


def test_compose_mounts_what_prometheus_and_grafana_are_told_to_read() -> None:
    """Mounted files exist, and the provisioning points at the mounts and the prometheus service."""
    services = _yaml(COMPOSE)["services"]
    prometheus_mounts = _mounts(services["prometheus"])
    assert prometheus_mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    grafana_mounts = _mounts(services["grafana"])
    assert all(path.exists() for path in (*prometheus_mounts.values(), *grafana_mounts.values()))
    provisioning = grafana_mounts["/etc/grafana/provisioning"]
    assert provisioning / "dashboards" / DASHBOARD_PROVIDERS.name == DASHBOARD_PROVIDERS
    [provider] = _yaml(DASHBOARD_PROVIDERS)["providers"]
    assert grafana_mounts[provider["options"]["path"]] / DASHBOARD.name == DASHBOARD
    [source] = _yaml(DATASOURCES)["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    assert (
        source["jsonData"]["timeInterval"] == _yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    )


def test_dockerfile_installs_as_the_readme_does_and_runs_unprivileged() -> None:
    """The README's ``pip install -e .`` without -e, a non-root user, serve on port 8000."""
    assert "pip install -e . && fedimeter serve" in (ROOT / "README.md").read_text()
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert "RUN pip install ." in lines
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}
    assert "EXPOSE 8000" in lines
    assert 'CMD ["fedimeter", "serve", "--host", "0.0.0.0"]' in lines
    assert re.search(r"^HEALTHCHECK (?:.*\\\n)*.*/healthz", text, re.MULTILINE)  # continued lines
    # What the build copies is let into the context (.dockerignore shuts out everything else).
    copied = [source for line in lines if line.startswith("COPY ") for source in line.split()[1:-1]]
    allowed = (ROOT / ".dockerignore").read_text().splitlines()
    assert copied == ["pyproject.toml", "README.md", "src"]
    assert [
        path for path in copied if f"!{path}" not in allowed and f"!{path}/" not in allowed
    ] == []


# --- every expression against a real Prometheus -------------------------------------------------


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """One simulated Mastodon server: two active accounts and one to be suspended."""
    sim = SimFediverse(seed=5)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    for name in ("alice", "bob", "carol"):
        social.add_account(name, followers=40, following=7, statuses=50, followers_per_day=3)
    with sim.run_in_thread():
        yield sim


def _scrape_config(path: Path, targets: dict[str, str]) -> None:
    """deploy/'s jobs (their honor_labels above all) at ``targets`` by job name, every second."""
    jobs = []
    for job in _yaml(PROMETHEUS_CONFIG)["scrape_configs"]:
        job |= {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "static_configs": [{"targets": [targets[job["job_name"]]]}],
        }
        job.pop("authorization", None)
        jobs.append(job)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": jobs,
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML


@pytest.mark.slow
def test_every_dashboard_expression_finds_data(
    world: SimFediverse, prometheus: str, tmp_path: Path
) -> None:
    """Each query of the dashboard, sent as Grafana sends it, returns series from a real round.

    Prometheus scrapes both deploy/ jobs: ``fedimeter serve`` after two rounds, and
    ``fedimeter exporter --compat-names`` for the same instance (the old names' panels).
    """
    social = world.instance("social")
    port, exporter_port = _free_port(), _free_port()
    serve_log = tmp_path / "serve.log"
    with (
        _running(
            [sys.executable, "-m", "fedimeter", "serve", "--port", str(port), "--no-schedule"],
            serve_log,
            FEDIMETER_DATABASE_URL=f"sqlite:///{tmp_path / 'fedimeter.sqlite3'}",
            FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
            FEDIMETER_DEFAULT_SCHEME="http",
        ) as serve,
        _running(
            exporter_command(exporter_port, social.base_url, compat=True),
            tmp_path / "exporter.log",
            FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
            FEDIMETER_DEFAULT_SCHEME="http",
        ),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as fedimeter,
    ):

        def one_round() -> None:
            round_id = fedimeter.post("/api/v1/runs").json()["id"]
            ended = _until(
                "the round",
                lambda: _ended(fedimeter.get(f"/api/v1/runs/{round_id}").json()),
                serve,
                serve_log,
            )
            assert ended["status"] == "finished", ended

        _until("fedimeter ready", lambda: _ok(fedimeter, "/readyz"), serve, serve_log)
        for account in social.accounts:
            added = fedimeter.post("/api/v1/accounts", json={"handle": f"@{account.acct}"})
            assert added.status_code == 201, added.text
        tracked = fedimeter.post("/api/v1/instances", json={"host": social.base_url})
        assert tracked.status_code == 201, tracked.text
        tagged = fedimeter.post(
            "/api/v1/tags", json={"name": "caturday", "hosts": [social.base_url]}
        )
        assert tagged.status_code == 201, tagged.text
        one_round()
        # A second round finds carol suspended: "Accounts no longer active" has a row.
        social.account("carol").suspended = True
        one_round()

        config = tmp_path / "prometheus.yml"
        jobs = {row["job_name"] for row in _yaml(PROMETHEUS_CONFIG)["scrape_configs"]}
        assert len(jobs) == 2, jobs
        serve_job = "fedimeter"
        (exporter_job,) = jobs - {serve_job}
        _scrape_config(
            config,
            {serve_job: f"127.0.0.1:{port}", exporter_job: f"127.0.0.1:{exporter_port}"},
        )
        with running_prometheus(prometheus, config) as server:
            # delta() needs two samples of a series within its window.
            server.until(
                "two scrapes of every account",
                lambda: (
                    True
                    if server.query("min(count_over_time(fedimeter_account_followers[1m])) >= 2")
                    else None
                ),
            )
            server.until(
                "the exporter's old names",
                lambda: True if server.query("mastodon_user_count") else None,
            )
            empty = [
                (where, expr) for where, expr in _expressions() if not server.query(_as_sent(expr))
            ]
            listed = {}
            for name in DASHBOARD_VARIABLES:
                metric, label = _label_values(_variable(name))
                answer = server.http.get(
                    f"/api/v1/label/{label}/values", params={"match[]": metric}
                )
                listed[name] = set(answer.json()["data"])
    assert empty == []
    assert listed == {
        "instance": {social.web_domain},
        "account": {account.acct for account in social.accounts},
    }
