"""The harness end to end: run.py as a job runs it, the verdict rules, and whose fault each failure is."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from gemma_eval.engines.base import Engine, Generation
from gemma_eval.engines.fake import FakeEngine
from gemma_eval.errors import DataError, EngineFailure, InfrastructureError
from gemma_eval.evaluate import RunConfig, evaluate
from gemma_eval.params import Params
from gemma_eval.submission import Submission
from gemma_helpers import EXAMPLES, HARNESS, ROOT, SHORT, bf16_submission, schema_errors

from challenge_gemma import challenge_type
from provision.spec import ChallengeSpec

# The contract's path: the type's summary schema, its reference to the kit's schema resolved offline.
SUMMARY = challenge_type.summary_validator()


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, str(HARNESS / "run.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def assert_schema_valid(summary: dict[str, Any]) -> None:
    assert schema_errors(summary, "job-summary.schema.json") == []
    assert [e.message for e in SUMMARY.iter_errors(summary)] == []


def read(state: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state / "summary.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("example", sorted((EXAMPLES / "valid").iterdir()), ids=lambda p: p.name)
def test_run_py_with_the_fake_engine_scores_valid_examples(tmp_path: Path, example: Path) -> None:
    done = run("--submission-dir", str(example), "--state-dir", str(tmp_path / "state"), "--engine", "fake")
    assert done.returncode == 0, done.stderr
    summary = read(tmp_path / "state")
    assert_schema_valid(summary)
    assert summary["valid"] is True, summary["reasons"]
    assert summary["proxy"] is True and summary["rankable"] is False and summary["quality_gate"] == 1.0
    assert summary["protocol_standard"] is True and summary["output_len"] == 512
    assert summary["checks"] == dict.fromkeys(["submission", "tps", "consistency", "ppl", "agreement", "spot"], "pass")
    assert summary["tps_ci95"][0] <= summary["tps"] <= summary["tps_ci95"][1]
    assert summary["passes_completed"] == 3 and summary["warmup_requests"] == 8
    assert summary["provenance"]["engine"] == "fake" and summary["provenance"]["prompt_set"] == "sample"
    assert str(tmp_path) not in json.dumps(summary) and str(ROOT) not in json.dumps(summary)
    assert "proxy" in done.stdout
    unpinned = [n for n in summary["notes"] if "is not pinned" in n]
    assert unpinned and all("revision" in n for n in unpinned)  # the examples leave revision out
    assert "note: revision: model" in done.stdout


@pytest.fixture(scope="module")
def fake_summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A summary as run.py writes it, from the fake engine on the bf16 example."""
    state = tmp_path_factory.mktemp("fake-summary") / "state"
    example = EXAMPLES / "valid" / "bf16_baseline"
    done = run("--submission-dir", str(example), "--state-dir", str(state), "--engine", "fake")
    assert done.returncode == 0, done.stderr
    return read(state)


DROP = object()
BROKEN = [  # (field path, new value or DROP, where the error is reported)
    ("checks.tps", "maybe", "checks/tps"),  # Gemma fields beyond the score and the guards
    ("prompt_set", "leaked", "prompt_set"),
    ("tps_ci95", [1.0], "tps_ci95"),
    ("consistency", DROP, "$"),
    ("provenance.engine", 7, "provenance/engine"),
    ("surprise", 1, "$"),  # no field the schema does not define
    ("valid", "yes", "valid"),  # the kit's own fields, through the reference by $id
    ("provenance.evaluator_version", DROP, "provenance"),
]


@pytest.mark.parametrize(("path", "value", "where"), BROKEN, ids=[case[0] for case in BROKEN])
def test_the_type_contract_refuses_a_summary_that_breaks_the_gemma_schema(
    fake_summary: dict[str, Any], path: str, value: Any, where: str
) -> None:
    """The contract's summary schema is the full Gemma schema, not a restatement of a few of its fields."""
    assert list(SUMMARY.iter_errors(fake_summary)) == []
    broken = json.loads(json.dumps(fake_summary))
    *parents, last = path.split(".")
    node = broken
    for key in parents:
        node = node[key]
    if value is DROP:
        del node[last]
    else:
        node[last] = value
    errors = list(challenge_type.summary_validator().iter_errors(broken))
    assert errors, f"the type's summary schema let a summary with {path} changed through"
    assert where in {"/".join(map(str, e.absolute_path)) or "$" for e in errors}


