"""Every route that changes data is guarded: found by walking the app, not by a list to keep.

A write route added later without the guard fails here. The API's writes need the API token
(401 without it, or with a wrong one, before any body is read); the dashboard's forms need a
signed-in session (a sign-in redirect otherwise) and a CSRF token.
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from apihelpers import REMOTE, api, api_settings
from fedimeter.api import create_app
from fedimeter.config import Settings
from fedimeter.web import pages

TOKEN = "t0ken-for-the-write-route-test"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
#: Writes of the dashboard that are its sign-in itself.
SIGN_IN = {"/login", "/logout"}


def _api_writes(settings: Settings) -> list[tuple[str, str]]:
    """(method, path) of every write in the app's OpenAPI: the API's and mastodon-meter's."""
    spec = create_app(settings, schedule=False).openapi()
    return [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method.upper() in WRITES
    ]


def _page_writes() -> list[tuple[str, str]]:
    """(method, path) of every form post of the dashboard (kept out of the OpenAPI)."""
    return [
        (method, route.path)
        for route in pages.router.routes
        if isinstance(route, APIRoute)
        for method in sorted((route.methods or set()) & WRITES)
    ]


def _concrete(path: str) -> str:
    """The path with every parameter filled in (a number fits them all)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def test_the_walk_finds_the_write_routes(settings: Settings) -> None:
    """The API's, mastodon-meter's and the dashboard's writes are all found."""
    api_paths = {path for _, path in _api_writes(api_settings(settings, api_token=TOKEN))}
    assert {"/api/v1/accounts", "/api/v1/accounts/{account_id}", "/api/v1/runs"} <= api_paths
    assert any(not path.startswith("/api/v1/") for path in api_paths)  # mastodon-meter's
    assert len(api_paths) >= 7
    assert {"/runs", "/manage/add", "/login"} <= {path for _, path in _page_writes()}


def test_every_api_write_needs_the_api_token(settings: Settings) -> None:
    """Each API write answers 401 without the token or with a wrong one, before any body."""
    secured = api_settings(settings, api_token=TOKEN)
    with api(secured, client=REMOTE) as http:
        for method, path in _api_writes(secured):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                answer = http.request(method, _concrete(path), headers=headers, json={})
                assert answer.status_code == 401, (method, path, headers, answer.text)


def test_every_dashboard_write_needs_a_session(settings: Settings) -> None:
    """Each form post without a signed-in session is sent to sign in and changes nothing."""
    secured = api_settings(settings, api_token=TOKEN)
    with api(secured, client=REMOTE) as http:
        for method, path in _page_writes():
            if path in SIGN_IN:
                continue
            answer = http.request(
                method,
                _concrete(path),
                data={"csrf": "x", "handles": "@someone@example.org"},
                follow_redirects=False,
            )
            assert answer.status_code in {303, 401, 403}, (method, path, answer.status_code)
            if answer.status_code == 303:
                assert answer.headers["location"].startswith("/login"), (method, path)
        assert http.get("/api/v1/accounts").json()["items"] == []
        assert http.get("/api/v1/runs").json() == []
