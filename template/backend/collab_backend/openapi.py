"""The OpenAPI document lists every error each operation can answer, with its code and the envelope.

Routes name the codes that their services raise (`answers(...)` in the decorator); the rest
follows from what the operation is, and is added here so no route has to repeat it:

- every operation: `MALFORMED_REQUEST` (a broken HTTP request) and `INTERNAL`;
- one with parameters or a body: `VALIDATION_FAILED`; with a body also `NOT_UTF8` and
  `BODY_TOO_LARGE`;
- one that takes a token: `UNAUTHENTICATED` and `ROLE_LOOKUP_FAILED`;
- one that writes (not GET): `STORAGE_UNAVAILABLE` and `STORAGE_DENIED`.

A test holds the document to what the API answers in the whole backend suite.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from collab_backend.errors import CODES

CODES_KEY = "x-error-codes"
ALWAYS = ("MALFORMED_REQUEST", "INTERNAL")
WITH_INPUT = ("VALIDATION_FAILED",)
WITH_BODY = ("NOT_UTF8", "BODY_TOO_LARGE")
WITH_TOKEN = ("UNAUTHENTICATED", "ROLE_LOOKUP_FAILED")
WRITING = ("STORAGE_UNAVAILABLE", "STORAGE_DENIED")


class ErrorDetail(BaseModel):
    code: str
    message: str
    hint: str | None


class ErrorEnvelope(BaseModel):
    """The one shape of every error."""

    error: ErrorDetail


def answers(*codes: str, unchanged: str | None = None, model: Any = None) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the error codes its service may answer, by status.

    `unchanged` describes the 200 of a route whose success is a 201 when it wrote and a 200
    when what was asked already held (`model` is its shape, when the route declares one).
    """
    by_status: defaultdict[int | str, list[str]] = defaultdict(list)
    for code in codes:
        by_status[CODES[code][0]].append(code)  # an unknown code fails here, at import
    out: dict[int | str, dict[str, Any]] = {
        status: {"description": "error", CODES_KEY: found} for status, found in by_status.items()
    }
    if unchanged is not None:
        out[200] = {"description": unchanged, **({"model": model} if model is not None else {})}
    return out


def _codes(method: str, operation: dict[str, Any]) -> set[str]:
    codes = set(ALWAYS)
    for response in operation.get("responses", {}).values():
        codes.update(response.get(CODES_KEY, ()))
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        codes.update(WITH_INPUT)
    if "requestBody" in operation:
        codes.update(WITH_BODY)
    if any(p.get("in") == "header" and p.get("name", "").lower() == "authorization" for p in parameters):
        codes.update(WITH_TOKEN)
    if method != "get":
        codes.update(WRITING)
    return codes


def _describe(document: dict[str, Any]) -> None:
    document.setdefault("components", {}).setdefault("schemas", {}).update(
        {
            "ErrorEnvelope": ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}"),
            "ErrorDetail": ErrorDetail.model_json_schema(),
        }
    )
    document["components"]["schemas"]["ErrorEnvelope"].pop("$defs", None)
    for schema in ("HTTPValidationError", "ValidationError"):  # the framework's shape: never answered
        document["components"]["schemas"].pop(schema, None)
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            codes = _codes(method, operation)
            responses = operation.setdefault("responses", {})
            for status in list(responses):
                if not str(status).startswith("2"):
                    del responses[status]
            by_status: defaultdict[int, list[str]] = defaultdict(list)
            for code in sorted(codes):
                by_status[CODES[code][0]].append(code)
            for status, found in sorted(by_status.items()):
                responses[str(status)] = {
                    "description": "; ".join(f"`{c}`: {CODES[c][1]}" for c in found),
                    "content": envelope,
                    CODES_KEY: found,
                }


def document_errors(app: FastAPI) -> None:
    """Make `app.openapi()` list each operation's error statuses, codes and the envelope."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _describe(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