@pytest.mark.parametrize("example", sorted((EXAMPLES / "invalid").iterdir()), ids=lambda p: p.name)
def test_run_py_refuses_invalid_examples_with_a_summary(tmp_path: Path, example: Path) -> None:
    done = run("--submission-dir", str(example), "--state-dir", str(tmp_path / "state"), "--engine", "fake")
    assert done.returncode == 0 and "Traceback" not in done.stderr
    summary = read(tmp_path / "state")
    assert_schema_valid(summary)
    assert summary["valid"] is False and summary["reasons"]
    assert summary["checks"]["submission"] == "fail" and summary["checks"]["tps"] == "not_run"
    assert summary["tps"] is None and summary["quality_gate"] == 1.0
    assert summary["provenance"]["submission_sha256"]


def test_run_py_with_the_tiny_gemma_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the tiny Gemma needs the gemma-cpu extra")
    overrides = tmp_path / "short.json"
    overrides.write_text(json.dumps(SHORT), encoding="utf-8")
    example = EXAMPLES / "valid" / "int4_qat_mtp"
    state = tmp_path / "state"
    done = run(
        "--submission-dir",
        str(example),
        "--state-dir",
        str(state),
        "--engine",
        "transformers",
        "--params",
        str(overrides),
    )
    assert done.returncode == 0, done.stderr
    summary = read(state)
    assert_schema_valid(summary)
    assert summary["valid"] is True, summary["reasons"]
    assert summary["protocol_standard"] is False and summary["rankable"] is False
    assert any("non-standard protocol" in n for n in summary["notes"])
    assert summary["consistency"]["violations"] == 0 and summary["agreement"]["top1"] == 1.0
    assert summary["provenance"]["engine_family"] == "tiny-gemma4-v1"
    assert summary["provenance"]["versions"]["torch"]
    assert summary["provenance"]["engine_args"]["speculative_config"]["num_speculative_tokens"] == 7


# ---------------------------------------------------------------- in-process runs with chosen engines


def config(tmp_path: Path, data: Path, params: Params | None = None, **changes: Any) -> RunConfig:
    base = RunConfig(
        submission_dir=bf16_submission(tmp_path),
        data_dir=data,
        private=False,
        params=params or Params().with_overrides(SHORT, source="tests"),
    )
    return dataclasses.replace(base, **changes)


def opener(engine: Engine) -> Any:
    return lambda submission, params: engine


def test_a_decode_only_sabotage_fails_the_run_while_its_ppl_passes(tmp_path: Path, sample_copy: Path) -> None:
    torch = pytest.importorskip("torch", reason="the tiny Gemma needs the gemma-cpu extra")
    from gemma_eval.engines.transformers_engine import TransformersEngine

    class RelaxedAcceptance(TransformersEngine):
        def _pick_next(self, logits: Any) -> int:
            top = torch.log_softmax(logits, -1).topk(2)
            return int(top.indices[1] if float(top.values[0] - top.values[1]) < 0.5 else top.indices[0])

    summary = evaluate(config(tmp_path, sample_copy), opener(RelaxedAcceptance()))
    assert_schema_valid(summary)
    assert summary["valid"] is False
    assert summary["checks"]["ppl"] == "pass" and summary["ppl"] <= summary["ppl_cap"]
    assert summary["checks"]["consistency"] == "fail"
    assert any("greedy self-consistency" in r for r in summary["reasons"])
    assert summary["checks"]["tps"] == "pass", "it is fast and full-length; only the decode check catches it"


def test_a_refused_submission_never_starts_an_engine(tmp_path: Path, sample_copy: Path) -> None:
    def must_not_start(submission: Submission, params: Params) -> Engine:
        raise AssertionError("a refused config must not reach the engine")

    refused = EXAMPLES / "invalid" / "relaxed_acceptance"
    summary = evaluate(config(tmp_path, sample_copy, submission_dir=refused, proxy=False), must_not_start)
    assert summary["valid"] is False and summary["proxy"] is False, "labelled by the engine kind the job runs"
    assert summary["quality_gate"] == 1.0 and summary["checks"]["tps"] == "not_run"
    assert_schema_valid(summary)


