"""``/api/v1`` and the health checks, against the simulated fediverse, on both backends."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from apihelpers import LOCAL, REMOTE, api, api_settings
from fedimeter.config import Settings
from fedimeter.simfedi import Fault, SimFediverse
from fedimeter.storage.database import Database

TOKEN = "t0ken-for-the-tests-0123456789"
READ_TOKEN = "read-t0ken-for-the-tests-98765"


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """Two simulated servers, served from a thread."""
    sim = SimFediverse(seed=31)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    for name, followers in [("alice", 100), ("bob", 20), ("carol", 3), ("dan", 4), ("erin", 5)]:
        social.add_account(name, followers=followers, followers_per_day=10, statuses_per_day=2)
    sim.add_instance("broken", version="4.3.0", rate_limit=None).faults.append(
        Fault(kind="status", status=503)
    )
    with sim.run_in_thread():
        yield sim


def acct(world: SimFediverse, name: str) -> str:
    """The handle of a simulated account on the social server."""
    return f"@{world.instance('social').account(name).acct}"


def test_create_tracks_and_answers_201_with_location(
    settings: Settings, world: SimFediverse
) -> None:
    """POST /accounts resolves the handle, stores it and points to it."""
    with api(api_settings(settings)) as http:
        answer = http.post("/api/v1/accounts", json={"handle": acct(world, "alice")})
        assert answer.status_code == 201
        body = answer.json()
        assert body["handle"] == acct(world, "alice")
        assert body["remote_id"] == world.instance("social").account("alice").id
        assert body["state"] == "active"
        assert body["latest"] is None
        assert answer.headers["location"] == f"/api/v1/accounts/{body['id']}"
        assert http.get(answer.headers["location"]).json()["id"] == body["id"]


@pytest.mark.parametrize(
    ("handle", "status", "code"),
    [
        ("not a handle", 422, "invalid_handle"),
        ("nobody@{social}", 404, "not_found"),
        ("someone@{broken}", 502, "unavailable"),
    ],
)
def test_create_errors_have_their_status(
    settings: Settings, world: SimFediverse, handle: str, status: int, code: str
) -> None:
    """Invalid 422, unknown on its server 404, a failing server 502; JSON with detail and code."""
    quick = api_settings(settings, max_retries=0)
    domains = {"social": world.instance("social").domain, "broken": world.instance("broken").domain}
    with api(quick) as http:
        answer = http.post("/api/v1/accounts", json={"handle": handle.format(**domains)})
    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert answer.json()["detail"]


def test_create_twice_is_409(settings: Settings, world: SimFediverse) -> None:
    """A duplicate add is a conflict and stores nothing twice."""
    with api(api_settings(settings)) as http:
        assert (
            http.post("/api/v1/accounts", json={"handle": acct(world, "alice")}).status_code == 201
        )
        again = http.post("/api/v1/accounts", json={"handle": acct(world, "alice").upper()})
        assert again.status_code == 409
        assert again.json()["code"] == "already_tracked"
        assert http.get("/api/v1/accounts").json()["total"] == 1


def test_create_refuses_private_addresses_by_default(
    settings: Settings, world: SimFediverse
) -> None:
    """Without allow_private_addresses a loopback server is refused with 422."""
    with api(api_settings(settings, allow_private_addresses=False)) as http:
        answer = http.post("/api/v1/accounts", json={"handle": acct(world, "alice")})
    assert answer.status_code == 422
    assert "allow_private_addresses" in answer.json()["detail"]


@pytest.mark.parametrize("body", [{}, {"handle": ""}, {"handle": "a@b.c", "extra": 1}, [1]])
def test_create_with_a_bad_body_is_422(settings: Settings, body: object) -> None:
    """Missing, empty or unexpected fields are refused, never a 500."""
    with api(api_settings(settings)) as http:
        assert http.post("/api/v1/accounts", json=body).status_code == 422


def test_list_pages_through_accounts_by_handle(settings: Settings, world: SimFediverse) -> None:
    """limit and offset page the list; total counts them all."""
    names = ["erin", "alice", "dan", "bob", "carol"]
    with api(api_settings(settings)) as http:
        for name in names:
            assert (
                http.post("/api/v1/accounts", json={"handle": acct(world, name)}).status_code == 201
            )
        page = http.get("/api/v1/accounts", params={"limit": 2, "offset": 2}).json()
        assert page["total"] == 5
        assert (page["limit"], page["offset"]) == (2, 2)
        assert [a["acct"].split("@")[0] for a in page["items"]] == ["carol", "dan"]
        assert http.get("/api/v1/accounts", params={"limit": 0}).status_code == 422
        assert http.get("/api/v1/accounts", params={"state": "nonsense"}).status_code == 422
        assert http.get("/api/v1/accounts", params={"state": "gone"}).json()["total"] == 0


def _run_round(http: object) -> dict[str, object]:
    """Start a round through the API and wait for it to end."""
    post = getattr(http, "post")  # noqa: B009 - keeps the helper free of test-client types
    run = post("/api/v1/runs").json()
    return _wait_for_round(http, run["id"])


def _wait_for_round(http: object, run_id: int) -> dict[str, object]:
    """Wait until round ``run_id`` is no longer running; what it became."""
    get = getattr(http, "get")  # noqa: B009
    for _ in range(500):
        current = get(f"/api/v1/runs/{run_id}").json()
        if current["status"] != "running":
            return dict(current)
        time.sleep(0.01)
    raise AssertionError("the round did not finish")


def test_a_round_asked_for_while_the_last_one_checks_its_alerts_is_a_new_one(
    settings: Settings, world: SimFediverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last round is recorded finished, its alerts still being checked: a new one starts.

    Answering with the finished round (it was still the manager's task) skipped a day's
    samples when a script started a round as soon as the last one showed finished.
    """
    checking = asyncio.Event()

    async def slow_alerts(*_args: object, **_kwargs: object) -> None:
        checking.set()
        await asyncio.sleep(0.5)

    monkeypatch.setattr("fedimeter.rounds.alerts_after_round", slow_alerts)
    with api(api_settings(settings), clock=lambda: world.now) as http:
        account = http.post("/api/v1/accounts", json={"handle": acct(world, "bob")}).json()
        first = _run_round(http)
        world.advance(days=1)
        second = http.post("/api/v1/runs").json()
        assert checking.is_set()
        assert second["id"] == int(str(first["id"])) + 1
        done = _wait_for_round(http, second["id"])
        samples = http.get(f"/api/v1/accounts/{account['id']}/samples").json()["samples"]
    assert (first["status"], done["status"]) == ("finished", "finished")
    assert done["accounts_measured"] == 1
    assert len(samples) == 2


