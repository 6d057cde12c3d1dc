"""The stateful fake fails as huggingface_hub 2.4 does, and returns the same kinds of values.

Each case drives the real library against a scripted HTTP server on 127.0.0.1 (`scripted_hub`)
and the fake (`collab_testing.hub.FakeHub`) with the matching switch or state, and compares what
they raise: the exception's class, and how the kit's one reading of failures
(`provision.hub.failures.classify`) sees it (kind and status). A bucket write that adds files goes
through hf_xet, whose token request is scripted too (`xet_probe.py`, in its own process, because
hf_xet reads its settings once per process); Xet's CAS server is not: hf_xet reaches it in Rust at
the URL the token request returns, and it cannot be scripted offline.

Only calls the library does not retry are driven into 5xx, 429 and lost connections, so that
the test waits for no backoff (the retried ones sleep 1 to 8 s between 5 tries).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import BucketUrl, HfApi
from huggingface_hub.utils._http import default_client_factory, set_client_factory
from scripted_hub import Answer, ScriptedHub, error

from collab_testing.hub import ADMIN_TOKEN, FakeHub
from provision.hub.failures import classify, install_timeouts

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUCKET = "acme/main"
TOKEN = "hf_contract_token"  # noqa: S105  # a made-up token the scripted server never checks
BAD_TOKEN = "hf_unknown_token"  # noqa: S105
READER_TOKEN = "hf_reader_token"  # noqa: S105
JOB_ANSWER = {
    "id": "job-1",
    "createdAt": "2026-01-01T00:00:00.000Z",
    "status": {"stage": "SCHEDULING", "message": None},
    "owner": {"id": "org-acme", "name": "acme", "type": "org"},
}


@pytest.fixture
def scripted() -> Iterator[ScriptedHub]:
    with ScriptedHub().running() as hub:
        yield hub


@pytest.fixture
def fake() -> FakeHub:
    hub = FakeHub()
    hub.add_user("organizer", ADMIN_TOKEN, {"acme": "admin"})
    hub.create_bucket(BUCKET, token=ADMIN_TOKEN)
    return hub


def raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("the call did not fail")


def assert_alike(real: BaseException, fake: BaseException) -> None:
    """Same class, and the kit reads both the same way."""
    assert type(fake) is type(real), (real, fake)
    real_failure, fake_failure = classify(real), classify(fake)
    assert real_failure is not None and fake_failure is not None
    assert (fake_failure.kind, fake_failure.status) == (real_failure.kind, real_failure.status)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- HTTP answers of the control plane ------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
def test_bucket_info_refused_or_failing(scripted: ScriptedHub, fake: FakeHub, status: int) -> None:
    scripted.script[("GET", f"/api/buckets/{BUCKET}")] = error(status, "no")
    real = raised(lambda: HfApi(endpoint=scripted.endpoint).bucket_info(BUCKET, token=TOKEN))
    fake.fail("bucket_info", status)
    assert_alike(real, raised(lambda: fake.bucket_info(BUCKET, token=ADMIN_TOKEN)))


def test_a_missing_bucket(scripted: ScriptedHub, fake: FakeHub) -> None:
    scripted.script[("GET", "/api/buckets/acme/gone")] = error(404, "Repository not found", code="RepoNotFound")
    real = raised(lambda: HfApi(endpoint=scripted.endpoint).bucket_info("acme/gone", token=TOKEN))
    assert_alike(real, raised(lambda: fake.bucket_info("acme/gone", token=ADMIN_TOKEN)))
    assert classify(real).kind == "not_found"  # type: ignore[union-attr]


@pytest.mark.parametrize(("method", "path"), [("get_bucket_paths_info", "paths-info"), ("list_bucket_tree", "tree")])
def test_reads_refused(scripted: ScriptedHub, fake: FakeHub, method: str, path: str) -> None:
    scripted.script[("POST" if path == "paths-info" else "GET", f"/api/buckets/{BUCKET}/{path}")] = error(403, "no")
    api = HfApi(endpoint=scripted.endpoint)
    calls: dict[str, Callable[[Any], Any]] = {
        "get_bucket_paths_info": lambda hub: list(hub.get_bucket_paths_info(BUCKET, ["a"], token=TOKEN)),
        "list_bucket_tree": lambda hub: list(hub.list_bucket_tree(BUCKET, recursive=True, token=TOKEN)),
    }
    real = raised(lambda: calls[method](api))
    fake.fail(method, 403)
    fake.add_user("x", TOKEN, {"acme": "admin"})
    assert_alike(real, raised(lambda: calls[method](fake)))


def test_a_refused_delete_is_an_http_error(scripted: ScriptedHub, fake: FakeHub) -> None:
    """Deletes and copies skip Xet: their refusal is the batch POST's HTTP answer."""
    scripted.script[("POST", f"/api/buckets/{BUCKET}/batch")] = error(403, "no")
    real = raised(lambda: HfApi(endpoint=scripted.endpoint).batch_bucket_files(BUCKET, delete=["a"], token=TOKEN))
    fake.fail("batch_bucket_files", 403)
    assert_alike(real, raised(lambda: fake.batch_bucket_files(BUCKET, delete=["a"], token=ADMIN_TOKEN)))


