"""The data formats: the sample against its schemas, and the harness's loader in agreement with them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gemma_eval.data import load_baseline, load_eval_data, read_baseline, read_prompts, read_references, read_spot_items
from gemma_eval.errors import DataError
from gemma_eval.params import Params
from gemma_helpers import SAMPLE, load_schemas, schema_errors

FILES = {
    "prompts.json": ("gemma-prompts.schema.json", read_prompts),
    "references.json": ("gemma-references.schema.json", read_references),
    "spot_items.json": ("gemma-spot-items.schema.json", read_spot_items),
    "baselines/fake-v1.json": ("gemma-baseline.schema.json", read_baseline),
    "baselines/tiny-gemma4-v1.json": ("gemma-baseline.schema.json", read_baseline),
}


def test_schemas_are_versioned_and_describe_every_property() -> None:
    for name, schema in load_schemas().items():
        if name == "challenge.schema.json":
            continue
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"urn:agent-collabs:schema:{name.removesuffix('.schema.json')}:v1"
        missing = [path for path, node in _properties(schema, "$") if "description" not in node]
        assert missing == [], f"{name}: properties without a description: {missing}"


def _properties(node: Any, path: str) -> list[tuple[str, Any]]:
    """Every property declaration; conditional clauses (if/then/else) only constrain declared ones."""
    found = []
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            found.append((f"{path}.{key}", value))
        for key, value in node.items():
            if key not in ("if", "then", "else"):
                found += _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _properties(value, f"{path}[{index}]")
    return found


@pytest.mark.parametrize("name", FILES)
def test_sample_files_satisfy_schema_and_loader(name: str) -> None:
    schema, reader = FILES[name]
    assert schema_errors(json.loads((SAMPLE / name).read_text(encoding="utf-8")), schema) == []
    reader(SAMPLE / name)


def test_sample_loads_as_one_set_with_both_stand_in_baselines() -> None:
    data = load_eval_data(SAMPLE)
    assert data.folder_set == "sample" and len(data.prompts.items) == 12 and len(data.prompts.warmup) == 8
    assert data.spot is not None and {i.task for i in data.spot.items} == {"gpqa_diamond", "mmlu_pro"}
    for family in ("fake-v1", "tiny-gemma4-v1"):
        baseline = load_baseline(SAMPLE, data, family)
        assert baseline is not None and baseline.output_len == Params().output_len
    assert load_baseline(SAMPLE, data, "gemma-4-E4B-it") is None, "the real family's baseline is never bundled"


Mutation = Callable[[dict[str, Any]], None]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


# Each malformed document must be refused by both the schema and the harness's own loader.
BROKEN: list[tuple[str, str, Mutation]] = [
    ("prompts.json", "wrong format", _set(["format"], "gemma-prompt")),
    ("prompts.json", "wrong version", _set(["version"], 2)),
    ("prompts.json", "unknown set", _set(["set"], "secret")),
    ("prompts.json", "no items", _set(["items"], [])),
    ("prompts.json", "empty ids", _set(["items", 0, "prompt_token_ids"], [])),
    ("prompts.json", "negative id", _set(["items", 0, "prompt_token_ids", 0], -1)),
    ("prompts.json", "float id", _set(["items", 0, "prompt_token_ids", 0], 1.5)),
    ("prompts.json", "bool id", _set(["items", 0, "prompt_token_ids", 0], True)),
    ("prompts.json", "item id with a slash", _set(["items", 0, "id"], "../x")),
    ("prompts.json", "gold not a letter", _set(["items", 0, "gold"], "Z")),
    ("prompts.json", "no source", _delete(["items", 0, "source"])),
    ("prompts.json", "no tokenizer", _delete(["tokenizer"])),
    ("references.json", "no target", _delete(["items", 0, "target_token_ids"])),
    ("references.json", "empty target", _set(["items", 0, "target_token_ids"], [])),
    ("references.json", "no reference model", _delete(["reference_model"])),
    ("spot_items.json", "unknown task", _set(["items", 0, "task"], "trivia")),
    ("spot_items.json", "gold beyond the choices", _set(["items", 0, "gold"], "F")),
    ("spot_items.json", "one choice", _set(["items", 0, "num_choices"], 1)),
    ("spot_items.json", "no stop ids", _delete(["stop_token_ids"])),
    ("baselines/fake-v1.json", "ppl below 1", _set(["ppl"], 0.5)),
    ("baselines/fake-v1.json", "ppl as text", _set(["ppl"], "2.3")),
    ("baselines/fake-v1.json", "negative nll", _set(["ppl_records", 0, "nll_sum"], -1)),
    ("baselines/fake-v1.json", "zero tokens", _set(["ppl_records", 0, "num_tokens"], 0)),
    ("baselines/fake-v1.json", "correct not a bool", _set(["spot", 0, "correct"], 1)),
    ("baselines/fake-v1.json", "no outputs", _delete(["outputs"])),
]


@pytest.mark.parametrize(("name", "label", "mutate"), BROKEN, ids=[f"{n}:{label}" for n, label, _ in BROKEN])
def test_loader_and_schema_agree_on_broken_files(tmp_path: Path, name: str, label: str, mutate: Mutation) -> None:
    schema, reader = FILES[name]
    doc = copy.deepcopy(json.loads((SAMPLE / name).read_text(encoding="utf-8")))
    mutate(doc)
    assert schema_errors(doc, schema), f"the schema accepts a file with {label}"
    path = tmp_path / Path(name).name
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DataError):
        reader(path)


def test_duplicate_ids_and_non_json_are_refused(tmp_path: Path) -> None:
    doc = json.loads((SAMPLE / "prompts.json").read_text(encoding="utf-8"))
    doc["items"].append(doc["items"][0])
    (tmp_path / "prompts.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DataError, match="appears twice"):
        read_prompts(tmp_path / "prompts.json")
    (tmp_path / "prompts.json").write_text("{", encoding="utf-8")
    with pytest.raises(DataError, match="not JSON"):
        read_prompts(tmp_path / "prompts.json")
    with pytest.raises(DataError, match="missing"):
        read_prompts(tmp_path / "nothing.json")


def _edit(folder: Path, name: str, mutate: Mutation) -> None:
    doc = json.loads((folder / name).read_text(encoding="utf-8"))
    mutate(doc)
    (folder / name).write_text(json.dumps(doc), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "mutate", "message"),
    [
        ("references.json", _set(["tokenizer"], "google/gemma-4-E4B-it"), "tokenizer"),
        ("spot_items.json", _set(["set"], "public"), "different sets"),
    ],
)
def test_files_of_one_folder_must_agree(sample_copy: Path, name: str, mutate: Mutation, message: str) -> None:
    _edit(sample_copy, name, mutate)
    with pytest.raises(DataError, match=message):
        load_eval_data(sample_copy)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set(["family"], "tiny-gemma4-v1"), "family is"),
        (_set(["outputs"], []), "no output for prompt"),
        (_set(["ppl_records"], []), "no ppl record"),
        (_set(["spot"], []), "no spot result"),
        (_set(["set"], "public"), "belongs to set"),
    ],
)
def test_a_baseline_must_cover_its_set(sample_copy: Path, mutate: Mutation, message: str) -> None:
    _edit(sample_copy, "baselines/fake-v1.json", mutate)
    data = load_eval_data(sample_copy)
    with pytest.raises(DataError, match=message):
        load_baseline(sample_copy, data, "fake-v1")
