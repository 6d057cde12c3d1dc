"""Hugging Face OAuth, end to end against a scripted OpenID provider on loopback.

The provider checks what the Hub checks (client secret, PKCE verifier, redirect URI, one use per
code) and issues an access token the local backend knows, so the whole chain runs: consent,
callback, the token kept server-side, a post made with it through the backend.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from dashboard_world import TOKENS, Collab, Served
from fastapi import FastAPI, Form, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse

from collab_dashboard.config import Settings
from collab_dashboard.main import create_app

CLIENT_ID, CLIENT_SECRET, HOST = "client-123", "secret-456", "acme-fast-dashboard.hf.space"


class Provider:
    """A scripted OpenID provider: one user, codes usable once, PKCE checked."""

    def __init__(self, user: str, orgs: list[dict[str, str]], access_token: str) -> None:
        self.user, self.orgs, self.access_token = user, orgs, access_token
        self.codes: dict[str, dict[str, str]] = {}
        self.authorize_params: list[dict[str, str]] = []
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def configuration() -> dict[str, str]:
            base = self.served.url
            return {
                "issuer": base,
                "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}/oauth/token",
                "userinfo_endpoint": f"{base}/oauth/userinfo",
            }

        @app.get("/oauth/authorize")
        def authorize(request: Request) -> RedirectResponse:
            params = dict(request.query_params)
            self.authorize_params.append(params)
            code = secrets.token_urlsafe(8)
            self.codes[code] = params
            query = urlencode({"code": code, "state": params["state"]})
            return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

        @app.post("/oauth/token")
        def token(
            code: str = Form(),
            code_verifier: str = Form(),
            redirect_uri: str = Form(),
            authorization: str = Header(""),
        ) -> Any:
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            asked = self.codes.pop(code, None)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
            if authorization != expected or asked is None or asked["code_challenge"] != challenge:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            if redirect_uri != asked["redirect_uri"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return {"access_token": self.access_token, "token_type": "bearer", "expires_in": 3600}

        @app.get("/oauth/userinfo")
        def userinfo(authorization: str = Header("")) -> Any:
            if authorization != f"Bearer {self.access_token}":
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            return {"sub": "1", "preferred_username": self.user, "orgs": self.orgs}

        self.served = Served(app)


@pytest.fixture
def hub_mode(tmp_path: Path) -> Iterator[tuple[Collab, Provider, Served]]:
    collab = Collab(tmp_path)
    provider = Provider("alice", [{"preferred_username": "acme", "roleInOrg": "contributor"}], TOKENS["alice"][0])
    settings = Settings(
        spec=collab.document,
        backend_url=collab.backend.url,
        sign_in="hub",
        oauth_client_id=CLIENT_ID,
        oauth_client_secret=CLIENT_SECRET,
        openid_provider_url=provider.served.url,
        space_host=HOST,
    )
    dashboard = Served(create_app(settings))
    try:
        yield collab, provider, dashboard
    finally:
        dashboard.stop()
        provider.served.stop()
        collab.close()


class Browser:
    """Just enough of a browser over plain HTTP: it keeps the dashboard's `Secure` cookie by hand."""

    def __init__(self, dashboard: Served) -> None:
        self.client = httpx.Client(base_url=dashboard.url, timeout=30)
        self.cookie = ""

    def go(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        response = self.client.request(method, url, headers=headers, **kwargs)
        set_cookie = response.headers.get("set-cookie")
        if set_cookie:
            self.cookie = set_cookie.split(";", 1)[0]
        return response


def consent(browser: Browser, next_path: str = "/board") -> tuple[str, httpx.Response]:
    """Start signing in and let the provider send the browser back; returns the callback's path."""
    start = browser.go("GET", "/login", params={"next": next_path})
    assert start.status_code == 303
    back = httpx.get(start.headers["location"], follow_redirects=False)
    callback = urlsplit(back.headers["location"])
    assert callback.netloc == HOST and callback.path == "/login/callback"
    return f"{callback.path}?{callback.query}", start


def test_oauth_signs_in_with_pkce_and_keeps_the_token_on_the_server(hub_mode: tuple[Collab, Provider, Served]) -> None:
    collab, provider, dashboard = hub_mode
    browser = Browser(dashboard)
    callback, start = consent(browser)
    asked = provider.authorize_params[-1]
    assert asked["code_challenge_method"] == "S256" and asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == f"https://{HOST}/login/callback" and "openid" in asked["scope"]
    assert start.headers["set-cookie"].startswith("__Host-collab_session=")
    assert "Secure" in start.headers["set-cookie"] and "HttpOnly" in start.headers["set-cookie"]
    done = browser.go("GET", callback)
    assert done.status_code == 303 and done.headers["location"] == "/board"
    assert TOKENS["alice"][0] not in done.headers["set-cookie"]
    board = browser.go("GET", "/board")
    assert "Signed in as <strong>alice</strong>" in board.text and TOKENS["alice"][0] not in board.text
    csp = board.headers["content-security-policy"]
    assert "frame-ancestors https://huggingface.co" in csp and board.headers["strict-transport-security"]
    csrf = board.text.split('name="csrf" value="')[1].split('"')[0]
    posted = browser.go(
        "POST", "/post", data={"csrf": csrf, "body": "signed in with the Hub", "channel": "general", "next": "/board"}
    )
    assert posted.status_code == 303
    [message] = collab.api.get("/v1/messages").json()["items"]
    assert message["author"] == "human-alice" and message["body"] == "signed in with the Hub"


def test_a_callback_with_another_state_or_replayed_is_refused(hub_mode: tuple[Collab, Provider, Served]) -> None:
    _, _, dashboard = hub_mode
    browser = Browser(dashboard)
    callback, _ = consent(browser)
    query = parse_qs(urlsplit(callback).query)
    forged = browser.go("GET", "/login/callback", params={"code": query["code"][0], "state": "someone-elses"})
    assert forged.status_code == 400 and "not started here" in forged.text
    replayed = browser.go("GET", callback)  # the state was used up by the refused attempt
    assert replayed.status_code == 400
    stranger = Browser(dashboard)  # a callback without the session that started it
    assert stranger.go("GET", callback).status_code == 400
    assert "Signed in" not in browser.go("GET", "/").text


def test_a_refused_code_exchange_signs_nobody_in(hub_mode: tuple[Collab, Provider, Served]) -> None:
    _, provider, dashboard = hub_mode
    browser = Browser(dashboard)
    callback, _ = consent(browser)
    provider.codes.clear()  # the provider no longer knows the code (expired, used)
    refused = browser.go("GET", callback)
    assert refused.status_code == 400 and "could not be completed" in refused.text


def test_the_redirect_target_stays_on_the_site(hub_mode: tuple[Collab, Provider, Served]) -> None:
    _, _, dashboard = hub_mode
    browser = Browser(dashboard)
    callback, _ = consent(browser, "https://evil.example/")
    assert browser.go("GET", callback).headers["location"] == "/"


def test_hub_mode_needs_the_spaces_oauth_variables(tmp_path: Path) -> None:
    from dashboard_world import spec_document

    with pytest.raises(ValueError, match="hf_oauth: true"):
        Settings(spec=spec_document(), sign_in="hub")