@pytest.mark.parametrize("status", [401, 404])
def test_spaces_and_jobs_not_found_or_refused(scripted: ScriptedHub, fake: FakeHub, status: int) -> None:
    scripted.script[("GET", "/api/spaces/acme/app")] = error(
        status, "no", code="RepoNotFound" if status == 404 else None
    )
    scripted.script[("GET", "/api/jobs/acme/job-9")] = error(status, "no")
    api = HfApi(endpoint=scripted.endpoint)
    fake.add_user("x", TOKEN, {"acme": "admin"})
    real_space = raised(lambda: api.space_info("acme/app", token=TOKEN))
    real_job = raised(lambda: api.inspect_job(job_id="job-9", namespace="acme", token=TOKEN))
    if status == 404:  # absent in the fake
        fake_space = raised(lambda: fake.space_info("acme/app", token=TOKEN))
        fake_job = raised(lambda: fake.inspect_job(job_id="job-9", namespace="acme", token=TOKEN))
    else:
        fake.fail("space_info", status)
        fake.fail("inspect_job", status)
        fake.spaces.clear()
        fake_space = raised(lambda: fake.space_info("acme/app", token=TOKEN))
        fake_job = raised(lambda: fake.inspect_job(job_id="job-9", namespace="acme", token=TOKEN))
    assert_alike(real_space, fake_space)
    assert_alike(real_job, fake_job)


def test_whoami_with_a_refused_token(scripted: ScriptedHub, fake: FakeHub) -> None:
    scripted.script[("GET", "/api/whoami-v2")] = error(401, "Invalid credentials in Authorization header")
    real = raised(lambda: HfApi(endpoint=scripted.endpoint).whoami(token=BAD_TOKEN))
    assert_alike(real, raised(lambda: fake.whoami(token=BAD_TOKEN)))


# -- no answer: an unreachable Hub, a hung one ---------------------------------------------------


@pytest.mark.parametrize("method", ["bucket_info", "whoami", "inspect_job"])
def test_an_unreachable_hub(fake: FakeHub, method: str) -> None:
    api = HfApi(endpoint=f"http://127.0.0.1:{closed_port()}")
    calls: dict[str, Callable[[Any], Any]] = {
        "bucket_info": lambda hub: hub.bucket_info(BUCKET, token=ADMIN_TOKEN),
        "whoami": lambda hub: hub.whoami(token=ADMIN_TOKEN),
        "inspect_job": lambda hub: hub.inspect_job(job_id="job-1", namespace="acme", token=ADMIN_TOKEN),
    }
    real = raised(lambda: calls[method](api))
    assert isinstance(real, httpx2.ConnectError) and not isinstance(real, OSError)
    fake.fail_network(method)
    assert_alike(real, raised(lambda: calls[method](fake)))


@pytest.fixture
def bounded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Short timeouts for this test only; the library's own client comes back afterwards."""
    monkeypatch.setenv("HF_XET_CLIENT_CONNECT_TIMEOUT", "1s")  # install_timeouts keeps what is set
    monkeypatch.setenv("HF_XET_CLIENT_READ_TIMEOUT", "1s")
    install_timeouts(0.5, 0.5)
    yield
    set_client_factory(default_client_factory)


