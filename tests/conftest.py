"""Suite-wide options: tests needing the live Hub or a GPU run only when asked for.

They are reported as skipped with the flag that enables them, never counted as passing.
`--update-goldens` rewrites the recorded texts the `golden` fixture compares against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OPT_IN = {
    "hub": ("--run-hub", "talks to the live Hugging Face Hub (needs HF_TOKEN)"),
    "gpu": ("--run-gpu", "needs a GPU"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    for flag, help_text in OPT_IN.values():
        parser.addoption(flag, action="store_true", default=False, help=f"run tests that {help_text}")
    parser.addoption(
        "--update-goldens", action="store_true", default=False, help="rewrite recorded texts instead of comparing"
    )


def work_unit(item: pytest.Item) -> str:
    """The tests a parallel run keeps on one worker: a module's, per parameter of its module-scoped fixtures.

    They share what those fixtures build (a rendered collab, a loaded model), which a worker would
    otherwise build again.
    """
    unit = item.nodeid.split("::")[0]
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        fixtures = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
        shared = sorted(name for name in callspec.indices if name in fixtures and fixtures[name][-1].scope == "module")
        unit += "".join(f"[{name}={callspec.indices[name]}]" for name in shared)
    return unit


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    parallel = config.pluginmanager.hasplugin("xdist")
    for item in items:
        if parallel:  # `nox -s tests` runs `--dist loadgroup`: one group, one worker
            item.add_marker(pytest.mark.xdist_group(work_unit(item)))
        for marker, (flag, why) in OPT_IN.items():
            # A marker, not a keyword: parameter ids such as "hub" are keywords too.
            if item.get_closest_marker(marker) is not None and not config.getoption(flag):
                item.add_marker(pytest.mark.skip(reason=f"opt-in: {why}; run with {flag}"))


class SlowFirst:
    @pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by their fixtures' parameters
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Tests that run for minutes go first, in their order: the workers of a parallel run then end together."""
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SlowFirst(), "slow-first")


@pytest.fixture(scope="session")
def example_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The challenge.yaml a collab gets with Copier's default answers, rendered from this tree."""
    import copier

    dest = tmp_path_factory.mktemp("example") / "collab"
    copier.run_copy(str(ROOT), dest, defaults=True, vcs_ref="HEAD", quiet=True)
    return dest / "challenge.yaml"


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[Path, str], None]:
    """Compare a generated text with its recorded copy, byte for byte.

    With `--update-goldens` the copy is rewritten instead: for an intended change of the text,
    whose diff then shows in review.
    """

    def check(recorded: Path, text: str) -> None:
        if request.config.getoption("--update-goldens"):
            recorded.write_bytes(text.encode("utf-8"))
            return
        assert recorded.is_file(), f"{recorded} is missing; record it with --update-goldens"
        expected = recorded.read_bytes().decode("utf-8")
        assert text == expected, f"differs from {recorded}; if the change is intended, rerun with --update-goldens"

    return check
