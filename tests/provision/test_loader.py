"""The loader: derived defaults, typed access, the example spec's round trip, schema and model in step."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from provision.spec import ChallengeSpec, check_spec, load_spec
from provision.spec.derive import apply_defaults
from provision.spec.model import Bounds
from provision.spec.problems import SpecError
from provision.spec.schema import load_schema, resolve

MINIMAL = """\
spec_version: 2
challenge:
  org: acme
  slug: fast-decode
  title: Fast decode
  type: gemma
scoring:
  score_field: tps
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "challenge.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def test_minimal_spec_derives_every_name_from_org_and_slug(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL)).spec
    assert spec.challenge.admin_org == "acme-admin"
    assert spec.storage.central_bucket == "acme/fast-decode-main-bucket"
    assert spec.storage.audit_bucket == "acme-admin/fast-decode-audit-bucket"
    assert spec.spaces.backend.id == "acme/fast-decode-backend"
    assert spec.spaces.dashboard.id == "acme/fast-decode-dashboard"
    assert spec.spaces.eval.id == "acme-admin/fast-decode-eval"
    assert spec.scoring.label == "tps"


def test_derived_values_follow_explicit_sources(tmp_path: Path) -> None:
    text = MINIMAL.replace("  org: acme\n", "  org: acme\n  admin_org: acme-organizers\n")
    spec = load_spec(write(tmp_path, text)).spec
    assert spec.storage.audit_bucket == "acme-organizers/fast-decode-audit-bucket"
    assert spec.spaces.eval.id == "acme-organizers/fast-decode-eval"


def test_explicit_values_win_over_derived_ones(tmp_path: Path) -> None:
    text = (
        MINIMAL + "storage:\n  central_bucket: acme/record\nspaces:\n  backend: {id: acme/api, hardware: cpu-upgrade}\n"
    )
    spec = load_spec(write(tmp_path, text)).spec
    assert spec.storage.central_bucket == "acme/record"
    assert spec.spaces.backend.id == "acme/api"
    assert spec.spaces.backend.hardware == "cpu-upgrade"
    assert spec.spaces.dashboard.id == "acme/fast-decode-dashboard"


def test_static_defaults_come_from_the_schema(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL)).spec
    props = load_schema()["properties"]
    board = resolve(props["board"])["properties"]
    assert [c.name for c in spec.board.channels] == [c["name"] for c in board["channels"]["default"]]
    assert spec.board.raw_posts.limit == board["raw_posts"]["default"]["limit"]
    assert spec.jobs.enabled is resolve(props["jobs"])["properties"]["enabled"]["default"]
    assert spec.verification.mode == resolve(props["verification"])["properties"]["mode"]["default"]


def test_list_items_get_defaults_and_sibling_derivations(tmp_path: Path) -> None:
    text = MINIMAL + "  metrics:\n    - field: ppl\n      guardrail: {max: 2.42}\n  tracks:\n    - name: lossy\n"
    scoring = load_spec(write(tmp_path, text)).spec.scoring
    assert scoring.metrics[0].label == "ppl"
    assert scoring.metrics[0].direction == "minimize"
    assert scoring.metrics[0].guardrail == Bounds(max=2.42)
    assert scoring.tracks[0].label == "lossy"
    assert scoring.tracks[0].description == ""


def test_typed_access_is_read_only(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL)).spec
    with pytest.raises(ValueError, match="frozen"):
        spec.challenge.org = "other"  # type: ignore[misc]


def test_bounds_admit_inclusively() -> None:
    cap = Bounds(max=2.42)
    assert cap.admits(2.42) and not cap.admits(2.4201)
    assert Bounds(min=1, max=2).admits(1) and not Bounds(min=1).admits(0.99)


def test_load_spec_raises_with_every_problem(tmp_path: Path) -> None:
    text = MINIMAL.replace("slug: fast-decode", "slug: Fast_Decode").replace("score_field: tps", "score_field: 9")
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, text))
    paths = {p.path for p in caught.value.problems}
    assert paths == {("challenge", "slug"), ("scoring", "score_field")}
    assert isinstance(caught.value, ValueError)


def test_the_loader_does_not_modify_its_input(tmp_path: Path) -> None:
    document = yaml.safe_load(MINIMAL)
    before = json.dumps(document, sort_keys=True)
    apply_defaults(document)
    assert json.dumps(document, sort_keys=True) == before


def test_example_spec_round_trips(tmp_path: Path, example_spec: Path) -> None:
    """Load the rendered example, dump the typed spec, load the dump: the same spec comes back."""
    first = load_spec(example_spec)
    dumped = first.spec.to_document()
    jsonschema.Draft202012Validator(load_schema()).validate(dumped)
    again = load_spec(write(tmp_path, yaml.safe_dump(dumped, sort_keys=False))).spec
    assert again == first.spec
    assert dumped == first.document


def _model_fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def _walk(schema: dict[str, Any], model: Any, where: str) -> list[str]:
    """Pairs of (schema object, model class) whose keys differ."""
    mismatches: list[str] = []
    props = schema.get("properties", {})
    if set(props) - {k for k, v in props.items() if resolve(v).get("deprecated")} != _model_fields(model):
        mismatches.append(f"{where}: schema {sorted(props)} != model {sorted(_model_fields(model))}")
    for name, raw in props.items():
        sub = resolve(raw)
        field = model.model_fields.get(name)
        if field is None:
            continue
        annotation = field.annotation
        target = sub
        if sub.get("type") == "array" and isinstance(sub.get("items"), dict):
            target = resolve(sub["items"])
            annotation = annotation.__args__[0] if hasattr(annotation, "__args__") else annotation
        if hasattr(annotation, "__args__"):  # Optional[Model]
            candidates = [a for a in annotation.__args__ if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = candidates[0] if candidates else annotation
        if target.get("type") == "object" and "properties" in target:
            mismatches += _walk(target, annotation, f"{where}.{name}")
    return mismatches


def test_model_and_schema_declare_the_same_keys() -> None:
    assert _walk(resolve(load_schema()), ChallengeSpec, "$") == []


def test_model_types_carry_no_defaults_of_their_own() -> None:
    """Defaults live in the schema only; the model may only mark optional keys as absent (None)."""
    from provision.spec import model as model_module

    for name in dir(model_module):
        cls = getattr(model_module, name)
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == model_module.__name__:
            for field_name, field in cls.model_fields.items():
                assert field.is_required() or field.default is None, f"{name}.{field_name} has a default"


def test_check_spec_returns_warnings_without_raising(tmp_path: Path) -> None:
    text = MINIMAL.replace("score_field: tps", "score_field: tps\n  order: asc")
    loaded, problems = check_spec(write(tmp_path, text))
    assert loaded is not None
    assert loaded.spec.scoring.direction == "minimize"
    assert [p.code for p in problems] == ["deprecated_key"]
    assert loaded.warnings == problems
    warning = problems[0]
    assert (warning.line, warning.col) == (9, 3)
    assert "direction" in (warning.hint or "") and "collab migrate" in (warning.hint or "")