@pytest.mark.usefixtures("bounded")
def test_a_hung_hub_fails_in_bounded_time(scripted: ScriptedHub, fake: FakeHub) -> None:
    scripted.script[("GET", f"/api/buckets/{BUCKET}")] = Answer(hang=True)
    started = time.monotonic()
    real = raised(lambda: HfApi(endpoint=scripted.endpoint).bucket_info(BUCKET, token=TOKEN))
    assert time.monotonic() - started < 10  # the server would hang for 30 s
    assert isinstance(real, httpx2.ReadTimeout)
    fake.fail_timeout("bucket_info")
    assert_alike(real, raised(lambda: fake.bucket_info(BUCKET, token=ADMIN_TOKEN)))


# -- bucket writes that add files: hf_xet's token request ----------------------------------------

XET_CASES = {  # bucket -> how its token request answers (None: the server hangs)
    "acme/s401": 401,
    "acme/s403": 403,
    "acme/s404": 404,
    "acme/s429": 429,
    "acme/s503": 503,
    "acme/hung": None,
}


@pytest.fixture(scope="module")
def xet_outcomes() -> Iterator[dict[str, dict[str, Any]]]:
    """What the real library raised for each bucket of XET_CASES (one probe process for all of them)."""
    with ScriptedHub().running() as hub:
        for bucket, status in XET_CASES.items():
            answer = Answer(hang=True) if status is None else error(status, "no")
            hub.script[("GET", f"/api/buckets/{bucket}/xet-write-token")] = answer
        env = {"HF_XET_CLIENT_RETRY_MAX_ATTEMPTS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PATH": ""}
        done = subprocess.run(
            [sys.executable, str(HERE / "xet_probe.py"), hub.endpoint, *XET_CASES],
            capture_output=True, text=True, timeout=120, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        outcomes: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
        assert all(p.endswith("/xet-write-token") for _, p, _ in hub.seen)  # nothing else was asked
        yield outcomes


def _rebuilt(outcome: dict[str, Any]) -> BaseException:
    assert outcome["type"] == "builtins.ConnectionError", outcome
    return ConnectionError(outcome["message"])


@pytest.mark.parametrize("bucket", [b for b, s in XET_CASES.items() if s is not None])
def test_a_refused_xet_write_is_a_connection_error(
    xet_outcomes: dict[str, dict[str, Any]], fake: FakeHub, bucket: str
) -> None:
    real = _rebuilt(xet_outcomes[bucket])
    status = XET_CASES[bucket]
    failure = classify(real)
    assert failure is not None and failure.status == status
    fake.fail("batch_bucket_files", status or 0)
    assert_alike(real, raised(lambda: fake.batch_bucket_files(BUCKET, add=[(b"x", "a")], token=ADMIN_TOKEN)))


def test_a_hung_xet_token_request_is_bounded_and_unavailable(
    xet_outcomes: dict[str, dict[str, Any]], fake: FakeHub
) -> None:
    real = _rebuilt(xet_outcomes["acme/hung"])
    assert classify(real) is not None and classify(real).kind == "unavailable"  # type: ignore[union-attr]
    fake.fail_network("batch_bucket_files")
    assert_alike(real, raised(lambda: fake.batch_bucket_files(BUCKET, add=[(b"x", "a")], token=ADMIN_TOKEN)))


def test_the_fake_refuses_xet_writes_of_its_own_accord_the_same_way(
    xet_outcomes: dict[str, dict[str, Any]], fake: FakeHub
) -> None:
    """No switch: a token without write rights, a missing bucket, an unknown token."""
    fake.add_user("reader", READER_TOKEN, {"acme": "read"})
    cases = {
        "acme/s403": lambda: fake.batch_bucket_files(BUCKET, add=[(b"x", "a")], token=READER_TOKEN),
        "acme/s404": lambda: fake.batch_bucket_files("acme/gone", add=[(b"x", "a")], token=ADMIN_TOKEN),
        "acme/s401": lambda: fake.batch_bucket_files(BUCKET, add=[(b"x", "a")], token=BAD_TOKEN),
    }
    for bucket, call in cases.items():
        assert_alike(_rebuilt(xet_outcomes[bucket]), raised(call))


# -- the kinds of values returned ----------------------------------------------------------------


def test_create_bucket_returns_a_bucket_url(scripted: ScriptedHub, fake: FakeHub) -> None:
    scripted.script[("POST", "/api/buckets/acme/new")] = Answer(200, {"url": f"{scripted.endpoint}/buckets/acme/new"})
    real = HfApi(endpoint=scripted.endpoint).create_bucket("acme/new", token=TOKEN)
    made = fake.create_bucket("acme/new", token=ADMIN_TOKEN)
    assert isinstance(real, BucketUrl) and isinstance(made, BucketUrl)
    assert (made.bucket_id, made.namespace) == (real.bucket_id, real.namespace) == ("acme/new", "acme")


def test_list_jobs_is_lazy(scripted: ScriptedHub, fake: FakeHub) -> None:
    scripted.script[("GET", "/api/jobs/acme")] = Answer(200, [JOB_ANSWER])
    real = HfApi(endpoint=scripted.endpoint).list_jobs(namespace="acme", token=TOKEN)
    listed = fake.list_jobs(namespace="acme", token=ADMIN_TOKEN)
    assert isinstance(real, types.GeneratorType) and isinstance(listed, types.GeneratorType)
    assert scripted.seen == [] and fake.calls["list_jobs"] == 0  # nothing asked before the first item
    assert [j.id for j in real] == ["job-1"] and list(listed) == []


def test_run_job_adds_the_name_label(scripted: ScriptedHub, fake: FakeHub) -> None:
    scripted.script[("POST", "/api/jobs/acme")] = Answer(200, JOB_ANSWER)
    spec = {"image": "python:3.12", "command": ["python", "-c", "pass"], "labels": {"collab_job": "j1"}}
    HfApi(endpoint=scripted.endpoint).run_job(**spec, namespace="acme", token=TOKEN)  # type: ignore[arg-type]
    sent = json.loads(scripted.seen[-1][2])["labels"]
    made = fake.run_job(**spec, namespace="acme", token=ADMIN_TOKEN)  # type: ignore[arg-type]
    assert made.labels == sent
    assert set(sent) == {"collab_job", "name"}


def test_space_files_in_lfs_report_the_pointer_and_the_sha256(scripted: ScriptedHub, fake: FakeHub) -> None:
    data = b"\x89PNG\r\n\x1a\n\0binary"
    fake.create_repo("acme/app", repo_type="space", space_sdk="docker", token=ADMIN_TOKEN)
    fake.spaces["acme/app"].files = {"logo.png": data, "app.py": b"print(1)\n"}
    made = {s.rfilename: s for s in fake.space_info("acme/app", files_metadata=True, token=ADMIN_TOKEN).siblings or []}
    siblings = [
        {"rfilename": name, "size": s.size, "blobId": s.blob_id}
        | ({"lfs": {"sha256": s.lfs.sha256, "size": s.lfs.size, "pointerSize": s.lfs.pointer_size}} if s.lfs else {})
        for name, s in made.items()
    ]
    scripted.script[("GET", "/api/spaces/acme/app")] = Answer(200, {"id": "acme/app", "siblings": siblings})
    real = HfApi(endpoint=scripted.endpoint).space_info("acme/app", files_metadata=True, token=TOKEN)
    parsed = {s.rfilename: s for s in real.siblings or []}
    assert made["logo.png"].lfs is not None and made["app.py"].lfs is None  # binary in LFS, text not
    for name, sibling in made.items():  # the fake's answer is one the library reads back field for field
        assert (parsed[name].blob_id, parsed[name].size, parsed[name].lfs) == (
            sibling.blob_id,
            sibling.size,
            sibling.lfs,
        )
    bare = fake.space_info("acme/app", token=ADMIN_TOKEN).siblings or []
    assert all(s.blob_id is None and s.size is None for s in bare)  # no metadata unless asked, as on the Hub
