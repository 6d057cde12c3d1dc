"""The harness held against vLLM 0.33 as its wheel defines it (challenge_gemma/vllm_surface/surface.json).

The snapshot is read from the pinned vLLM wheel's source by `nox -s vllm_surface`. Against it:
every argument the engine assembles and every name or value the allowlist, the denylist and the
submission schema mention must exist in vLLM; every field vLLM has must be allowed, owned by the
evaluator, or denied with a reason; the start-up rules the harness mirrors must still be vLLM's;
and the sampling arguments and output fields the vLLM engine uses must exist. One report lists
every mismatch, so a vLLM bump reads as a list of decisions to make.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import vllm_surface
from gemma_eval import vllm_args, vllm_denied
from gemma_eval.engines import vllm_engine
from gemma_eval.params import Params
from gemma_eval.submission import check_submission, engine_kwargs
from gemma_eval.vllm_args import (
    ALLOWED_VALUES,
    ATTENTION_CONFIG,
    COMPILATION_CONFIG,
    ENGINE_ARGS,
    EVALUATOR_OWNED,
    SPECULATIVE_ARGS,
    Choice,
    Keys,
)
from gemma_helpers import EXAMPLES, SCHEMAS

SURFACE: dict[str, Any] = json.loads((vllm_surface.OUT).read_text(encoding="utf-8"))
VALUES: dict[str, list[Any]] = SURFACE["values"]
FIELDS: dict[str, list[str]] = SURFACE["fields"]
ENGINE_NAMES = set(SURFACE["parameters"]["LLM"]) | set(FIELDS["EngineArgs"])

# Each allowlisted object, the vLLM fields it draws on, and its denylist.
OBJECTS: dict[str, tuple[str, Mapping[str, Any], Mapping[str, str]]] = {
    "engine_args": ("EngineArgs", {**ENGINE_ARGS, **EVALUATOR_OWNED}, vllm_denied.DENIED),
    "speculative_config": ("SpeculativeConfig", SPECULATIVE_ARGS, vllm_denied.SPECULATIVE_DENIED),
    "compilation_config": ("CompilationConfig", COMPILATION_CONFIG, vllm_denied.COMPILATION_DENIED),
    "attention_config": ("AttentionConfig", ATTENTION_CONFIG, vllm_denied.ATTENTION_DENIED),
}


def names_of(cls: str) -> set[str]:
    return ENGINE_NAMES if cls == "EngineArgs" else set(FIELDS[cls])


def choices(table: Mapping[str, Any]) -> Iterator[tuple[str, Choice]]:
    for key, rule in table.items():
        if isinstance(rule, Choice):
            yield key, rule
        elif isinstance(rule, Keys):
            for sub, sub_rule in choices(rule.allowed):
                yield f"{key}.{sub}", sub_rule
            if isinstance(rule.also, Choice):
                yield key, rule.also


def surface_report() -> list[str]:
    """Every way the harness and the snapshot disagree, one line each (empty when they agree)."""
    version = SURFACE["vllm"]
    report: list[str] = []
    for where, (cls, allowed, denied) in OBJECTS.items():
        real = names_of(cls)
        for name in sorted((set(allowed) | set(denied)) - real):
            report.append(f"{where}: {name!r} is not a field of vLLM {version}'s {cls}")
        for name in sorted(real - set(allowed) - set(denied)):
            report.append(f"{where}: {cls}.{name} is neither allowed, owned by the evaluator, nor denied with a reason")
        for name in sorted(set(allowed) & set(denied)):
            report.append(f"{where}: {name!r} is both allowed and denied")
    for key in sorted(set(ALLOWED_VALUES) | set(vllm_denied.DENIED_VALUES)):
        real = VALUES.get(key)
        if real is None:
            report.append(f"values: vLLM {version} has no value set {key!r}")
            continue
        allowed, denied = set(ALLOWED_VALUES.get(key, ())), set(vllm_denied.DENIED_VALUES.get(key, {}))
        for value in sorted((allowed | denied) - set(real), key=str):
            report.append(f"values: {key} {value!r} does not exist in vLLM {version}")
        for value in [v for v in real if v not in allowed | denied]:
            report.append(f"values: {key} {value!r} is neither allowed nor refused with a reason")
        for value in sorted(allowed & denied, key=str):
            report.append(f"values: {key} {value!r} is both allowed and refused")
    drawn: dict[str, list[str]] = {}
    for where, (_, table, _) in OBJECTS.items():
        for key, choice in choices(table):
            if choice.values not in ALLOWED_VALUES:
                report.append(f"{where}.{key}: draws on {choice.values!r}, which has no allowed values")
            if where in ("engine_args", "speculative_config"):  # the nested configs are reached through engine_args
                drawn.setdefault(choice.values, []).append(f"{where}.{key}")
    for key, fields in vllm_denied.VALUE_FIELDS.items():  # what the standing rules built from denied.json read
        if sorted(fields) != sorted(drawn.get(key, [])):
            report.append(f"denied.json values.{key}.fields {fields} differ from the allowlist's {drawn.get(key, [])}")
    for key, (value, _) in EVALUATOR_OWNED.items():
        if value is not None and key in VALUES and value not in VALUES[key]:
            report.append(f"owned: {key} = {value!r} does not exist in vLLM {version}")
    if vllm_args.SPEC_METRICS not in VALUES["per_request_spec_decode_metrics"]:
        report.append(f"owned: per_request_spec_decode_metrics {vllm_args.SPEC_METRICS!r} does not exist")
    aliases = set(VALUES["mtp_model_types"]) - {"mtp"}
    if aliases != vllm_args.MTP_ALIASES:
        report.append(f"method: the MTP aliases differ from vLLM's: {sorted(vllm_args.MTP_ALIASES ^ aliases)}")
    for name, rule in SURFACE["rules"].items():
        if not rule["holds"]:
            report.append(f"rule {name} ({rule['meaning']}) no longer holds in vLLM {version}: review its users")
    return report + assembly_report() + schema_report()


def assembly_report() -> list[str]:
    """The engine's arguments for every valid example, by vLLM's own names, values and start rules."""
    report: list[str] = []
    params = Params()
    for example in sorted((EXAMPLES / "valid").iterdir()):
        submission = check_submission(example, min_model_len=params.min_model_len).submission
        assert submission is not None, example.name
        kwargs = engine_kwargs(submission, default_max_num_batched_tokens=params.default_max_num_batched_tokens)
        where = f"assembly of {example.name}"
        report += [f"{where}: vLLM has no argument {k!r}" for k in sorted(set(kwargs) - ENGINE_NAMES)]
        spec = kwargs.get("speculative_config") or {}
        unknown = sorted(set(spec) - set(FIELDS["SpeculativeConfig"]))
        report += [f"{where}: SpeculativeConfig has no {k!r}" for k in unknown]
        for key in ("dtype", "kv_cache_dtype", "quantization", "load_format", "logprobs_mode", "model_impl"):
            if key in kwargs and kwargs[key] not in VALUES[key]:
                report.append(f"{where}: {key} = {kwargs[key]!r} does not exist in vLLM")
        metrics = kwargs.get("per_request_spec_decode_metrics", "none")
        if SURFACE["rules"]["per_request_spec_decode_metrics_needs_speculative_config"]["holds"] and (
            metrics != "none" and not spec
        ):
            report.append(f"{where}: per_request_spec_decode_metrics={metrics!r} without speculative decoding")
        if SURFACE["rules"]["llm_disables_log_stats_unless_passed"]["holds"] and "disable_log_stats" not in kwargs:
            report.append(f"{where}: disable_log_stats is not passed, so LLM turns statistics off")
    return report


def _schema_enum(prop: Mapping[str, Any]) -> list[Any] | None:
    if "enum" in prop:
        return list(prop["enum"])
    return [prop["const"]] if "const" in prop else None


def schema_report() -> list[str]:
    """The submission schema's keys and enumerations against the allowlist (and so against vLLM)."""
    schema = json.loads((SCHEMAS / "gemma-submission.schema.json").read_text(encoding="utf-8"))
    props = schema["properties"]
    compilation = props["engine_args"]["properties"]["compilation_config"]["oneOf"][0]["properties"]
    objects = {
        "engine_args": (props["engine_args"]["properties"], ENGINE_ARGS),
        "speculative_config": (props["speculative_config"]["properties"], SPECULATIVE_ARGS),
        "compilation_config": (compilation, COMPILATION_CONFIG),
        "attention_config": (props["engine_args"]["properties"]["attention_config"]["properties"], ATTENTION_CONFIG),
    }
    report: list[str] = []
    owned = {k for k, (v, _) in EVALUATOR_OWNED.items() if v is not None}
    for where, (schema_props, table) in objects.items():
        expected = set(table) | (owned if where == "engine_args" else set())
        for name in sorted(set(schema_props) ^ expected):
            side = "the schema" if name in schema_props else "the harness"
            report.append(f"schema {where}: {name!r} is allowed only by {side}")
        for key, rule in table.items():
            expected_enum = list(ALLOWED_VALUES[rule.values]) if isinstance(rule, Choice) else None
            if expected_enum is not None and key in schema_props and _schema_enum(schema_props[key]) != expected_enum:
                report.append(f"schema {where}.{key}: its enum differs from the harness's {rule.values} values")
        for key in owned & set(schema_props) if where == "engine_args" else ():
            if schema_props[key].get("const", object()) != EVALUATOR_OWNED[key][0]:
                report.append(f"schema engine_args.{key}: not the evaluator's value")
    return report


