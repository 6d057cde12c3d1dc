"""Opt-in tests are skipped by marker only: a parameter that happens to be called "hub" still runs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def test_markers_not_keywords_decide(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    hub: live Hub\n    gpu: GPU\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("kind", ["local", "hub"])
        def test_adapter(kind):
            assert kind

        @pytest.mark.hub
        def test_live():
            raise AssertionError("must not run without --run-hub")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.no_fnmatch_line("*AssertionError*")
