"""Provisioning with the Hub unreachable, refusing or hanging: a clear message and exit 1, never a traceback.

The fake fails as huggingface_hub does (tests/hub/test_fake_contract.py holds it to that): no
answer is httpx2's `ConnectError` or `ReadTimeout`, a refused bucket write that adds files hf_xet's
`ConnectionError` naming the status.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub.utils._http import default_client_factory, get_session, set_client_factory
from plan_harness import ORG, TOKEN

from collab_testing.hub import FakeHub
from provision.cli import main
from provision.errors import ProvisionError
from provision.hub import client as hub_client
from provision.hub.client import HubAccessError, hub_errors, hub_timeouts
from provision.plan.desired import DesiredBucket
from provision.plan.observe import observe_bucket


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert TOKEN not in output, "the token leaked into the output"
    assert "Traceback" not in output
    return code, output


@pytest.mark.parametrize("switch", ["fail_network", "fail_timeout"])
@pytest.mark.parametrize("method", ["whoami", "bucket_info", "space_info", "get_space_runtime"])
def test_plan_without_an_answer_says_so_and_exits_1(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str], method: str, switch: str
) -> None:
    if method == "get_space_runtime":  # read only for a Space that exists
        assert run(capsys, "apply", "--poll-interval", "0", str(collab))[0] == 0
    getattr(hub, switch)(method, times=50)
    code, out = run(capsys, "plan", str(collab))
    assert code == 1, out
    assert "no answer" in out and "hint: the Hub did not answer" in out


def test_a_refused_marker_write_is_an_apply_error_not_a_traceback(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.fail("batch_bucket_files", 403, times=50)  # adds go through Xet: hf_xet's ConnectionError
    code, out = run(capsys, "apply", "--poll-interval", "0", str(collab))
    assert code == 1, out
    assert "HTTP 403" in out and "hint: the token may not do this" in out
    assert "run `collab apply` again to finish" in out


def test_observe_bucket_reads_no_answer_as_an_error_never_as_absent(hub: FakeHub) -> None:
    hub.create_bucket(f"{ORG}/central", token=TOKEN)
    hub.fail_network("bucket_info")
    with pytest.raises(HubAccessError) as caught:
        observe_bucket(hub, TOKEN, DesiredBucket("central", f"{ORG}/central", private=False))
    assert caught.value.status is None


def test_a_bug_inside_hub_errors_keeps_its_traceback() -> None:
    with pytest.raises(KeyError), hub_errors("read something"):
        raise KeyError("a bug, not the Hub")


def test_timeouts_come_from_the_environment_or_the_defaults() -> None:
    assert hub_timeouts({}) == (10.0, 60.0)
    assert hub_timeouts({"COLLAB_HUB_CONNECT_TIMEOUT_S": "3", "COLLAB_HUB_READ_TIMEOUT_S": " 2.5 "}) == (3.0, 2.5)
    for bad in ("soon", "0", "-1", "nan", "1e9"):
        with pytest.raises(ProvisionError, match="COLLAB_HUB_READ_TIMEOUT_S"):
            hub_timeouts({"COLLAB_HUB_READ_TIMEOUT_S": bad})


@pytest.fixture
def restored_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("HF_XET_CLIENT_CONNECT_TIMEOUT", "HF_XET_CLIENT_READ_TIMEOUT"):
        monkeypatch.setenv(name, "0s")  # recorded as absent or as it was, and restored so afterwards
        monkeypatch.delenv(name)
    yield
    set_client_factory(default_client_factory)


@pytest.mark.usefixtures("restored_client")
def test_connect_bounds_every_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLAB_HUB_CONNECT_TIMEOUT_S", "4")
    monkeypatch.setenv("COLLAB_HUB_READ_TIMEOUT_S", "7")
    hub_client.connect()
    timeout = get_session().timeout
    assert (timeout.connect, timeout.read, timeout.write) == (4.0, 7.0, 7.0)
    import os

    assert (os.environ["HF_XET_CLIENT_CONNECT_TIMEOUT"], os.environ["HF_XET_CLIENT_READ_TIMEOUT"]) == ("4s", "7s")


def test_a_bad_timeout_setting_is_a_message_not_a_traceback(
    collab: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLLAB_HUB_READ_TIMEOUT_S", "soon")
    code, out = run(capsys, "plan", str(collab))
    assert code == 1 and "COLLAB_HUB_READ_TIMEOUT_S='soon' is not a number of seconds" in out