def test_the_snapshot_is_of_the_pinned_vllm() -> None:
    assert SURFACE["format"] == "vllm-surface" and SURFACE["version"] == 1
    assert SURFACE["vllm"] == vllm_surface.pinned_version(), "run `nox -s vllm_surface` after bumping the image"
    assert SURFACE["wheel"].startswith(f"vllm-{SURFACE['vllm']}-") and len(SURFACE["wheel_sha256"]) == 64


def test_the_harness_matches_vllms_argument_surface() -> None:
    report = surface_report()
    assert report == [], f"{len(report)} mismatches with vLLM {SURFACE['vllm']}:\n" + "\n".join(report)


@pytest.mark.parametrize(
    ("table", "key", "expected"),
    [
        (vllm_denied.DENIED, "gguf_mode", "'gguf_mode' is not a field"),
        (vllm_denied.SPECULATIVE_DENIED, "trust_remote_code", "'trust_remote_code' is not a field"),
        (vllm_denied.COMPILATION_DENIED, "level", "'level' is not a field"),
    ],
)
def test_the_report_names_a_denied_name_vllm_lacks(
    monkeypatch: pytest.MonkeyPatch, table: dict[str, str], key: str, expected: str
) -> None:
    monkeypatch.setitem(table, key, "a reason")
    assert any(expected in line for line in surface_report())


def test_the_report_names_an_unclassified_field_and_a_missing_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(vllm_denied.DENIED, "kv_sharing_fast_prefill")
    monkeypatch.setitem(ALLOWED_VALUES, "load_format", (*ALLOWED_VALUES["load_format"], "gguf"))
    monkeypatch.setitem(ALLOWED_VALUES, "speculative_method", (*ALLOWED_VALUES["speculative_method"], "medusa"))
    report = "\n".join(surface_report())
    assert "EngineArgs.kv_sharing_fast_prefill is neither allowed, owned by the evaluator, nor denied" in report
    assert "load_format 'gguf' does not exist" in report
    assert "speculative_method 'medusa' does not exist" in report
    assert "schema engine_args.load_format: its enum differs" in report


def test_the_report_names_a_field_the_data_file_forgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """denied.json says which fields take each value set; the backend's standing rules read only those."""
    monkeypatch.setitem(vllm_denied.VALUE_FIELDS, "kv_cache_dtype", ["engine_args.kv_cache_dtype"])
    assert any("values.kv_cache_dtype.fields" in line for line in surface_report())


def test_the_denylist_is_data_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    doc = vllm_denied.load()
    assert doc["names"]["engine_args"]["trust_remote_code"] == vllm_denied.DENIED["trust_remote_code"]
    for key, paths in vllm_denied.VALUE_KEYS_OF.items():  # the objects keyed by a value set are allowlisted
        for path in paths:
            first, nested, name = path.split(".")
            rule = ENGINE_ARGS[nested]
            assert first == "engine_args" and isinstance(rule, Keys) and name in rule.allowed, (key, path)
    (tmp_path / "denied.json").write_text(json.dumps({"format": "other", "names": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a denylist"):
        vllm_denied.load(tmp_path / "denied.json")


def test_the_report_names_an_assembly_vllm_would_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bug this guards: per-request speculative counters on the bf16 baseline stop vLLM 0.33 at start."""

    def always_with_counters(*, speculative: bool) -> dict[str, Any]:
        return {"per_request_spec_decode_metrics": "summary", "disable_log_stats": False}

    monkeypatch.setattr("gemma_eval.submission.evaluator_settings", always_with_counters)
    report = assembly_report()
    assert "assembly of bf16_baseline: per_request_spec_decode_metrics='summary' without speculative decoding" in report
    assert not any("int4_qat_mtp" in line for line in report)


def test_the_speculative_methods_vllm_would_run_are_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(ALLOWED_VALUES, "speculative_method", ("mtp", "eagle", "eagle3", "draft_model"))
    folder = tmp_path / "sub"
    folder.mkdir()
    doc = {
        "format": "gemma-submission",
        "version": 1,
        "model": "google/gemma-4-E4B-it",
        "speculative_config": {"model": "google/gemma-4-E4B-it-assistant", "num_speculative_tokens": 7},
    }
    (folder / "submission.json").write_text(json.dumps(doc), encoding="utf-8")
    reasons = check_submission(folder, min_model_len=4096).reasons
    assert any("vLLM 0.33 may run method 'dflash' here (it depends on the draft's config" in r for r in reasons)
    doc["speculative_config"] = {"model": "org/my-dflash-drafter", "method": "draft_model", "num_speculative_tokens": 4}
    (folder / "submission.json").write_text(json.dumps(doc), encoding="utf-8")
    reasons = check_submission(folder, min_model_len=4096).reasons
    assert reasons and "would run method 'dflash' here (the draft's name contains 'dflash')" in reasons[0]


@pytest.mark.parametrize(
    ("spec", "methods"),
    [
        ({"model": "google/gemma-4-E4B-it-assistant"}, ("dflash", "dspark", "mtp", "draft_model")),
        ({"model": "google/gemma-4-E4B-it-assistant", "method": "mtp"}, ("dflash", "dspark", "mtp")),
        ({"model": "org/EAGLE-gemma", "method": "mtp"}, ("eagle",)),
        ({"model": "org/gemma-eagle-head"}, ("eagle",)),
        ({"model": "org/gemma-eagle-head", "method": "draft_model"}, ("eagle",)),
        ({"model": "org/Gemma-EAGLE3-head", "method": "draft_model"}, ("eagle3",)),
        ({"model": "org/gemma-DFlash-b16"}, ("dflash",)),
        ({"model": "org/gemma-dspark"}, ("dspark",)),
        ({"model": "org/gemma-eagle3", "method": "eagle"}, ("eagle",)),
        ({"model": "org/gemma-dflash", "method": "ngram"}, ("ngram",)),
        ({"method": "ngram"}, ("ngram",)),
        ({"method": "gemma4_mtp"}, ("mtp",)),
        ({"method": "gemma4_mtp", "model": "org/x-eagle3"}, ("eagle3",)),
        ({"model": "ngram"}, ("ngram",)),
        ({"model": "pkg.proposers.Fast"}, ("custom_class",)),
        ({"model": "https://x.y/z"}, ("dflash", "dspark", "mtp", "draft_model")),
    ],
)
def test_speculative_methods_follow_vllms_resolution(spec: dict[str, Any], methods: tuple[str, ...]) -> None:
    assert vllm_args.speculative_methods(spec)[0] == methods
    assert set(methods) <= set(VALUES["speculative_method"])


def test_every_method_the_resolution_can_give_exists_in_vllm() -> None:
    reachable = set(vllm_args._FROM_DRAFT_CONFIG) | vllm_args._FIXED_METHODS | vllm_args._HEAD_METHODS
    reachable |= {"draft_model", "mtp", *vllm_args.METHODS_NEEDING_MODEL}
    assert reachable <= set(VALUES["speculative_method"])


def test_the_sampling_arguments_and_calls_exist() -> None:
    sampling = set(FIELDS["SamplingParams"])
    assert set(vllm_engine.generation_sampling(512, True, ())) <= sampling
    assert set(vllm_engine.generation_sampling(64, False, (1, 106))) <= sampling
    assert set(vllm_engine.score_sampling()) <= sampling
    assert "prompt_token_ids" in FIELDS["TokensPrompt"]
    assert {"prompts", "sampling_params", "use_tqdm"} <= set(SURFACE["parameters"]["LLM.generate"])
    assert {"LLM", "SamplingParams", "TokensPrompt"} <= set(VALUES["exports"])


class Strict:
    """An object with exactly the fields vLLM's class has; reading anything else is recorded."""

    missing: ClassVar[list[str]] = []

    def __init__(self, cls: str, fields: list[str], **values: Any) -> None:
        assert set(values) <= set(fields), f"{cls} has no {set(values) - set(fields)}"
        self._cls = cls
        self.__dict__.update({name: values.get(name) for name in fields})

    def __getattr__(self, name: str) -> Any:
        Strict.missing.append(f"{self._cls}.{name}")
        raise AttributeError(name)


def test_the_output_fields_the_engine_reads_exist() -> None:
    Strict.missing = []
    spec = Strict(
        "RequestSpecDecodeMetrics", FIELDS["RequestSpecDecodeMetrics"], num_spec_tokens=3, histogram=[1, 0, 2, 1]
    )
    stats = Strict("RequestStateStats", FIELDS["RequestStateStats"], first_token_ts=1.0, last_token_ts=3.0)
    stats.first_token_latency = 0.25
    completion = Strict("CompletionOutput", FIELDS["CompletionOutput"], token_ids=[5, 6, 7], spec_decode_metrics=spec)
    output = Strict("RequestOutput", SURFACE["parameters"]["RequestOutput"], outputs=[completion], metrics=stats)
    generation = vllm_engine.read_generation(output)
    assert generation.token_ids == (5, 6, 7) and generation.decode_s == 2.0 and generation.ttft_s == 0.25
    assert generation.spec is not None and generation.spec.steps == 4 and generation.spec.accepted_tokens == 7

    def logprob(value: float, rank: int) -> Strict:
        return Strict("Logprob", FIELDS["Logprob"], logprob=value, rank=rank)

    rows = [None, {8: logprob(-0.1, 1)}, {9: logprob(-2.0, 2), 4: logprob(-0.5, 1)}]
    scores = vllm_engine.read_scores(rows, [2, 8, 9], 1)
    assert [(s.rank, s.top1_id) for s in scores] == [(1, 8), (2, 4)] and math.isclose(scores[1].margin, 1.5)
    assert Strict.missing == [], f"the engine reads fields vLLM lacks: {Strict.missing}"
