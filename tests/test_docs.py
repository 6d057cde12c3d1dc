"""The docs are generated or checked against the code, so they cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from provision.cli import build_parser
from provision.cli.reference import render_cli_reference
from provision.spec.reference import render_reference
from provision.spec.schema import load_schema, resolve

ROOT = Path(__file__).resolve().parents[1]


def _all_keys(node: dict, prefix: str = "") -> list[str]:
    node = resolve(node)
    keys = []
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        keys.append(path)
        keys += _all_keys(child, path)
        items = resolve(child).get("items")
        if isinstance(items, dict):
            keys += _all_keys(items, f"{path}[]")
    return keys


def test_spec_reference_is_current() -> None:
    committed = (ROOT / "docs" / "challenge-spec.md").read_text(encoding="utf-8")
    assert committed == render_reference(), "docs/challenge-spec.md is stale: run `nox -s docs`"


def test_cli_reference_is_current() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == render_cli_reference(), "docs/cli.md is stale: run `nox -s docs`"


def test_every_spec_key_is_documented() -> None:
    reference = render_reference()
    for key in _all_keys(load_schema()):
        assert f"`{key}`" in reference, key


def test_every_schema_property_has_a_description() -> None:
    def walk(node: dict, where: str) -> list[str]:
        missing = []
        for name, child in node.get("properties", {}).items():
            if "description" not in child and "description" not in resolve(child):
                missing.append(f"{where}.{name}")
            missing += walk(resolve(child), f"{where}.{name}")
            items = resolve(child).get("items")
            if isinstance(items, dict):
                missing += walk(resolve(items), f"{where}.{name}[]")
        return missing

    schema = load_schema()
    assert walk(schema, "$") == []
    for name, definition in schema["$defs"].items():
        assert walk(definition, f"$defs.{name}") == []


def test_every_cli_verb_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    verbs = next(a for a in build_parser()._actions if a.dest == "verb").choices
    for verb in verbs:
        assert re.search(rf"collab {verb}\b", readme), f"README.md never shows `collab {verb}`"


def test_links_in_docs_point_at_files_that_exist() -> None:
    for doc in [ROOT / "README.md", ROOT / "SETUP.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_harness_docs_link_only_inside_the_harness_folder() -> None:
    """A harness folder is seeded alone into the central bucket: a link out of it names nothing there."""
    for doc in sorted(ROOT.glob("challenge_*/harness/*.md")):
        harness = doc.parent.resolve()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            path = (doc.parent / target).resolve()
            assert path.is_relative_to(harness) and path.exists(), f"{doc} links to {target}, not in its harness"
