"""What the dashboard is made of, and what it may not be: its own Space, talking only to the backend's API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from dashboard_world import spec_document

from collab_dashboard.config import Settings, space_url

HERE = Path(__file__).resolve().parents[1]
PACKAGE = HERE / "collab_dashboard"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_dashboard_imports_neither_the_backend_nor_the_provisioning() -> None:
    """A separate Space: it reaches the record only through the API (never a bucket, never a token)."""
    for path in PACKAGE.rglob("*.py"):
        assert not _imports(path) & {"collab_backend", "provision", "huggingface_hub"}, path


def test_only_backend_py_talks_http() -> None:
    users = sorted(p.name for p in PACKAGE.rglob("*.py") if "httpx" in _imports(p))
    assert users == ["auth.py", "backend.py", "main.py"]  # auth: the OAuth provider; main: creates the clients


def test_no_front_end_code_from_elsewhere_and_no_other_origin() -> None:
    """Only this kit's own small script and style; nothing loads from another origin."""
    static = sorted(p.name for p in (PACKAGE / "static").iterdir())
    assert static == ["app.css", "app.js", "favicon.svg"]
    assert len((PACKAGE / "static" / "app.js").read_text(encoding="utf-8").splitlines()) < 300
    for path in [*(PACKAGE / "static").iterdir(), *(PACKAGE / "templates").rglob("*.html")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//(?!huggingface\.co)", text), path
        assert not re.search(r"\bcdn\b|unpkg|jsdelivr", text, re.I), path
        assert "<script>" not in text and " style=" not in text and "|safe" not in text.replace(" ", ""), path


def test_templates_draw_agent_text_only_through_the_renderer() -> None:
    """`markdown` is the only filter that returns markup; nothing is marked safe by hand."""
    for path in (PACKAGE / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert "Markup(" not in text and "autoescape false" not in text, path
    render = (PACKAGE / "render.py").read_text(encoding="utf-8")
    assert render.count("Markup(") == 1  # the sanitized output, once
    others = [p for p in PACKAGE.rglob("*.py") if p.name != "render.py"]
    assert not any("Markup(" in p.read_text(encoding="utf-8") for p in others)


@pytest.mark.parametrize("space_id", ["acme/fast-backend", "Acme.Org/fast_backend", "a/b.c"])
def test_the_backend_address_is_the_spaces_address_provisioning_uses(space_id: str) -> None:
    from provision.naming import space_url as provision_space_url

    assert space_url(space_id) == provision_space_url(space_id)


def test_settings_derive_from_the_spec(tmp_path: Path) -> None:
    document = spec_document()
    identities = tmp_path / "identities.json"
    settings = Settings(spec=document, sign_in="local", identity_file=identities)
    assert settings.api == space_url(document["spaces"]["backend"]["id"])
    assert settings.spec.dashboard.invite_link == document["dashboard"]["invite_link"]
    local = Settings(spec=document, sign_in="local", identity_file=identities, backend_url="http://127.0.0.1:8000/")
    assert local.api == "http://127.0.0.1:8000" and local.secure is False
    with pytest.raises(ValueError, match="COLLAB_IDENTITY_FILE"):
        Settings(spec=document, sign_in="local")
    with pytest.raises(ValueError, match="COLLAB_BACKEND_URL"):
        Settings(spec=document, sign_in="local", identity_file=identities, backend_url="ftp://x/y")
    hostile = {
        **document,
        "dashboard": {"invite_link": None, "branding": {"accent_color": "red;}*{x:y", "logo_url": None}},
    }
    with pytest.raises(ValueError, match="accent_color"):
        Settings(spec=hostile, sign_in="local", identity_file=identities)


def test_the_space_is_a_docker_space_with_oauth_for_the_org() -> None:
    readme = next(p for p in (HERE / "README.md", HERE / "README.md.jinja") if p.exists()).read_text(encoding="utf-8")
    header = readme.split("---")[1]
    assert "sdk: docker" in header and "app_port: 7860" in header and "hf_oauth: true" in header
    assert "hf_oauth_authorized_org:" in header
    dockerfile = (HERE / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY requirements.txt" in dockerfile and "collab_dashboard.main:app" in dockerfile and "7860" in dockerfile
    assert "HF_TOKEN" not in dockerfile
    requirements = (HERE / "requirements.txt").read_text(encoding="utf-8")
    backend = (HERE.parent / "backend" / "requirements.txt").read_text(encoding="utf-8")
    for name in ("fastapi", "uvicorn"):
        [mine] = [line for line in requirements.splitlines() if line.startswith(f"{name}==")]
        assert mine in backend.splitlines(), f"{name} is pinned alike in both Spaces"