def test_account_detail_gives_1_7_30_day_changes(settings: Settings, world: SimFediverse) -> None:
    """Deltas compare the latest sample with the one 1 and 7 days before; 30 days: too short."""
    with api(api_settings(settings), clock=lambda: world.now) as http:
        account = http.post("/api/v1/accounts", json={"handle": acct(world, "alice")}).json()
        for days in (0, 6, 1):  # samples on day 0, 6 and 7
            world.advance(days=days)
            assert _run_round(http)["status"] == "finished"
        detail = http.get(f"/api/v1/accounts/{account['id']}").json()
    assert detail["latest"]["followers"] == 170
    assert detail["change_1d"] == {"followers": 10, "following": 0, "statuses": 2}
    assert detail["change_7d"] == {"followers": 70, "following": 0, "statuses": 14}
    assert detail["change_30d"] is None


def test_unknown_account_is_404(settings: Settings) -> None:
    """Every per-account route answers 404 for an id nobody has."""
    with api(api_settings(settings)) as http:
        for answer in (
            http.get("/api/v1/accounts/999"),
            http.get("/api/v1/accounts/999/samples"),
            http.delete("/api/v1/accounts/999"),
        ):
            assert answer.status_code == 404
            assert answer.json()["code"] == "not_tracked"
        assert http.get("/api/v1/accounts/not-a-number").status_code == 422


def test_samples_as_json_and_csv_within_a_period(settings: Settings, world: SimFediverse) -> None:
    """since/until bound the samples; format=csv gives a CSV download."""
    with api(api_settings(settings), clock=lambda: world.now) as http:
        account = http.post("/api/v1/accounts", json={"handle": acct(world, "bob")}).json()
        for _ in range(3):
            _run_round(http)
            world.advance(days=1)
        path = f"/api/v1/accounts/{account['id']}/samples"
        every = http.get(path).json()
        assert [s["followers"] for s in every["samples"]] == [20, 30, 40]
        day_two = http.get(path, params={"since": "2026-01-06", "until": "2026-01-06"}).json()
        assert [s["followers"] for s in day_two["samples"]] == [30]
        assert day_two["since"] == "2026-01-06T00:00:00Z"
        as_csv = http.get(path, params={"format": "csv", "since": "2026-01-06T00:00:00Z"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in as_csv.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(as_csv.text)))
        assert rows[0] == ["taken_at", "followers", "following", "statuses", "last_status_at"]
        assert [r[1] for r in rows[1:]] == ["30", "40"]
        assert http.get(path, params={"since": "soon"}).status_code == 422
        backwards = http.get(path, params={"since": "2026-02-01", "until": "2026-01-01"})
        assert backwards.status_code == 422
        assert http.get(path, params={"format": "xml"}).status_code == 422


