"""Fixtures for the template's tests; the helpers they use live in template_harness.py."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from template_harness import REPO, make_template_repo, render


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


@pytest.fixture(scope="session")
def questions_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """copier.yml and the types' question fragments, over an empty template folder.

    Copier asks and validates every question exactly as with the whole template (the validators and
    the defaults live in these files), without cloning and rendering the template: a verdict costs
    a twentieth of a render.
    """
    dest = tmp_path_factory.mktemp("questions") / "template"
    (dest / "template").mkdir(parents=True)
    shutil.copy2(REPO / "copier.yml", dest / "copier.yml")
    for fragments in REPO.glob("challenge_*/copier"):
        shutil.copytree(fragments, dest / fragments.relative_to(REPO))
    return dest
