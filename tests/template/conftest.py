"""Fixtures for the template's tests; the helpers they use live in template_harness.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from template_harness import make_template_repo, render


@pytest.fixture(scope="session")
def template_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as a git repository tagged v99.0.0; the matrix renders from this one clone."""
    return make_template_repo(tmp_path_factory.mktemp("template") / "repo")


@pytest.fixture(scope="session")
def render_from(template_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Render the session's template clone into a fresh folder: `render_from(data, **copier_kwargs)`."""

    def _render(data: dict[str, Any] | None = None, **kwargs: Any) -> Path:
        return render(template_src, tmp_path_factory.mktemp("collab") / "collab", data, **kwargs)

    return _render