class Failing(FakeEngine):
    """Fails (as a crashing engine would) on its n-th request."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.seen = at, 0

    def generate(
        self, prompt_ids: Sequence[int], max_new_tokens: int, *, ignore_eos: bool, stop_token_ids: Sequence[int] = ()
    ) -> Generation:
        self.seen += 1
        if self.seen == self.at:
            raise EngineFailure("CUDA error: an illegal memory access was encountered")
        return super().generate(prompt_ids, max_new_tokens, ignore_eos=ignore_eos, stop_token_ids=stop_token_ids)


def test_an_engine_crash_is_the_submissions_failure(tmp_path: Path, sample_copy: Path) -> None:
    engine = Failing(at=5)
    closed: list[bool] = []
    engine.close = lambda: closed.append(True)  # type: ignore[method-assign]
    summary = evaluate(config(tmp_path, sample_copy), opener(engine))
    assert summary["valid"] is False and "illegal memory access" in summary["reasons"][0]
    assert closed == [True], "the engine is released whatever happens"
    assert_schema_valid(summary)


def test_an_engine_that_does_not_start_is_the_submissions_failure(tmp_path: Path, sample_copy: Path) -> None:
    def refuse(submission: Submission, params: Params) -> Engine:
        raise EngineFailure("vLLM did not start with this config: ValueError: fp8 KV cache needs ...")

    summary = evaluate(config(tmp_path, sample_copy), refuse)
    assert summary["valid"] is False and summary["checks"]["submission"] == "pass"
    assert "did not start" in summary["reasons"][0]
    assert_schema_valid(summary)


class Short(FakeEngine):
    def generate(
        self, prompt_ids: Sequence[int], max_new_tokens: int, *, ignore_eos: bool, stop_token_ids: Sequence[int] = ()
    ) -> Generation:
        out = super().generate(prompt_ids, max_new_tokens, ignore_eos=ignore_eos, stop_token_ids=stop_token_ids)
        return dataclasses.replace(out, token_ids=out.token_ids[: max_new_tokens - 1])


def test_a_wrong_token_count_invalidates_the_run(tmp_path: Path, sample_copy: Path) -> None:
    summary = evaluate(config(tmp_path, sample_copy), opener(Short()))
    assert summary["valid"] is False and summary["tps"] is None
    assert summary["checks"]["tps"] == "fail"
    assert "returned 23 tokens" in summary["reasons"][0]
    assert summary["all_outputs_full_length"] is False
    assert_schema_valid(summary)


def test_running_out_of_time_is_written_up(tmp_path: Path, sample_copy: Path) -> None:
    params = Params().with_overrides({**SHORT, "time_budget_s": 0.05}, source="tests")
    summary = evaluate(config(tmp_path, sample_copy, params), opener(FakeEngine()))
    assert summary["valid"] is False and "time budget ran out during warmup" in summary["reasons"][0]
    assert_schema_valid(summary)


def test_the_ppl_cap_from_the_spec_applies(tmp_path: Path, sample_copy: Path) -> None:
    summary = evaluate(config(tmp_path, sample_copy, ppl_cap=100.0), opener(FakeEngine()))
    assert summary["checks"]["ppl"] == "fail" and summary["ppl_cap"] == 100.0
    assert "above the cap 100.0000 (the collab spec" in summary["reasons"][0]
    relative = evaluate(config(tmp_path, sample_copy), opener(FakeEngine()))
    assert relative["ppl_cap"] == pytest.approx(relative["ppl_bf16"] * 1.05)


def test_a_job_passes_the_specs_cap_and_a_run_above_it_is_invalid(
    tmp_path: Path, spec_of: Callable[..., ChallengeSpec]
) -> None:
    spec = spec_of("gemma")
    cap = spec.scoring.metrics[0].guardrail.max  # type: ignore[union-attr]
    assert challenge_type.job_arguments(spec) == ("--ppl-cap", repr(float(cap)))  # what every job passes
    document = spec.model_dump()
    document["scoring"]["metrics"][0]["guardrail"]["max"] = 1.5  # a cap the stand-in's figures are above
    args = challenge_type.job_arguments(ChallengeSpec.model_validate(document))
    assert args == ("--ppl-cap", "1.5")
    example = EXAMPLES / "valid" / "bf16_baseline"
    done = run("--submission-dir", str(example), "--state-dir", str(tmp_path / "state"), "--engine", "fake", *args)
    assert done.returncode == 0, done.stderr
    summary = read(tmp_path / "state")
    assert summary["valid"] is False and summary["checks"]["ppl"] == "fail" and summary["ppl"] > 1.5
    assert (summary["ppl_cap"], summary["ppl_cap_source"]) == (1.5, "the collab spec (--ppl-cap)")
    assert any("above the cap 1.5000" in reason for reason in summary["reasons"])


def test_a_spec_without_the_ppl_guardrail_passes_no_cap(spec_of: Callable[..., ChallengeSpec]) -> None:
    spec = spec_of("gemma")
    document = spec.model_dump()
    document["scoring"]["metrics"] = []
    assert challenge_type.job_arguments(ChallengeSpec.model_validate(document)) == ()


class Real(FakeEngine):
    """The fake model, claiming to be a real engine: what a real run's verdict looks like."""

    def __init__(self) -> None:
        super().__init__()
        self.info = dataclasses.replace(self.info, proxy=False)


