"""This collab's own checks: its spec is valid, and what it derives is what the kit promises."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from provision.challenge_types import load_type, registered
from provision.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def test_spec_is_valid_and_typed() -> None:
    loaded = load_spec(ROOT)
    spec = loaded.spec
    assert loaded.warnings == []
    assert spec.storage.central_bucket.startswith(f"{spec.challenge.org}/")
    assert spec.storage.audit_bucket.startswith(f"{spec.challenge.admin_org}/")
    assert spec.challenge.org != spec.challenge.admin_org


def test_spec_names_its_schema_for_editors() -> None:
    first_line = (ROOT / "challenge.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./schemas/challenge.schema.json"
    schema = json.loads((ROOT / "schemas" / "challenge.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    document = yaml.safe_load((ROOT / "challenge.yaml").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)


def test_challenge_type_is_registered_and_loads() -> None:
    spec = load_spec(ROOT).spec
    assert spec.challenge.type in registered()
    assert load_type(spec.challenge.type).name == spec.challenge.type


def test_answers_agree_with_spec() -> None:
    answers = yaml.safe_load((ROOT / ".copier-answers.yml").read_text(encoding="utf-8"))
    spec = load_spec(ROOT).spec
    assert answers["challenge_type"] == spec.challenge.type
    assert answers["verification_mode"] == spec.verification.mode
    assert answers["jobs_enabled"] == spec.jobs.enabled


def test_cli_validates_this_collab() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "provision.cli", "validate", str(ROOT)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout
