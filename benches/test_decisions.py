"""The decision bench: does research make a polar answer better or worse than no research? (opt-in: -m quality)

    pytest benches/test_decisions.py -m "quick and quality"                       the smoke size (6 questions)
    RESEARCH_BENCH_DECISION_SAMPLE=200,60 pytest benches/test_decisions.py -m "quick and quality"   the measurement
    RESEARCH_BENCH_DECISION_LOG=runs.jsonl ...                          also append every run's material as it ends
    RESEARCH_BENCH_DECISION_SAMPLE=200,60,100 ...          run only the sample's questions from index 100 on (a
                                                           second process; `python benches/test_decisions.py
                                                           a.jsonl b.jsonl` summarizes the logs together)
    RESEARCH_BENCH_DECISION_SKIP=a.jsonl:b.jsonl ...       do not repeat the runs these logs hold completed (a run
                                                           that ended without a decision is run again)

A fixed seeded sample of PubMedQA-L questions (analysis.quality.sample_questions, QUALITY_SEED) is researched on the
quick profile in three runs per question: closed-book (no retrieval), progressive (the pipeline) and single-shot RAG
(only the first N_SINGLE_SHOT questions; default: all). Closed-book and progressive run over the whole sample first,
single-shot afterwards: a measurement stopped early holds the main pair on the most questions. Each run stores its
raw yes/no/maybe token probabilities and its content-free prior (engine telemetry: answer.decision_calibration), so
the arms closed-book, progressive raw, progressive calibrated and single-shot calibrated -- and the other
calibration methods of analysis.decisions -- come from the same runs. The answer text is cut at 16 tokens
(research's `answer_tokens`): the decision is its first word, and nothing before the answer changes.

Reported per arm and method (analysis.decisions.decision_summary, printed by report.decisions): accuracy with
its 95 % Wilson interval, macro-F1, the yes/no separation (AUC), the confusion matrix, time per question, the
right -> wrong and wrong -> right flips against closed-book, and exact McNemar p against closed-book and the
majority class. Every completed run's telemetry must validate against the schema and hold the method, the raw
and the calibrated probabilities. One record is stored (extra['decisions']; as its telemetry the progressive run
of median wall time); it is not gated.
"""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time

import pytest

from llm_research_bench.engine.deadline import RunTimeout
from llm_research_bench.engine.envvars import env
from llm_research_bench.engine.telemetry import validation_errors
from llm_research_bench.harness.analysis import decisions, quality
from llm_research_bench.harness.report import decisions as decisions_report
from llm_research_bench.harness.run import request
from llm_research_bench.harness.run.inprocess import run_in_process

pytestmark = [pytest.mark.quality, pytest.mark.profiles("quick")]

SMOKE_SIZE = 6
ANSWER_TOKENS = 16
#: Per-run timeout = this x the profile's timeout_s: a run a busy machine slows past it says nothing about its
#: decision (it is left out of the paired table and counted).
TIMEOUT_FACTOR = 8
#: arm -> (retrieval, strategy)
PLAN = {"closed_book": (False, "progressive"), "progressive": (True, "progressive"),
        "single_shot": (True, "single_shot")}


def _sizes() -> tuple[int, int, int]:
    """(questions, how many of them also run single-shot, the first one this process runs)."""
    raw = env("DECISION_SAMPLE")
    if not raw:
        return SMOKE_SIZE, SMOKE_SIZE, 0
    parts = [int(x) for x in raw.split(",")]
    return parts[0], parts[1] if len(parts) > 1 else parts[0], parts[2] if len(parts) > 2 else 0


def _decision_run(out: request.RunOutcome, q, arm: str) -> decisions.DecisionRun:
    """The decision material of one run from its telemetry (a failed run has none: it counts as wrong)."""
    ans = (out.telemetry or {}).get("answer") or {}
    cal = ans.get("decision_calibration") or {}
    raw = cal.get("raw_probabilities") or ans.get("decision_probabilities")
    ok = out.status == request.COMPLETED and raw
    return decisions.DecisionRun(str(q.id), q.answer, arm, dict(raw) if ok else None,
                                 dict(cal["prior"]) if ok and cal.get("prior") else None,
                                 ans.get("decision"), round(out.wall_s, 3), float(cal.get("time_s") or 0.0),
                                 bool(cal.get("cached")))


def _telemetry_faults(out: request.RunOutcome) -> list[str]:
    """What a completed polar run's telemetry lacks: schema errors, the method, the raw and the calibrated
    probabilities (a run that ended without a decision is left out of the table and not checked here)."""
    if out.status != request.COMPLETED or out.telemetry is None:
        return []
    ans = out.telemetry.get("answer") or {}
    cal = ans.get("decision_calibration") or {}
    missing = [k for k, v in (("decision_method", ans.get("decision_method")), ("raw_probabilities",
               cal.get("raw_probabilities")), ("decision_probabilities", ans.get("decision_probabilities"))) if not v]
    return validation_errors(out.telemetry) + [f"answer: no {k}" for k in missing]