def as_set(folder: Path, name: str) -> Path:
    for path in [*folder.glob("*.json"), *folder.glob("baselines/*.json")]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if "set" in doc:
            path.write_text(json.dumps(doc | {"set": name}), encoding="utf-8")
    return folder


def test_only_a_standard_real_run_on_a_real_set_ranks(tmp_path: Path, sample_copy: Path) -> None:
    public = as_set(sample_copy, "public")
    ranked = evaluate(config(tmp_path, public, Params()), opener(Real()))
    assert ranked["valid"] is True and ranked["rankable"] is True and ranked["quality_gate"] == 0.0
    assert_schema_valid(ranked)
    short = evaluate(config(tmp_path, public), opener(Real()))
    assert short["valid"] is True and short["rankable"] is False, "a non-standard protocol never ranks"
    proxy = evaluate(config(tmp_path, public, Params()), opener(FakeEngine()))
    assert proxy["valid"] is True and proxy["quality_gate"] == 1.0, "a stand-in engine never ranks"


def test_a_private_run_requires_every_check(tmp_path: Path, sample_copy: Path) -> None:
    private = as_set(sample_copy, "private")
    summary = evaluate(config(tmp_path, private, private=True), opener(FakeEngine()))
    assert summary["valid"] is True and summary["prompt_set"] == "private"
    assert "skipped" not in summary["checks"].values()
    (private / "spot_items.json").unlink()
    with pytest.raises(InfrastructureError, match=r"spot_items\.json"):
        evaluate(config(tmp_path, private, private=True), opener(FakeEngine()))


def test_a_public_set_without_baseline_skips_agreement_with_a_note(tmp_path: Path, sample_copy: Path) -> None:
    (sample_copy / "baselines" / "fake-v1.json").unlink()
    (sample_copy / "spot_items.json").unlink()
    summary = evaluate(config(tmp_path, sample_copy, ppl_cap=5000.0), opener(FakeEngine()))
    assert summary["valid"] is True
    assert summary["checks"]["agreement"] == "skipped" and summary["checks"]["spot"] == "skipped"
    assert any("agreement skipped" in n for n in summary["notes"])
    with pytest.raises(InfrastructureError, match="no perplexity cap"):
        evaluate(config(tmp_path, sample_copy), opener(FakeEngine()))


def test_calibration_sets_thresholds_only(tmp_path: Path, sample_copy: Path) -> None:
    calibration = {"format": "gemma-calibration", "version": 1, "params": {"agreement_top1_min": 0.97}}
    (sample_copy / "calibration.json").write_text(json.dumps(calibration), encoding="utf-8")
    summary = evaluate(config(tmp_path, sample_copy), opener(FakeEngine()))
    assert summary["params"]["agreement_top1_min"] == 0.97
    assert summary["provenance"]["calibration_sha256"]
    calibration["params"] = {"output_len": 16}
    (sample_copy / "calibration.json").write_text(json.dumps(calibration), encoding="utf-8")
    with pytest.raises(DataError, match="only threshold parameters"):
        evaluate(config(tmp_path, sample_copy), opener(FakeEngine()))


# ---------------------------------------------------------------- infrastructure failures: no summary


