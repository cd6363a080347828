"""The quality benches: answer quality with the real engine, per profile (opt-in).

    pytest benches -m "quick and quality"       the quick profile's quality runs (`make quality`)
    pytest benches -m quality                    every profile (long)
    pytest benches/test_quality.py -k open       only the open-question corpus

Two corpora, one bench each, the same arms and scoring:
  test_quality       PubMedQA-L (1,000 abstracts, 3,358 passages; yes/no/maybe gold labels): bench 'quality'
  test_quality_open  benches/data/tooldocs (248 passages of installed packages' READMEs; 54 questions with
                     free-text gold answers and gold passage ids): bench 'quality_open'

Per profile, a fixed seeded sample of answered questions (analysis.quality.SAMPLE_SIZES; the seed is
analysis.quality.QUALITY_SEED) is researched over the whole corpus in four arms, in this order per question:
  1. retrieval, early exit on   (the engine as shipped: progressive)
  2. single-shot RAG            (strategy="single_shot": the top passages that fit, one prompt, one answer)
  3. closed-book                (same model, retrieval=False): the model-only baseline
  4. retrieval, early exit off  (only the first `n_off` questions of the sample; paired with arm 1)
  5. the other claim mode       (opt-in, RESEARCH_BENCH_QUALITY_CLAIM_ARMS=1: abstractive when the profile is
                                extractive, and the reverse; paired with arm 1)
  6. free claims                (opt-in, the same variable: no grammar, a full first batch: the engine before
                                claims were held to a grammar; paired with arm 1)
and scored by analysis.quality: yes/no/maybe accuracy (PubMedQA; 95 % Wilson interval) or ROUGE-L F1 against the
free-text gold answer (tooldocs; bootstrap interval), grounded-citation rate, citation validity, citation
precision against the gold passages, claims, tokens and time per question, the majority-class baseline
(yes/no/maybe corpora only), and the early-exit trade-off paired on the questions run in both
arms 1 and 4 (generated tokens and time saved; accuracy change with exact McNemar, grounded-rate and overlap
change with Wilcoxon and a bootstrap interval). PubMedQA questions are researched as polar (answer_type="polar":
the dataset defines them so); tooldocs questions with answer_type="auto" (detection).

Balanced and thorough use more questions (SAMPLE_SIZES) and take correspondingly longer (run times:
docs/measurements.md). RESEARCH_BENCH_QUALITY_SAMPLE=N,N_OFF overrides the sizes (the record stores them).

Every run goes through the harness's in-process runner with a timeout of 4 x the profile's timeout_s (answers
are measured here, not the budget; runs over the time budget are counted in extra.quality.runs), and a run
that fails or times out counts as a wrong answer and is listed. One record is stored per bench instance: the
summary in extra['quality'] (schemas/quality.schema.json), and as its telemetry the retrieval run of median wall
time, flagged extra['representative_telemetry'] (charts and exports use the quality metrics only).
The record is not gated: answer quality is measured and reported, it does not fail the session.
Accuracy, citations and token counts do not depend on machine load (greedy decoding); times do: the record
stores how much CPU other processes took while it ran (extra.quality.runs.foreign_cpu_share, overall and per
question), and the early-exit trade-off is stated in generated tokens first, time second.
"""
from __future__ import annotations

import os
import statistics
import time

import pytest

from llm_research_bench.engine.corpus import load_corpus
from llm_research_bench.engine.embed import shared_embedder
from llm_research_bench.engine.index import HNSWIndex
from llm_research_bench.engine.deadline import RunTimeout
from llm_research_bench.engine.envvars import env
from llm_research_bench.harness import records
from llm_research_bench.harness.analysis import quality
from llm_research_bench.harness.report.terminal import quality_lines
from llm_research_bench.harness.run import cpu
from llm_research_bench.harness.run import request
from llm_research_bench.harness.run.inprocess import run_in_process
from llm_research_bench.harness.run.verdicts import evaluate

pytestmark = [pytest.mark.quality]

