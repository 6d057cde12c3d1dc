"""A type's schemas reach the collabs of that type only, and a Gemma collab's schemas check its own files.

The kit's `schemas/` holds the kit-wide formats, which every collab receives; a type's formats live
in `challenge_<type>/schemas/` and travel with the package. Both collabs here are rendered with the
real Copier from the session's clone of the working tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from template_harness import REPO, files_under

from provision.challenge_types.contract import schema_registry

GEMMA_ID = "urn:agent-collabs:schema:gemma-"
# The sample set's files, each naming its format (`gemma-prompts` -> gemma-prompts.schema.json).
SAMPLE_FILES = {
    "prompts.json",
    "references.json",
    "spot_items.json",
    "baselines/fake-v1.json",
    "baselines/tiny-gemma4-v1.json",
}


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.json"))


@pytest.fixture(scope="module")
def tsp_collab(render_from: Any) -> Path:
    collab: Path = render_from({"challenge_type": "tsp"})
    return collab


@pytest.fixture(scope="module")
def gemma_collab(render_from: Any) -> Path:
    collab: Path = render_from({"challenge_type": "gemma"})
    return collab


def test_a_tsp_collab_carries_no_gemma_schema(tsp_collab: Path) -> None:
    files = files_under(tsp_collab)
    assert [p for p in files if p.name.startswith("gemma-")] == []
    mentions = [p for p in files if p.suffix == ".json" and GEMMA_ID in p.read_text(encoding="utf-8")]
    assert mentions == [], "a tsp collab defines or references no Gemma format"
    assert _names(tsp_collab / "schemas") == _names(REPO / "schemas"), "the kit's schemas/: kit-wide formats only"


def test_a_gemma_collab_carries_its_schemas_in_its_package(gemma_collab: Path) -> None:
    own = gemma_collab / "challenge_gemma" / "schemas"
    assert _names(own) == _names(REPO / "challenge_gemma" / "schemas")
    assert "gemma-summary.schema.json" in _names(own) and "gemma-submission.schema.json" in _names(own)
    assert _names(gemma_collab / "schemas") == _names(REPO / "schemas"), "the kit's schemas/ stays kit-wide"
    elsewhere = [p for p in files_under(gemma_collab) if p.name.startswith("gemma-") and p.parent != own]
    assert elsewhere == []


def test_a_gemma_collabs_data_and_examples_follow_its_schemas(gemma_collab: Path) -> None:
    """Every data file and valid example names its format; the collab's own schemas accept each one."""
    package = gemma_collab / "challenge_gemma"
    schemas = {p.name: p for p in (*(gemma_collab / "schemas").glob("*.json"), *(package / "schemas").glob("*.json"))}
    registry = schema_registry(sorted(schemas.values()), root=gemma_collab)  # the collab's files, nothing fetched
    documents = sorted((package / "data").rglob("*.json")) + sorted((package / "examples" / "valid").rglob("*.json"))
    checked = []
    for path in documents:
        document = json.loads(path.read_text(encoding="utf-8"))
        if "format" not in document:  # the organizers' authored source of the sample, not a format
            continue
        schema = json.loads(schemas[f"{document['format']}.schema.json"].read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        errors = [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(document)]
        assert errors == [], path.relative_to(gemma_collab)
        checked.append(path.relative_to(package).as_posix())
    assert {f"data/sample/{name}" for name in SAMPLE_FILES} <= set(checked)
    assert any(name.startswith("examples/valid/") for name in checked)


# Run inside the collab: its own kit and its own type, resolving the summary schema's reference.
SUMMARY_CHECK = """
import json
import challenge_gemma, provision
from challenge_gemma import challenge_type
from provision.paths import schemas_dir
validator = challenge_type.summary_validator()
print(json.dumps({
    "files": [challenge_gemma.__file__, provision.__file__, str(schemas_dir())],
    "id": validator.schema["$id"],
    "errors": sorted(e.message for e in validator.iter_errors({})),
}))
"""


def test_a_gemma_collab_resolves_its_summary_schema_from_its_own_files(gemma_collab: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", SUMMARY_CHECK],
        cwd=gemma_collab,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert all(Path(f).resolve().is_relative_to(gemma_collab.resolve()) for f in report["files"]), report["files"]
    assert report["id"] == "urn:agent-collabs:schema:gemma-summary:v1"
    # The Gemma schema's own fields, and the kit's through its reference by $id.
    assert "'rankable' is a required property" in report["errors"]
    assert "'provenance' is a required property" in report["errors"]
