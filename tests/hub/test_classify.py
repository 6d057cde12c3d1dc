"""`classify`: every shape a huggingface_hub call fails in, read one way; anything else is a bug."""

from __future__ import annotations

import httpx2
import pytest
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from hypothesis import given
from hypothesis import strategies as st

from collab_testing.hub import bucket_not_found, http_error, job_not_found, space_not_found, xet_error
from provision.hub.failures import classify

REQUEST = httpx2.Request("GET", "http://127.0.0.1/api/buckets/acme/main")


@pytest.mark.parametrize(
    ("exc", "kind", "status"),
    [
        (bucket_not_found("acme/main"), "not_found", 404),
        (space_not_found("acme/app"), "not_found", 404),
        (job_not_found("acme", "j1"), "not_found", 404),
        (http_error(401, "no"), "denied", 401),
        (http_error(403, "no"), "denied", 403),
        (http_error(404, "no"), "not_found", 404),
        (http_error(409, "no"), "rejected", 409),
        (http_error(422, "no"), "rejected", 422),
        (http_error(429, "slow down"), "unavailable", 429),
        (http_error(502, "bad gateway"), "unavailable", 502),
        (httpx2.ConnectError("refused", request=REQUEST), "unavailable", None),
        (httpx2.ReadTimeout("slow", request=REQUEST), "unavailable", None),
        (httpx2.RemoteProtocolError("cut", request=REQUEST), "unavailable", None),
        (xet_error(403, "http://x/xet-write-token"), "denied", 403),
        (xet_error(404, "http://x/xet-write-token"), "not_found", 404),
        (xet_error(429, "http://x/xet-write-token"), "unavailable", 429),
        (xet_error(503, "http://x/xet-write-token"), "unavailable", 503),
        (xet_error(None, "http://x/xet-write-token"), "unavailable", None),
        (OfflineModeIsEnabled("offline"), "unavailable", None),
        (TimeoutError("waited"), "unavailable", None),
        (ConnectionResetError("reset"), "unavailable", None),
    ],
)
def test_each_shape_reads_as_its_kind(exc: Exception, kind: str, status: int | None) -> None:
    failure = classify(exc)
    assert failure is not None and (failure.kind, failure.status) == (kind, status)
    assert failure.detail and "\n" not in failure.detail


@pytest.mark.parametrize("exc", [KeyError("k"), ValueError("v"), TypeError("t"), RuntimeError("r")])
def test_a_bug_is_not_a_hub_failure(exc: Exception) -> None:
    assert classify(exc) is None


def test_retry_after_is_read_from_a_rate_limit() -> None:
    response = httpx2.Response(429, request=REQUEST, headers={"Retry-After": "12"})
    failure = classify(HfHubHTTPError("slow down", response=response))
    assert failure is not None and failure.retry_after == 12 and failure.retryable


@given(st.text(max_size=300))
def test_any_connection_error_message_reads_as_a_kind_and_a_status_it_names(message: str) -> None:
    failure = classify(ConnectionError(message))
    assert failure is not None and failure.kind in ("not_found", "denied", "unavailable", "rejected")
    assert failure.status is None or str(failure.status) in message
    assert len(failure.detail) <= 300