#: The open-question corpus (free-text gold answers), committed beside the benches.
OPEN_CORPUS = os.path.join(os.path.dirname(__file__), "data", "tooldocs")


#: Per-run timeout = this x the profile's timeout_s: the bench measures answers, and a run slowed by a busy
#: machine should not turn into a wrong answer. Runs over the time budget are still counted (budget misses).
TIMEOUT_FACTOR = 4


def _run(question: str, profile, corpus, corpus_path, system_info, *, answer_type: str = "auto",
         **knobs) -> request.RunOutcome:
    req = request.RunRequest(question=question, profile=profile, corpus=corpus, corpus_path=corpus_path,
                             system_info=system_info, timeout_s=profile.timeout_s * TIMEOUT_FACTOR,
                             research_kwargs={"answer_type": answer_type, **knobs})
    out = run_in_process(req)
    exc = out.exception
    if exc is not None and not isinstance(exc, (Exception, RunTimeout)):
        raise exc                                    # Ctrl-C, SIGTERM: stop the bench (a timeout is an outcome)
    return out


def _outcome(out: request.RunOutcome, q, arm: str) -> quality.QuestionOutcome:
    if out.session is not None:
        return quality.outcome_from_session(out.session, q, arm, out.wall_s)
    tel = out.telemetry or {}
    m = tel.get("metrics") or {}
    return quality.QuestionOutcome(str(q.id), q.answer, None, arm, out.wall_s,
                                   tokens_generated=int(m.get("tokens_generated") or 0),
                                   gold_ids=list(q.gold_passage_ids), success=False,
                                   overlap=0.0 if q.answer and q.answer not in quality.DECISIONS else None)


ARMS = ("retrieval", "single_shot", "closed_book", "retrieval_no_early_exit", "retrieval_other_claim_mode",
        "retrieval_free")


def _plan(profile, with_early_exit_off: bool) -> list[tuple[str, object, dict]]:
    """(arm, profile, engine knobs) for one question, in run order."""
    plan = [("retrieval", profile, {}), ("single_shot", profile, {"strategy": "single_shot"}),
            ("closed_book", profile, {"retrieval": False})]
    if with_early_exit_off:
        plan.append(("retrieval_no_early_exit", profile, {"early_exit": False}))
    if env("QUALITY_CLAIM_ARMS") == "1":
        other = "abstractive" if profile.claim_mode == "extractive" else "extractive"
        plan += [("retrieval_other_claim_mode", profile.with_overrides(claim_mode=other), {}),
                 ("retrieval_free", profile.with_overrides(first_batch_size=profile.batch_size, first_batch_tokens=0),
                  {"grammar": False})]
    return plan