def _one(q, arm: str, profile, warm) -> tuple[decisions.DecisionRun, request.RunOutcome]:
    retrieval, strategy = PLAN[arm]
    req = request.RunRequest(question=q.question, profile=profile, corpus=warm.corpus, corpus_path=warm.corpus_path,
                             system_info=warm.system_info,
                             research_kwargs={"retrieval": retrieval, "strategy": strategy, "answer_type": "polar",
                                              "answer_tokens": ANSWER_TOKENS,
                                              "timeout_s": profile.timeout_s * TIMEOUT_FACTOR},
                             timeout_s=profile.timeout_s * TIMEOUT_FACTOR)
    out = run_in_process(req)
    if out.exception is not None and not isinstance(out.exception, (Exception, RunTimeout)):
        raise out.exception                          # Ctrl-C, SIGTERM: stop the bench
    return _decision_run(out, q, arm), out


def _logged(paths: str | None) -> list[decisions.DecisionRun]:
    """The runs the DECISION_SKIP logs (os.pathsep-separated) hold with a decision."""
    runs: list[decisions.DecisionRun] = []
    for path in (paths or "").split(os.pathsep):
        if path:
            with open(path, encoding="utf-8") as fh:
                runs += [decisions.DecisionRun(**json.loads(line)) for line in fh if line.strip()]
    return [r for r in runs if r.raw]


def _schedule(sample, n_ss: int, start: int, done: set[tuple[str, str]]) -> list[tuple[int, object, list[str]]]:
    """(index, question, arms to run) in the order they run: closed-book and progressive over the sample, then
    single-shot over its first n_ss questions; the runs in `done` are left out."""
    plan = [(i, q, [a for a in ("closed_book", "progressive") if (str(q.id), a) not in done])
            for i, q in enumerate(sample) if i >= start]
    plan += [(i, q, ["single_shot"]) for i, q in enumerate(sample)
             if start <= i < n_ss and (str(q.id), "single_shot") not in done]
    return [(i, q, arms) for i, q, arms in plan if arms]


def test_decisions(research_bench, record_result, profile, say):
    warm = research_bench.warmup()
    n, n_ss, start = _sizes()
    sample = quality.sample_questions(warm.corpus.questions, n, seed=quality.QUALITY_SEED)
    log = env("DECISION_LOG")
    ids = {str(q.id) for q in sample[start:]}
    runs = [r for r in _logged(env("DECISION_SKIP")) if r.question_id in ids]     # repeated: the later one counts
    tels: list[tuple[float, dict]] = []
    faults: list[str] = []
    t0 = time.perf_counter()
    for i, q, arms in _schedule(sample, n_ss, start, {(r.question_id, r.arm) for r in runs}):
        line = []
        for arm in arms:
            run, out = _one(q, arm, profile, warm)
            runs.append(run)
            faults += [f"q{q.id} {arm}: {f}" for f in _telemetry_faults(out)]
            if arm == "progressive" and out.telemetry is not None:
                tels.append((out.wall_s, out.telemetry))
            if log:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(dataclasses.asdict(run)) + "\n")
            line.append(f"{arm} {run.decision} ({run.time_s:.1f} s)")
        say(f"decisions[{profile.name}] {i + 1}/{n} q{q.id}: gold {q.answer}; " + ", ".join(line))
    summary = decisions.decision_summary(runs, warm.corpus.questions, sample={
        "corpus": "PubMedQA-L", "seed": quality.QUALITY_SEED, "questions": n, "single_shot_questions": min(n_ss, n),
        "first_question": start,
        "profile": profile.name, "answer_tokens": ANSWER_TOKENS, "bench_wall_s": round(time.perf_counter() - t0, 1)})
    for text in decisions_report.summary_lines(summary):
        say(text)
    assert not faults, "telemetry of polar runs: " + "; ".join(faults[:5])
    assert tels, "no progressive run produced telemetry"
    med = statistics.median_low([w for w, _ in tels])
    rep = next(t for w, t in tels if w == med)
    record_result(rep, profile=profile, bench="decisions",
                  extra={"decisions": dataclasses.asdict(summary), "representative_telemetry": True,
                         "representative": "the progressive run of median wall time"}, check=False, gate=False)
    assert summary.n == len(sample) - start and all(a.n for a in summary.arms.values())


def summarize_logs(paths: list[str]) -> list[str]:
    """The summary lines of RESEARCH_BENCH_DECISION_LOG files (partial runs' too: the questions closed-book
    answered, every arm paired with it)."""
    from llm_research_bench.engine.corpus import load_corpus
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            runs += [decisions.DecisionRun(**json.loads(line)) for line in fh if line.strip()]
    summary = decisions.decision_summary(runs, load_corpus().questions, sample={"logs": paths})
    return decisions_report.summary_lines(summary)


if __name__ == "__main__":                           # python benches/test_decisions.py runs.jsonl [more.jsonl]
    import sys
    print("\n".join(summarize_logs(sys.argv[1:])))
