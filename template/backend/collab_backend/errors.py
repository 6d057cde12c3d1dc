"""Every error the API returns, in one envelope: `{"error": {"code", "message", "hint"}}`.

Codes are stable SCREAMING_SNAKE names (listed with their statuses in backend/DESIGN.md; a test
keeps the two in step). Handlers below turn framework errors (validation, unknown routes, wrong
methods) and unexpected exceptions into the same envelope, so a client never sees another shape
and never sees a traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from collab_backend.storage import AccessDenied, InvalidPath, StorageError, TooLarge, Unavailable

log = logging.getLogger("collab_backend")

# code -> (HTTP status, what it means). The single list of codes.
CODES: dict[str, tuple[int, str]] = {
    "VALIDATION_FAILED": (422, "the request's body, query or path does not match the API"),
    "INVALID_PATH": (422, "a path-like field is not a safe relative path"),
    "BODY_TOO_LARGE": (413, "the request body is larger than the collab allows"),
    "NOT_UTF8": (400, "text must be UTF-8 (a lone surrogate, half of a UTF-16 pair, is not)"),
    "MALFORMED_REQUEST": (400, "the HTTP request itself is malformed (e.g. its Content-Length)"),
    "UNAUTHENTICATED": (401, "no token, or the Hub does not know the token"),
    "FORBIDDEN": (403, "the token's user may not do this"),
    "NOT_FOUND": (404, "the thing named does not exist"),
    "ROUTE_NOT_FOUND": (404, "no such endpoint"),
    "METHOD_NOT_ALLOWED": (405, "the endpoint exists but not with this method"),
    "AGENT_ID_INVALID": (422, "agent ids are 3-40 lowercase letters, digits and '-', starting with a letter"),
    "AGENT_ID_RESERVED": (422, "`human` and `human-*` handles belong to people"),
    "AGENT_TAKEN": (409, "the agent id is bound to another Hugging Face user"),
    "AGENT_NOT_REGISTERED": (403, "the agent id is not registered to the token's user"),
    "SCRATCH_BUCKET_MISSING": (422, "the agent's scratch bucket does not exist"),
    "HANDSHAKE_MISSING": (422, "the scratch bucket lacks the handshake file"),
    "HANDSHAKE_MISMATCH": (422, "the handshake file names another user"),
    "NOT_ORG_MEMBER": (403, "only members of the challenge org may do this"),
    "NOT_ORGANIZER": (403, "only admins of the challenge org may do this"),
    "RATE_LIMITED": (429, "too many requests of this kind; wait for Retry-After seconds"),
    "FANOUT_EXCEEDED": (422, "the message mentions or refers to more handles than allowed"),
    "CHANNEL_UNKNOWN": (404, "no such channel"),
    "CHANNEL_EXISTS": (409, "a channel with that name exists"),
    "CHANNELS_CLOSED": (403, "agents may not create channels in this collab"),
    "THREAD_UNKNOWN": (404, "the message to reply to does not exist"),
    "SOURCE_NOT_FOUND": (422, "the file to promote is not in the agent's bucket"),
    "VERDICT_CHANGED": (409, "the verdict changed since you read it (compare-and-set)"),
    "JOBS_DISABLED": (403, "jobs are off in this collab, or this backend runs none"),
    "QUOTA_EXCEEDED": (429, "the agent's or the user's job quota for 24 h is spent; wait for Retry-After seconds"),
    "SUBMISSION_NOT_FOUND": (422, "the submission folder holds no files in the agent's bucket"),
    "JOB_UNKNOWN": (404, "no such job"),
    "JOB_NOT_USABLE": (
        422,
        "the job a result names is unknown, not its agent's, not ended, or without a valid summary",
    ),
    "FIGURE_MISMATCH": (422, "a figure typed in the result disagrees with what its job measured"),
    "RULED_OUT": (403, "the submission matches an accepted ruling of the organizers (the message names it)"),
    "PREDICATE_INVALID": (400, "a ruling's predicate is malformed or names an unknown op (the hint shows the form)"),
    "RUN_REQUEST_UNKNOWN": (404, "no such run request"),
    "LEASE_HELD": (409, "another agent holds the run request's lease; the message names it and when the lease ends"),
    "LEASE_NOT_HELD": (409, "you do not hold the run request's lease (never claimed, released, or expired)"),
    "RUN_REQUEST_CLOSED": (409, "the run request was withdrawn, or a job already runs or ran it"),
    "JOB_LAUNCH_FAILED": (503, "the job could not be started and was not charged; retry later"),
    "JOBS_UNAVAILABLE": (503, "the job runner (HF Jobs) failed or timed out; retry later"),
    "STORAGE_UNAVAILABLE": (503, "the Hub failed or timed out; retry later"),
    "STORAGE_DENIED": (503, "the backend's own token was refused by the Hub; organizers must fix it"),
    "ROLE_LOOKUP_FAILED": (503, "the user's org roles could not be read; refused rather than guessed"),
    "INTERNAL": (500, "a bug; the request id is in the logs"),
}


# A 503 says when to try again (unless the caller says otherwise); a refused backend token does
# not fix itself, so it carries none.
RETRY_AFTER_S = 5
_NO_RETRY_AFTER = frozenset({"STORAGE_DENIED"})


class APIError(Exception):
    """An error with a stable code, a message, and a hint that says how to fix it."""

    def __init__(self, code: str, message: str, hint: str | None = None, *, headers: dict[str, str] | None = None):
        if code not in CODES:
            raise ValueError(f"unknown error code {code}")
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint
        self.status = CODES[code][0]
        self.headers = dict(headers or {})
        if self.status == 503 and code not in _NO_RETRY_AFTER:
            self.headers.setdefault("Retry-After", str(RETRY_AFTER_S))


def envelope(code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    """The one shape of every error body."""
    return {"error": {"code": code, "message": message, "hint": hint}}


def _respond(error: APIError, request: Request | None = None) -> JSONResponse:
    if request is not None:
        request.state.error_code = error.code
    return JSONResponse(
        envelope(error.code, error.message, error.hint), status_code=error.status, headers=error.headers
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method the API answers on the request's path (the `Allow` header of a 405), from its OpenAPI."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Route every failure through the envelope."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return _respond(exc, request)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return _respond(APIError("VALIDATION_FAILED", "the body is not valid JSON", "send a JSON object"), request)
        detail = "; ".join(f"{_field(p.get('loc', ()))}: {p.get('msg', 'invalid')}" for p in problems[:5])
        return _respond(APIError("VALIDATION_FAILED", detail, "see /openapi.json for the request shape"), request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _respond(APIError("ROUTE_NOT_FOUND", "no such endpoint", "GET /v1 lists the endpoints"), request)
        if exc.status_code == 405:
            allowed = ", ".join(allowed_methods(app, request)) or (exc.headers or {}).get("Allow", "")
            return _respond(
                APIError(
                    "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here; allowed: {allowed}",
                    "GET /v1 lists the endpoints", headers={"Allow": allowed},
                ),
                request,
            )  # fmt: skip
        if exc.status_code == 400:  # the framework could not decode the body at all
            if isinstance(exc.__cause__, UnicodeDecodeError):
                error = APIError("NOT_UTF8", "the body could not be decoded", "send UTF-8 encoded JSON")
            else:
                error = APIError("MALFORMED_REQUEST", "the body could not be parsed", "send a JSON object")
            return _respond(error, request)
        return JSONResponse(envelope("VALIDATION_FAILED", str(exc.detail), None), status_code=exc.status_code)

    @app.exception_handler(InvalidPath)
    async def invalid_path(request: Request, exc: InvalidPath) -> JSONResponse:
        return _respond(APIError("INVALID_PATH", str(exc), "use a relative path without '..', '//' or '\\\\'"), request)

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        if isinstance(exc, TooLarge):
            return _respond(APIError("BODY_TOO_LARGE", str(exc), "share a smaller file"), request)
        if isinstance(exc, AccessDenied):
            log.error("storage access denied: %s", exc)
            return _respond(
                APIError("STORAGE_DENIED", "the backend's Hub token was refused", "organizers: check HF_TOKEN"), request
            )
        if not isinstance(exc, Unavailable):
            log.error("storage error: %s", exc)
        return _respond(APIError("STORAGE_UNAVAILABLE", "storage is unavailable", "retry in a few seconds"), request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _respond(APIError("INTERNAL", "internal error", "retry; if it persists, tell the organizers"), request)
