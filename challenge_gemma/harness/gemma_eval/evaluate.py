"""One evaluation from start to verdict: the order of the phases and what each failure means.

Order: load the data (the evaluator's own inputs, so a problem there is infrastructure), check the
submission (refused: an invalid summary, no engine started), open the engine, warm up, time the
passes, re-score the timed outputs (self-consistency), teacher-forced PPL, agreement with the bf16
baseline, generative spot checks. The decode checks run on the tokens produced while timing, so
an engine cannot behave one way when timed and another when checked. A failure of the engine or
of the time budget stops the run and is written up as a reason; the verdict is valid only when
every required check ran and passed. Infrastructure errors propagate: the caller exits without a
summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gemma_eval import consistency, data, ppl, protocol, spot, summary
from gemma_eval.budget import Deadline
from gemma_eval.engines.base import Engine
from gemma_eval.errors import BudgetExceeded, DataError, EngineFailure, InfrastructureError
from gemma_eval.params import Params
from gemma_eval.submission import Submission, check_submission

EngineOpener = Callable[[Submission, Params], Engine]


@dataclass(frozen=True)
class RunConfig:
    """What one run evaluates, and against what.

    Attributes:
        submission_dir: The submission folder.
        data_dir: The evaluation set's folder.
        private: True when `data_dir` is the organizers' private set (all checks required).
        params: Parameters after command-line overrides (calibration.json is applied on top).
        ppl_cap: The absolute PPL cap from the collab spec, or None for bf16 PPL x (1 + ppl_cap_rel).
        job_id: The job's id, for provenance.
        proxy: Whether the engine that will serve is a stand-in; the engine's own word replaces it
            once it starts, and a refused submission is labelled by it.
    """

    submission_dir: Path
    data_dir: Path
    private: bool
    params: Params
    ppl_cap: float | None = None
    job_id: str | None = None
    proxy: bool = True


class _Report:
    """The summary being assembled: check statuses, reasons, notes, figures."""

    def __init__(self) -> None:
        self.checks: dict[str, str] = dict.fromkeys(summary.CHECKS, "not_run")
        self.reasons: list[str] = []
        self.notes: list[str] = []
        self.figures: dict[str, Any] = {}
        self.timings: dict[str, float] = {}

    def fail(self, check: str, reasons: list[str]) -> None:
        self.checks[check] = "fail"
        self.reasons += reasons

    def judge(self, check: str, ok: bool, reason: str) -> None:
        self.checks[check] = "pass" if ok else "fail"
        if not ok:
            self.reasons.append(reason)


def evaluate(config: RunConfig, open_engine: EngineOpener, *, wall: Callable[[], float] = time.time) -> dict[str, Any]:
    """Run the whole evaluation and return the summary (valid or not).

    Args:
        config: The run's inputs.
        open_engine: Starts the engine for a checked submission.
        wall: Wall clock for timestamps and the start-up share of the budget.

    Raises:
        InfrastructureError: The evaluator's inputs or environment failed; no summary is possible.
    """
    started = wall()
    evaluation = data.load_eval_data(config.data_dir)
    _check_set(evaluation, config.private)
    params = config.params.with_overrides(evaluation.calibration, allowed="threshold", source="calibration.json")
    report = _Report()
    provenance = summary.base_provenance(started, config.job_id) | _data_provenance(evaluation)
    proxy = config.proxy
    check = check_submission(config.submission_dir, min_model_len=params.min_model_len)
    provenance["submission_sha256"] = check.sha256
    report.notes += check.notes
    if check.submission is None:
        report.fail("submission", check.reasons)
    else:
        report.checks["submission"] = "pass"
        engine: Engine | None = None
        try:
            engine = open_engine(check.submission, params)
            proxy = engine.info.proxy
            provenance |= summary.engine_provenance(engine.info)
            provenance["submission_files"] = check.submission.files
            report.timings["engine_start_s"] = wall() - started
            _run_phases(
                engine,
                evaluation,
                config,
                params,
                report,
                provenance,
                budget_s=params.time_budget_s - (wall() - started),
            )
        except EngineFailure as exc:
            report.reasons.append(f"engine failure: {exc}")
        except BudgetExceeded as exc:
            report.reasons.append(f"{exc}; the run could not finish its required checks")
        finally:
            if engine is not None:
                _close(engine, report)
    return _assemble(report, params, evaluation, proxy, provenance, started, wall())


def _close(engine: Engine, report: _Report) -> None:
    try:
        engine.close()
    except Exception as exc:  # the verdict is already measured; a teardown error must not lose it
        report.notes.append(f"the engine did not shut down cleanly: {type(exc).__name__}: {exc}")


def _run_phases(
    engine: Engine,
    evaluation: data.EvalData,
    config: RunConfig,
    params: Params,
    report: _Report,
    provenance: dict[str, Any],
    budget_s: float,
) -> None:
    _check_engine_fits(engine, evaluation)
    baseline = data.load_baseline(config.data_dir, evaluation, engine.info.family)
    provenance["baseline_sha256"] = baseline.sha256 if baseline else None
    if config.private and (baseline is None or evaluation.spot is None):
        raise InfrastructureError(
            f"the private set needs baselines/{engine.info.family}.json and spot_items.json for every check"
        )
    ppl_cap, cap_source = _ppl_cap(config, params, baseline)
    prompts = evaluation.prompts.items
    deadline = Deadline(engine.clock, budget_s)
    spot_tokens = len(evaluation.spot.items) * params.spot_expected_tokens if evaluation.spot else 0

    mark = engine.clock()
    warmup_counts = protocol.run_warmup(engine, evaluation.prompts.warmup, params, deadline)
    report.timings["warmup_s"] = engine.clock() - mark
    mark = engine.clock()
    measured = protocol.measure_tps(engine, prompts, params, deadline, reserve_tokens=spot_tokens)
    measured.warmup_counts = warmup_counts
    report.timings["timed_passes_s"] = engine.clock() - mark
    report.figures |= protocol.tps_figures(measured, params)
    if measured.count_failures:
        report.fail("tps", measured.count_failures)
    else:
        report.judge("tps", measured.score is not None, "no timed pass completed")

    mark = engine.clock()
    checked = consistency.self_consistency(engine, prompts, measured.outputs, params.consistency_margin_nats, deadline)
    report.timings["consistency_s"] = engine.clock() - mark
    report.figures["consistency"] = checked.figures(params.consistency_max_rate, params.consistency_max_per_prompt)
    _judge_consistency(report, checked, params)

    mark = engine.clock()
    perplexity = ppl.score_references(engine, evaluation.references.items, deadline)
    report.timings["ppl_s"] = engine.clock() - mark
    _judge_ppl(report, perplexity, params, ppl_cap, cap_source, baseline)

    if baseline is None:
        report.checks["agreement"] = "skipped"
        report.notes.append(f"agreement skipped: this set has no baselines/{engine.info.family}.json")
    else:
        mark = engine.clock()
        agreed = consistency.bf16_agreement(engine, prompts, measured.outputs, baseline.outputs, deadline)
        report.timings["agreement_s"] = engine.clock() - mark
        report.figures["agreement"] = agreed.figures(params.agreement_top1_min)
        if agreed.problems:
            report.fail("agreement", agreed.problems)
        else:
            report.judge(
                "agreement",
                report.figures["agreement"]["ok"],
                f"teacher-forced top-1 agreement with bf16 is {agreed.top1:.4f}, below {params.agreement_top1_min}",
            )
    _diagnose_accuracy(engine, evaluation, measured, baseline, report)

    if evaluation.spot is None or baseline is None:
        report.checks["spot"] = "skipped"
        report.notes.append("spot checks skipped: this set has no spot items or no baseline correctness")
    else:
        mark = engine.clock()
        verdicts, mean_tokens = spot.run_spot_checks(
            engine, evaluation.spot.items, evaluation.spot.stop_token_ids, baseline.spot, params, deadline
        )
        report.timings["spot_s"] = engine.clock() - mark
        report.figures["spot"] = {
            "tasks": {v.task: v.figures() for v in verdicts},
            "mean_answer_tokens": mean_tokens,
            "ok": all(v.ok for v in verdicts),
        }
        failed = [
            f"spot check {v.task}: accuracy {100 * v.accuracy:.1f}% against bf16 {100 * v.baseline_accuracy:.1f}% "
            f"(drop {v.drop_points:.1f} points, McNemar p = {v.p_value:.3g})"
            for v in verdicts
            if not v.ok
        ]
        report.judge("spot", not failed, "; ".join(failed))


def _judge_consistency(report: _Report, checked: consistency.ConsistencyResult, params: Params) -> None:
    if checked.problems:
        report.fail("consistency", checked.problems)
        return
    figures = report.figures["consistency"]
    rate = figures["violation_rate"]
    report.judge(
        "consistency",
        figures["ok"],
        f"greedy self-consistency: {checked.violations} of {checked.positions} generated tokens "
        f"(rate {rate if rate is None else f'{rate:.4%}'}, "
        f"at most {figures['max_violations_per_prompt']} in one prompt) "
        f"were not the engine's own top-1 by more than {params.consistency_margin_nats} nats; allowed: "
        f"{params.consistency_max_rate:.2%} and {params.consistency_max_per_prompt} per prompt. "
        "The decode path does not produce what the model scores as its greedy choice",
    )


def _judge_ppl(
    report: _Report,
    perplexity: ppl.PplResult,
    params: Params,
    cap: float,
    cap_source: str,
    baseline: data.Baseline | None,
) -> None:
    worst = perplexity.max_record_ratio(baseline.ppl_records) if baseline else None
    report.figures |= {
        "ppl": perplexity.ppl,
        "ppl_num_tokens": perplexity.num_tokens,
        "ppl_num_records": len(perplexity.records),
        "ppl_mean_record": perplexity.mean_record_ppl(),
        "ppl_bf16": baseline.ppl if baseline else None,
        "ppl_cap": cap,
        "ppl_cap_source": cap_source,
        "ppl_max_record_ratio": worst[0] if worst else None,
    }
    if perplexity.problems:
        report.fail("ppl", ["perplexity sanity: " + p for p in perplexity.problems])
        return
    value = perplexity.ppl
    reasons = []
    if value is None or value > cap:
        reasons.append(f"perplexity {value} is above the cap {cap:.4f} ({cap_source})")
    if worst and worst[0] > params.ppl_record_ratio_max:
        reasons.append(
            f"one reference's perplexity is {worst[0]:.2f}x its bf16 value, above {params.ppl_record_ratio_max}x"
        )
    if reasons:
        report.fail("ppl", reasons)
    else:
        report.checks["ppl"] = "pass"


def _diagnose_accuracy(
    engine: Engine,
    evaluation: data.EvalData,
    measured: protocol.TpsResult,
    baseline: data.Baseline | None,
    report: _Report,
) -> None:
    """Grade the timed outputs of prompts that carry a gold letter (diagnostic only)."""
    golds = [p.gold for p in evaluation.prompts.items]
    stops = evaluation.prompts.stop_token_ids
    if not any(golds) or not stops:
        return
    correct, graded = spot.accuracy_at_output_len(engine, golds, measured.outputs, stops)
    figures: dict[str, Any] = {"graded": graded, "acc": correct / graded if graded else None, "baseline_acc": None}
    if baseline is not None:
        outputs = [baseline.outputs[p.id] for p in evaluation.prompts.items]
        base_correct, _ = spot.accuracy_at_output_len(engine, golds, outputs, stops)
        figures["baseline_acc"] = base_correct / graded if graded else None
    report.figures["acc_at_output_len"] = figures


def _check_set(evaluation: data.EvalData, private: bool) -> None:
    if private and evaluation.folder_set != "private":
        raise DataError(f"the private folder holds a {evaluation.folder_set!r} set")
    if not private and evaluation.folder_set == "private":
        raise DataError("a private set was passed as the public data folder; mount it with --private-dir")


def _check_engine_fits(engine: Engine, evaluation: data.EvalData) -> None:
    if engine.info.tokenizer != evaluation.prompts.tokenizer:
        raise DataError(
            f"the set is tokenized with {evaluation.prompts.tokenizer!r}, the {engine.info.kind} engine "
            f"expects {engine.info.tokenizer!r}"
        )
    ids = [t for p in (*evaluation.prompts.items, *evaluation.prompts.warmup) for t in p.token_ids]
    ids += [t for r in evaluation.references.items for t in (*r.context, *r.target)]
    if evaluation.spot:
        ids += [t for s in evaluation.spot.items for t in s.token_ids]
    if max(ids) >= engine.info.vocab_size:
        raise DataError(f"token id {max(ids)} is outside the engine's vocabulary of {engine.info.vocab_size}")


def _ppl_cap(config: RunConfig, params: Params, baseline: data.Baseline | None) -> tuple[float, str]:
    if config.ppl_cap is not None:
        return config.ppl_cap, "the collab spec (--ppl-cap)"
    if baseline is not None:
        return baseline.ppl * (1 + params.ppl_cap_rel), f"bf16 perplexity of this set x {1 + params.ppl_cap_rel:g}"
    raise InfrastructureError("no perplexity cap: pass --ppl-cap or add a baseline with its perplexity to the set")


def _data_provenance(evaluation: data.EvalData) -> dict[str, Any]:
    return {
        "prompt_set": evaluation.folder_set,
        "prompt_set_sha256": evaluation.prompts.sha256,
        "references_sha256": evaluation.references.sha256,
        "spot_items_sha256": evaluation.spot.sha256 if evaluation.spot else None,
        "calibration_sha256": evaluation.calibration_sha256,
        "baseline_sha256": None,
    }


def _assemble(
    report: _Report,
    params: Params,
    evaluation: data.EvalData,
    proxy: bool,
    provenance: dict[str, Any],
    started: float,
    finished: float,
) -> dict[str, Any]:
    required = [c for c, status in report.checks.items() if status != "skipped"]
    valid = not report.reasons and all(report.checks[c] == "pass" for c in required)
    nonstandard = params.nonstandard()
    if proxy:
        report.notes.append("proxy: a CPU stand-in engine served this run; its numbers never rank")
    if nonstandard:
        report.notes.append(f"non-standard protocol ({', '.join(nonstandard)} changed); this run never ranks")
    if evaluation.folder_set == "sample":
        report.notes.append("the bundled sample set is for trying the harness; runs on it never rank")
    rankable = valid and not proxy and not nonstandard and evaluation.folder_set != "sample"
    as_dict = params.as_dict()
    provenance |= {
        "params_sha256": summary.params_sha256(as_dict),
        "finished_at": summary.iso(finished),
        "duration_s": finished - started,
    }
    # Score and guardrail first, then the score's own figures, then the checks' details.
    order = ("tps", "ppl", "tps_ci95", "tps_passes", "consistency", "agreement", "spot", "acc_at_output_len")
    figures = dict.fromkeys(order) | report.figures
    return {
        "valid": valid,
        "rankable": rankable,
        "proxy": proxy,
        "quality_gate": 0.0 if rankable else 1.0,
        "reasons": report.reasons,
        "notes": report.notes,
        "checks": report.checks,
        "prompt_set": evaluation.folder_set,
        "num_prompts": len(evaluation.prompts.items),
        "output_len": params.output_len,
        **figures,
        "timings_s": report.timings,
        "protocol_standard": not nonstandard,
        "params": as_dict,
        "params_overridden": params.overridden(),
        "provenance": provenance,
    }