def test_delete_keeps_history_unless_purged(settings: Settings, world: SimFediverse) -> None:
    """DELETE untracks and keeps samples; purge=true removes everything."""
    with api(api_settings(settings)) as http:
        account = http.post("/api/v1/accounts", json={"handle": acct(world, "carol")}).json()
        _run_round(http)
        path = f"/api/v1/accounts/{account['id']}"
        assert http.delete(path).status_code == 204
        assert http.get("/api/v1/accounts").json()["total"] == 0
        assert http.get(path).json()["state"] == "untracked"
        assert len(http.get(f"{path}/samples").json()["samples"]) == 1
        assert http.delete(path, params={"purge": "true"}).status_code == 204
        assert http.get(path).status_code == 404


def test_a_second_start_while_running_answers_the_running_round(
    settings: Settings, world: SimFediverse
) -> None:
    """POST /runs twice during one round gives the same run, 202 both times."""
    world.instance("social").latency = (0.2, 0.2)
    with api(api_settings(settings, per_host_concurrency=1)) as http:
        for name in ("alice", "bob", "carol"):
            http.post("/api/v1/accounts", json={"handle": acct(world, name)})
        first = http.post("/api/v1/runs")
        second = http.post("/api/v1/runs")
        assert (first.status_code, second.status_code) == (202, 202)
        assert first.json()["id"] == second.json()["id"]
        assert first.json()["status"] == "running"
        for _ in range(500):
            runs = http.get("/api/v1/runs").json()
            if runs[0]["status"] != "running":
                break
            time.sleep(0.02)
    assert [r["status"] for r in runs] == ["finished"]
    assert runs[0]["accounts_measured"] == 3


def test_runs_list_and_detail_with_failures(settings: Settings, world: SimFediverse) -> None:
    """GET /runs lists rounds newest first; GET /runs/{id} names each failure."""
    with api(api_settings(settings, max_retries=0), clock=lambda: world.now) as http:
        http.post("/api/v1/accounts", json={"handle": acct(world, "alice")})
        # The batch call and then the account's own call answer an HTML page, once each.
        social = world.instance("social")
        social.faults.append(Fault(kind="html", endpoint="batch", times=1))
        social.faults.append(Fault(kind="html", endpoint="account", times=1))
        first = _run_round(http)
        world.advance(hours=1)
        second = _run_round(http)
        runs = http.get("/api/v1/runs").json()
        assert [r["id"] for r in runs] == [second["id"], first["id"]]
        detail = http.get(f"/api/v1/runs/{first['id']}").json()
        assert detail["accounts_failed"] == 1
        [failure] = detail["failures"]
        assert failure["code"] == "bad_response"
        assert "HTML" in failure["reason"]
        assert http.get("/api/v1/runs/12345").status_code == 404
        assert http.get("/api/v1/runs", params={"limit": 0}).status_code == 422


def test_health_and_readiness(settings: Settings) -> None:
    """/healthz answers; /readyz says ready, then 503 once the schema is not the newest."""
    with api(api_settings(settings)) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"

        async def age_the_schema() -> None:
            db = await Database.open(settings.database_url, migrate=False)
            async with db.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
            await db.close()

        asyncio.run(age_the_schema())
        stale = http.get("/readyz")
    assert stale.status_code == 503
    assert "0000" in stale.json()["database"]


def test_openapi_and_docs_are_served(settings: Settings) -> None:
    """The OpenAPI document lists the v1 routes; /docs is the interactive page."""
    with api(api_settings(settings)) as http:
        spec = http.get("/openapi.json").json()
        assert "/api/v1/accounts" in spec["paths"]
        assert "/api/v1/runs" in spec["paths"]
        assert http.get("/docs").status_code == 200


