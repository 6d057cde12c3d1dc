"""What every response carries and what every form must prove.

- Headers on every response (pages, fragments, JSON, static files, errors): a strict
  Content-Security-Policy (scripts, styles, images and requests from this origin only; no inline
  script or style; no plug-ins; forms post here only; `frame-ancestors` the Hub's Space page on a
  Space, nobody locally), `X-Content-Type-Options: nosniff`, a same-origin referrer policy,
  cross-origin isolation of the window, and `no-store` (pages can hold a person's name and forms).
- Every form carries the session's CSRF token and is refused without it; a request whose
  `Origin` names another site is refused as well.
- A redirect target after sign-in or sign-out is a path of this site, or `/`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HUB_FRAME_ANCESTORS = "https://huggingface.co"


def content_security_policy(frame_ancestors: str, image_origins: tuple[str, ...] = ()) -> str:
    """The policy of every response; `image_origins` may add the organizers' logo host."""
    images = " ".join(("'self'", *image_origins))
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self'",
            "font-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
            f"frame-ancestors {frame_ancestors}",
        )
    )


class SecurityHeaders:
    """Add the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, policy: str, *, secure: bool) -> None:
        self.app = app
        headers = {
            b"content-security-policy": policy.encode(),
            b"x-content-type-options": b"nosniff",
            b"referrer-policy": b"same-origin",
            b"cross-origin-opener-policy": b"same-origin",
            b"cross-origin-resource-policy": b"same-origin",
            b"permissions-policy": b"camera=(), microphone=(), geolocation=(), payment=()",
        }
        if secure:
            headers[b"strict-transport-security"] = b"max-age=31536000"
        self.headers = list(headers.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if not static and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def safe_next(target: str | None) -> str:
    """A redirect target that cannot leave the site: a path of this site, else `/`."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def same_token(expected: str, given: str | None) -> bool:
    """Compare a CSRF token in constant time."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def foreign_origin(origin: str | None, host: str | None) -> bool:
    """Whether a request's `Origin` names another site than the `Host` it was sent to."""
    if not origin or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc.lower() != (host or "").lower()