def _bench(research_bench, record_result, profile, say, *, corpus, corpus_path, bench: str, label: str,
           answer_type: str) -> quality.QualitySummary:
    warm = research_bench.warmup()
    n, n_off = quality.SAMPLE_SIZES.get(profile.name, quality.SAMPLE_SIZES["quick"])
    sizes = env("QUALITY_SAMPLE")                   # e.g. RESEARCH_BENCH_QUALITY_SAMPLE=2,1: a smoke run (stored as such)
    if sizes:
        n, n_off = (int(x) for x in (sizes.split(",") + ["0"])[:2])
    n = min(n, len([q for q in corpus.questions if q.answer]))
    sample = quality.sample_questions(corpus.questions, n, seed=quality.QUALITY_SEED)
    budget = research_bench.budget
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    arms: dict[str, list[quality.QuestionOutcome]] = {a: [] for a in ARMS}
    tels: list[tuple[float, dict]] = []
    failures: list[str] = []
    verdict_misses: dict[str, int] = {}
    foreign: list[float | None] = []
    overall = cpu.CpuWatch().__enter__()
    for i, q in enumerate(sample):
        fc = cpu.CpuWatch().__enter__()
        for arm, prof, knobs in _plan(profile, i < n_off):
            out = _run(q.question, prof, corpus, corpus_path, warm.system_info, answer_type=answer_type, **knobs)
            o = _outcome(out, q, arm)
            arms[arm].append(o)
            if out.status != request.COMPLETED:
                failures.append(f"{arm} q{q.id}: {out.status} ({out.error})")
            if arm == "retrieval" and out.telemetry is not None:
                tels.append((out.wall_s, out.telemetry))
                for code in evaluate(out.telemetry, budget).codes:
                    verdict_misses[code] = verdict_misses.get(code, 0) + 1
        fc.__exit__(None, None, None)
        foreign.append(None if fc.share is None else round(fc.share, 3))
        r, ss = arms["retrieval"][-1], arms["single_shot"][-1]

        def said(o: quality.QuestionOutcome) -> str:
            return o.decision if o.overlap is None else f"ROUGE-L {o.overlap:.2f}"

        say(f"{bench}[{profile.name}] {i + 1}/{n} q{q.id}: "
                           + (f"gold {q.answer}, " if q.answer in quality.DECISIONS else "")
                           + f"retrieval {said(r)} ({r.time_s:.1f} s, {r.tokens_generated} tok"
                           + (", early exit" if r.early_exit_triggered else "") + f"), single-shot {said(ss)} "
                           f"({ss.time_s:.1f} s), closed-book {said(arms['closed_book'][-1])}"
                           + (f", no-early-exit {said(arms['retrieval_no_early_exit'][-1])} "
                              f"({arms['retrieval_no_early_exit'][-1].tokens_generated} tok)" if i < n_off else "")
                           + (f" [other processes used {fc.share:.0%} of the CPUs]" if (fc.share or 0) > 0.2 else ""))
    overall.__exit__(None, None, None)

    summary = quality.quality_summary(
        arms, profile=profile.name, seed=quality.QUALITY_SEED, sample=sample, all_questions=corpus.questions,
        corpus={"id": corpus.id, "passages": len(corpus.passages), "questions": len(corpus.questions),
                "source": os.path.basename(corpus.source.rstrip("/")), "name": label},
        model=(tels[0][1].get("model") or {}).get("name") if tels else None, backend=research_bench.ctx.options.backend)
    summary.runs = {"retrieval_runs": len(arms["retrieval"]), "failed_or_timed_out": failures,
                    "budget_misses_by_reason": verdict_misses,
                    "bench_wall_s": round(time.perf_counter() - t_start, 1),
                    "load_avg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
                    "foreign_cpu_share": None if overall.share is None else round(overall.share, 3),
                    "foreign_cpu_share_per_question": foreign,
                    "sample_sizes": {"questions": n, "early_exit_off": min(n_off, n)}}
    stored = summary.as_dict()
    errs = records.validation_errors("quality", stored)
    assert not errs, errs
    for line in quality_lines(summary):
        say(line)

    assert tels, f"no retrieval run produced telemetry: {failures[:3]}"
    med = statistics.median_low([w for w, _ in tels])
    rep = next(t for w, t in tels if w == med)
    record_result(rep, profile=profile, bench=bench,
                  extra={"quality": stored, "representative_telemetry": True,
                         "representative": "the retrieval run of median wall time"},
                  check=False, gate=False)
    assert len(failures) < len(sample) * len(ARMS), f"most runs failed: {failures[:5]}"
    return summary


def test_quality(research_bench, record_result, profile):
    warm = research_bench.warmup()
    _bench(research_bench, record_result, profile, research_bench.progress, corpus=warm.corpus, corpus_path=warm.corpus_path,
           bench="quality", label="PubMedQA-L", answer_type="polar")


def test_quality_open(research_bench, record_result, profile):
    corpus = load_corpus(OPEN_CORPUS)
    HNSWIndex.build_or_load(corpus, shared_embedder())       # the index is built (or loaded) before any timed run
    _bench(research_bench, record_result, profile, research_bench.progress, corpus=corpus, corpus_path=OPEN_CORPUS,
           bench="quality_open", label="tooldocs", answer_type="auto")
