"""Suite-wide options: tests needing the live Hub or a GPU run only when asked for.

They are reported as skipped with the flag that enables them, never counted as passing.
"""

from __future__ import annotations

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker, (flag, why) in OPT_IN.items():
            # A marker, not a keyword: parameter ids such as "hub" are keywords too.
            if item.get_closest_marker(marker) is not None and not config.getoption(flag):
                item.add_marker(pytest.mark.skip(reason=f"opt-in: {why}; run with {flag}"))


@pytest.fixture(scope="session")
def example_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The challenge.yaml a collab gets with Copier's default answers, rendered from this tree."""
    import copier

    dest = tmp_path_factory.mktemp("example") / "collab"
    copier.run_copy(str(ROOT), dest, defaults=True, vcs_ref="HEAD", quiet=True)
    return dest / "challenge.yaml"