def test_vllm_on_a_machine_without_it_is_an_infrastructure_failure(tmp_path: Path) -> None:
    state = tmp_path / "state"
    sample = ROOT / "challenge_gemma" / "data" / "sample"
    example = EXAMPLES / "valid" / "bf16_baseline"
    done = run(
        "--submission-dir", str(example), "--state-dir", str(state), "--engine", "vllm", "--data-dir", str(sample)
    )
    assert done.returncode == 3 and not (state / "summary.json").exists()
    assert "infrastructure failure" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        ("no-data", "prompts.json: missing"),
        ("private-is-sample", "the private folder holds a 'sample' set"),
        ("state-is-a-file", "infrastructure failure"),
        ("bad-cap", "--ppl-cap must be a perplexity above 1"),
        ("bad-params", "unknown parameter 'output_length'"),
    ],
)
def test_infrastructure_failures_exit_3_without_a_summary(
    tmp_path: Path, sample_copy: Path, setup: str, fragment: str
) -> None:
    state = tmp_path / "state"
    args = [
        "--submission-dir",
        str(EXAMPLES / "valid" / "bf16_baseline"),
        "--state-dir",
        str(state),
        "--engine",
        "fake",
    ]
    if setup == "no-data":
        args += ["--data-dir", str(tmp_path / "nowhere")]
    elif setup == "private-is-sample":
        args += ["--private-dir", str(sample_copy)]
    elif setup == "state-is-a-file":
        state.write_text("not a folder")
    elif setup == "bad-cap":
        args += ["--ppl-cap", "0.5"]
    else:
        (tmp_path / "p.json").write_text('{"output_length": 12}')
        args += ["--params", str(tmp_path / "p.json")]
    done = run(*args)
    assert done.returncode == 3, done.stdout + done.stderr
    assert fragment in done.stderr and "Traceback" not in done.stderr
    assert not (state / "summary.json").exists() if state.is_dir() else True


def test_the_uploaded_layout_finds_its_sets(tmp_path: Path) -> None:
    """Once uploaded, the harness folder holds data/ (the public set) and data/sample/ (for CPU checks)."""
    uploaded = tmp_path / "harness"
    shutil.copytree(HARNESS, uploaded, ignore=shutil.ignore_patterns("__pycache__"))
    state = tmp_path / "state"
    args = ["--submission-dir", str(EXAMPLES / "valid" / "int4_qat"), "--state-dir", str(state)]

    def run_uploaded(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(uploaded / "run.py"), *args, *extra], capture_output=True, text=True, check=False
        )

    missing = run_uploaded("--engine", "fake")
    assert missing.returncode == 3 and "no sample set" in missing.stderr
    assert run_uploaded("--engine", "vllm").returncode == 3
    shutil.copytree(ROOT / "challenge_gemma" / "data" / "sample", uploaded / "data" / "sample")
    done = run_uploaded("--engine", "fake")
    assert done.returncode == 0, done.stderr
    assert read(state)["valid"] is True and read(state)["prompt_set"] == "sample"


def test_a_missing_submission_folder_gets_an_invalid_summary(tmp_path: Path) -> None:
    done = run(
        "--submission-dir", str(tmp_path / "nowhere"), "--state-dir", str(tmp_path / "state"), "--engine", "fake"
    )
    assert done.returncode == 0
    summary = read(tmp_path / "state")
    assert summary["valid"] is False and "does not exist" in summary["reasons"][0]
    assert summary["provenance"]["submission_sha256"] is None
    assert_schema_valid(summary)


def test_usage_errors_exit_2() -> None:
    assert run("--state-dir", "x").returncode == 2
    assert run("--submission-dir", "x", "--state-dir", "y", "--engine", "tensorrt").returncode == 2
    help_text = run("--help").stdout
    for flag in ("--submission-dir", "--state-dir", "--private-dir", "--engine", "--ppl-cap", "--params"):
        assert flag in help_text


def test_a_seeded_harness_without_the_public_set_names_what_is_missing(tmp_path: Path) -> None:
    # As provisioning lays it out: the harness with the bundled sample in data/, no public set yet.
    harness = tmp_path / "harness"
    shutil.copytree(HARNESS, harness, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "challenge_gemma" / "data", harness / "data")
    done = subprocess.run(
        [sys.executable, str(harness / "run.py"), "--submission-dir", str(EXAMPLES / "valid" / "bf16_baseline"),
         "--state-dir", str(tmp_path / "state"), "--engine", "vllm", "--ppl-cap", "2.42"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "prompts.json is missing" in done.stderr and "scripts/" in done.stderr
    assert not (tmp_path / "state" / "summary.json").exists()