def test_writes_need_the_token_when_one_is_set(settings: Settings, world: SimFediverse) -> None:
    """With an API token: 401 without or with a wrong one, and the call works with it."""
    secured = api_settings(settings, api_token=TOKEN)
    with api(secured, client=REMOTE) as http:
        body = {"handle": acct(world, "alice")}
        missing = http.post("/api/v1/accounts", json=body)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = http.post("/api/v1/accounts", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert http.post("/api/v1/accounts", json=body, headers=good).status_code == 201
        assert http.post("/api/v1/runs").status_code == 401
        assert http.delete("/api/v1/accounts/1").status_code == 401
        assert http.get("/api/v1/accounts").status_code == 200  # reads stay open


def test_without_a_token_writes_come_only_from_this_machine(
    settings: Settings, world: SimFediverse
) -> None:
    """No API token: loopback clients may write, others get 403."""
    with api(api_settings(settings), client=REMOTE) as http:
        refused = http.post("/api/v1/accounts", json={"handle": acct(world, "alice")})
        assert refused.status_code == 403
        assert "FEDIMETER_API_TOKEN" in refused.json()["detail"]
    with api(api_settings(settings), client=LOCAL) as http:
        assert (
            http.post("/api/v1/accounts", json={"handle": acct(world, "alice")}).status_code == 201
        )


def test_a_read_token_closes_reads(settings: Settings) -> None:
    """With a read token, reads need it (or the API token); health stays open."""
    secured = api_settings(settings, api_token=TOKEN, read_token=READ_TOKEN)
    with api(secured, client=REMOTE) as http:
        assert http.get("/api/v1/accounts").status_code == 401
        assert http.get("/api/v1/runs").status_code == 401
        for token in (READ_TOKEN, TOKEN):
            answer = http.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200
        with_read = {"Authorization": f"Bearer {READ_TOKEN}"}
        assert http.post("/api/v1/runs", headers=with_read).status_code == 401
        assert http.get("/healthz").status_code == 200


def test_tokens_never_reach_the_logs(
    settings: Settings, world: SimFediverse, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a right nor a wrong token appears in any log record."""
    caplog.set_level(logging.DEBUG)
    secured = api_settings(settings, api_token=TOKEN)
    with api(secured, client=REMOTE) as http:
        http.post("/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"})
        http.post("/api/v1/runs", headers={"Authorization": "Bearer wrong-guess-123456"})
        http.post(
            "/api/v1/accounts",
            json={"handle": acct(world, "bob")},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # the server did log something
    assert TOKEN not in logged
    assert "wrong-guess-123456" not in logged


def test_report_over_a_period_in_every_format(settings: Settings, world: SimFediverse) -> None:
    """GET /report computes the change over the period; text, Markdown and CSV on request."""
    with api(api_settings(settings), clock=lambda: world.now) as http:
        for name in ("alice", "bob"):
            http.post("/api/v1/accounts", json={"handle": acct(world, name)})
        for _ in range(3):
            _run_round(http)
            world.advance(days=1)
        report = http.get("/api/v1/report", params={"period": "3d"}).json()
        lines = {line["handle"].split("@")[0]: line for line in report["accounts"]}
        assert lines["alice"]["followers"]["current"] == 120
        assert lines["alice"]["followers"]["change"] == 20
        assert [line["handle"].split("@")[0] for line in report["accounts"]] == ["alice", "bob"]
        text = http.get("/api/v1/report", params={"period": "3d", "format": "text"})
        assert text.headers["content-type"].startswith("text/plain")
        assert "120 (+20, +20.0%) followers" in text.text
        md = http.get("/api/v1/report", params={"period": "3d", "format": "markdown"})
        assert md.text.startswith("# fedimeter report")
        csv_answer = http.get("/api/v1/report", params={"format": "csv", "account_id": 1})
        assert csv_answer.text.count("\n") == 2  # header and one account
        assert http.get("/api/v1/report", params={"period": "soon"}).status_code == 422
        assert http.get("/api/v1/report", params={"account_id": 999}).status_code == 404


def test_graph_png_and_svg(settings: Settings, world: SimFediverse) -> None:
    """graph.png and graph.svg draw the account; bad options are 422, unknown accounts 404."""
    with api(api_settings(settings), clock=lambda: world.now) as http:
        account = http.post("/api/v1/accounts", json={"handle": acct(world, "alice")}).json()
        for _ in range(3):
            _run_round(http)
            world.advance(days=1)
        path = f"/api/v1/accounts/{account['id']}"
        png = http.get(f"{path}/graph.png", params={"metric": "combined", "scale": 2})
        assert png.status_code == 200
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = (
            int.from_bytes(png.content[16:20], "big"),
            int.from_bytes(png.content[20:24], "big"),
        )
        assert (width, height) == (2000, 1000)
        svg = http.get(f"{path}/graph.svg", params={"theme": "dark", "since": "2026-01-05"})
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in svg.content
        assert http.get(f"{path}/graph.gif").status_code == 422
        assert http.get(f"{path}/graph.png", params={"metric": "likes"}).status_code == 422
        assert http.get(f"{path}/graph.png", params={"width": 5}).status_code == 422
        assert (
            http.get(
                f"{path}/graph.png", params={"since": "2030-01-01", "until": "2029-01-01"}
            ).status_code
            == 422
        )
        assert http.get("/api/v1/accounts/999/graph.png").status_code == 404
