"""The only module that talks to the backend: its public API over HTTP, nothing else.

Reads carry no credentials. A write (a person's post, an organizer's verdict) carries the signed-in
person's own token, taken from their server-side session, so the backend checks them exactly as
it checks anyone: org membership for posts, admin role for broadcasts and verdicts. The dashboard
itself holds no token and never touches a bucket.
"""

from __future__ import annotations

from typing import Any

import httpx


class BackendError(Exception):
    """The backend refused or failed a request; `code`, `message` and `hint` are its envelope's."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.hint = status, code, message, hint


class Backend:
    """A thin client of the backend's API (`/v1/...`) over one pooled HTTP connection set."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str, **params: Any) -> Any:
        """GET a JSON document; parameters that are None are left out."""
        query = {k: v for k, v in params.items() if v is not None}
        return await self._send("GET", path, params=query)

    async def send(self, method: str, path: str, token: str, body: dict[str, Any]) -> Any:
        """A write as the signed-in person (their token, never one of the dashboard's)."""
        return await self._send(method, path, json=body, headers={"Authorization": f"Bearer {token}"})

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise BackendError(503, "BACKEND_TIMEOUT", "the backend did not answer in time", "retry shortly") from None
        except httpx.TransportError:
            raise BackendError(503, "BACKEND_UNREACHABLE", "the backend cannot be reached", "retry shortly") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            error = data.get("error") if isinstance(data, dict) else None
            if not isinstance(error, dict):
                raise BackendError(502, "BACKEND_FAILED", f"the backend answered {response.status_code}", None)
            raise BackendError(
                response.status_code, str(error.get("code")), str(error.get("message")), error.get("hint")
            )
        return data
