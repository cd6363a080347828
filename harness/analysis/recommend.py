"""Recommendations, pure: rules over the runs of one series (its newest commit) and over a quality summary. A rule
fires only when the numbers call for it; its message and `evidence` carry those numbers."""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..records import summarize
from ..units import num as fmt
from .quality import QualitySummary

#: The rules' thresholds: a part's share of wall time that dominates it; the batch sizer's own shrink threshold;
#: engine / raw decode rate; prompt tokens evaluated / unique context tokens; context gold recall.
PROMPT_EVAL_DOMINANT = DECODE_DOMINANT = PLAN_DOMINANT = 0.40
MEMORY_PRESSURE_HIGH = 0.85
DECODE_VS_RAW_LOW = 0.80
PREFIX_REUSE_POOR = 1.30
EARLY_EXIT_MIN_RUNS = 3
CONTEXT_GOLD_RECALL_LOW = 0.5
DEFAULT_CITATION_FLOOR = 0.5


@dataclass(frozen=True)
class Recommendation:
    rule: str                      # stable identifier of the rule
    severity: str                  # "warn" (a target is missed or quality is at risk) or "info"
    series: str                    # bench[profile] the evidence comes from
    message: str                   # one paragraph, evidence numbers inside
    evidence: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message}"


def _m(tel: dict, name: str) -> Any:
    return (tel.get("metrics") or {}).get(name)


def _metric(tels: Sequence[dict], name: str) -> float | None:
    """A telemetry metric's median over the runs."""
    return summarize(_m(t, name) for t in tels).median


def _native(tel: dict, key: str) -> float:
    return sum(c.get(key) or 0.0 for c in (tel.get("traces") or {}).get("calls", []))


def _where(series: str) -> str:
    return f"{series}: " if series else ""


#: The over-budget rule when one part of the run dominates: that part's share threshold and the advice.
_DOMINANT = {
    "prompt_eval": (PROMPT_EVAL_DOMINANT, "prompt evaluation takes {prompt_eval:.0%} of it ({pe_s} for {pe_tok:,.0f} "
                    "prompt tokens at {pe_tps}) against {decode:.0%} decoding: use a smaller context window (now "
                    "{ctx}) or smaller evidence batches (batch_size now {batch}) so fewer prompt tokens are "
                    "evaluated."),
    "decode": (DECODE_DOMINANT, "decoding takes {decode:.0%} of it ({dec_s} for {gen:,.0f} generated tokens): lower "
               "max_tokens (now {max_tok}) or the per-batch claim_tokens, or use a faster/smaller model."),
    "plan": (PLAN_DOMINANT, "the plan phase (model, embedder, corpus and index loading, retrieval) takes {plan:.0%} of "
             "it ({plan_s}; index built cold in {cold} of {runs} runs): warm the index cache before timing (one "
             "untimed run) or keep the model loaded between runs."),
}


def _over_budget(tels: Sequence[dict], budget: dict | None, series: str, **_: Any) -> list[Recommendation]:
    upper = (budget or {}).get("time_upper_s")
    med_t = _metric(tels, "execution_time_s")
    over = [t for t in tels if (_m(t, "execution_time_s") or 0) > upper] if upper else []
    if not over or med_t is None or med_t <= upper:
        return []
    pe = summarize(_native(t, "native_prompt_eval_s") for t in tels).median or 0.0
    dec = summarize(_native(t, "native_decode_s") for t in tels).median or 0.0
    plan = summarize((t.get("phases") or {}).get("plan_s") for t in tels).median or 0.0
    pe_tok, gen = _metric(tels, "prompt_tokens_evaluated") or 0, _metric(tels, "tokens_generated") or 0
    prof = tels[0].get("profile") or {}
    shares = {"prompt_eval": pe / med_t, "decode": dec / med_t, "plan": plan / med_t}
    ev = {"median_time_s": med_t, "time_upper_s": upper, "runs_over": len(over), "runs": len(tels),
          "prompt_eval_s": pe, "decode_s": dec, "plan_s": plan, "prompt_tokens_evaluated": pe_tok,
          "tokens_generated": gen, "context_window": prof.get("context_window"), "batch_size": prof.get("batch_size")}
    head = (f"{_where(series)}median run {fmt(med_t, 's')} is over the {fmt(upper, 's')} budget "
            f"({len(over)} of {len(tels)} runs over)")
    top = max(shares, key=shares.get)
    if shares[top] < _DOMINANT[top][0]:
        return [Recommendation("over_budget", "warn", series,
                               f"{head}; no single part dominates (prompt eval {shares['prompt_eval']:.0%}, decode "
                               f"{shares['decode']:.0%}, plan {shares['plan']:.0%}): compare with an older commit "
                               f"to find what grew.", ev)]
    cold = sum(1 for t in tels if (t.get("corpus") or {}).get("index_cache_hit") is False)
    advice = _DOMINANT[top][1].format(
        **shares, pe_s=fmt(pe, "s"), pe_tok=pe_tok, dec_s=fmt(dec, "s"), gen=gen, plan_s=fmt(plan, "s"), cold=cold,
        runs=len(tels), ctx=prof.get("context_window"), batch=prof.get("batch_size"), max_tok=prof.get("max_tokens"),
        pe_tps=fmt(_metric(tels, "prompt_eval_tokens_per_second"), "tok/s"))
    return [Recommendation(f"over_budget_{top}", "warn", series, f"{head}; {advice}",
                           {**ev, "cold_index_runs": cold} if top == "plan" else ev)]


def _memory_pressure(tels: Sequence[dict], series: str, **_: Any) -> list[Recommendation]:
    eff = _metric(tels, "memory_efficiency")
    steps = [p for t in tels for p in (t.get("traces") or {}).get("batch_size", [])]
    top = max((p.get("pressure") for p in steps if isinstance(p.get("pressure"), (int, float))), default=None)
    shrinks = sum(1 for p in steps if p.get("decision") == "shrink")
    if not any(x is not None and x > MEMORY_PRESSURE_HIGH for x in (eff, top)):
        return []
    peak, prof = _metric(tels, "memory_peak_mb"), tels[0].get("profile") or {}
    limit, batch, model = prof.get("memory_limit_mb"), prof.get("batch_size"), (tels[0].get("model") or {}).get("name")
    return [Recommendation("memory_pressure", "warn", series,
                           f"{_where(series)}memory pressure is high: median peak {fmt(peak, 'MB')} is "
                           f"{(eff or 0):.0%} of the {fmt(limit, 'MB')} limit, highest batch-time pressure "
                           f"{fmt(top, 'ratio')} (shrink threshold {MEMORY_PRESSURE_HIGH}), {shrinks} shrink "
                           f"decision(s): use a smaller batch_size (now {batch}) or a smaller model than {model}.",
                           {"memory_efficiency": eff, "max_pressure": top, "memory_peak_mb": peak,
                            "memory_limit_mb": limit, "shrinks": shrinks})]


def _early_exit(tels: Sequence[dict], series: str, **_: Any) -> list[Recommendation]:
    enabled = [t for t in tels if (t.get("profile") or {}).get("early_exit_enabled", True)
               and (t.get("profile") or {}).get("retrieval", "hnsw") != "none"]
    if len(enabled) < EARLY_EXIT_MIN_RUNS or any((t.get("early_exit") or {}).get("triggered") for t in enabled):
        return []
    thr = (enabled[0].get("profile") or {}).get("novelty_threshold")
    later = [n for t in enabled for n in ((t.get("traces") or {}).get("novelty") or [])[1:]]
    reasons = dict(Counter((t.get("early_exit") or {}).get("reason", "?") for t in enabled))
    ends = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
    low, med = (min(later), statistics.median(later)) if later else (None, None)
    msg = (f"{_where(series)}early exit never fired in {len(enabled)} runs: runs ended by {ends}; "
           + (f"the lowest novelty after the first batch was {low:.3f} (median {med:.3f}) against the threshold "
              f"{thr}, so the gate only costs scoring time here: raise novelty_threshold above {low:.2f} only if "
              f"answers hold up (check the quality bench's early-exit arm), or accept that the context window, not "
              f"novelty, bounds the evidence." if later else
              "no second batch was ever scored, so the context window or the token budget stops every run before "
              "novelty can."))
    return [Recommendation("early_exit_never_fires", "info", series, msg,
                           {"runs": len(enabled), "threshold": thr, "min_novelty": low, "median_novelty": med,
                            "end_reasons": reasons})]


def _citations(tels: Sequence[dict], series: str, citation_floor: float | None = None,
               **_: Any) -> list[Recommendation]:
    val = _metric(tels, "citation_validity")
    floor = DEFAULT_CITATION_FLOOR if citation_floor is None else citation_floor
    if val is None or val >= floor:
        return []
    cit, inv = (sum(_m(t, k) or 0 for t in tels) for k in ("citations", "invalid_citations"))
    return [Recommendation("citation_validity_low", "warn", series,
                           f"{_where(series)}citation validity {val:.0%} (median over {len(tels)} runs) is below "
                           f"the floor {floor:.0%}: {inv} of {cit} citations named a passage that was not in "
                           f"context: use fewer passages per batch (labels stay in view) or a model that follows "
                           f"the [n] citation format.",
                           {"citation_validity": val, "floor": floor, "citations": cit, "invalid": inv})]


def _decode_vs_raw(tels: Sequence[dict], series: str, raw_decode_tps: float | None = None,
                   **_: Any) -> list[Recommendation]:
    eng = _metric(tels, "tokens_per_second")
    ratio = eng / raw_decode_tps if raw_decode_tps and eng is not None else None
    if ratio is None or ratio >= DECODE_VS_RAW_LOW:
        return []
    return [Recommendation("decode_below_raw", "warn", series,
                           f"{_where(series)}engine decode {fmt(eng, 'tok/s')} is {ratio:.0%} of the raw backend's "
                           f"{fmt(raw_decode_tps, 'tok/s')} on the same model: look for per-token work in the "
                           f"streaming loop (claim parsing, callbacks) or thread contention with the memory "
                           f"sampler.", {"engine_decode_tps": eng, "raw_decode_tps": raw_decode_tps, "ratio": ratio})]


def _prefix_reuse(tels: Sequence[dict], series: str, **_: Any) -> list[Recommendation]:
    r = _metric(tels, "prefix_reuse_ratio")
    if r is None or r <= PREFIX_REUSE_POOR:
        return []
    ev, uq = _metric(tels, "prompt_tokens_evaluated"), _metric(tels, "unique_context_tokens")
    return [Recommendation("prefix_reuse_poor", "warn", series,
                           f"{_where(series)}the KV prefix cache is not reused: {fmt(ev)} prompt tokens evaluated "
                           f"for {fmt(uq)} unique context tokens ({r:.2f}x, {PREFIX_REUSE_POOR}x allowed): the "
                           f"context is being rewritten between calls; append evidence instead.",
                           {"prefix_reuse_ratio": r, "prompt_tokens_evaluated": ev, "unique_context_tokens": uq})]


RUN_RULES: tuple[Callable[..., list[Recommendation]], ...] = (
    _over_budget, _memory_pressure, _early_exit, _citations, _decode_vs_raw, _prefix_reuse)


def recommend_runs(telemetries: Sequence[dict], *, budget: dict | None = None, series: str = "",
                   citation_floor: float | None = None, raw_decode_tps: float | None = None) -> list[Recommendation]:
    """Every run rule over the telemetry documents of one series."""
    tels = [t for t in telemetries if t and t.get("metrics")]
    if not tels:
        return []
    return [rec for rule in RUN_RULES for rec in rule(tels, budget=budget, series=series,
                                                      citation_floor=citation_floor, raw_decode_tps=raw_decode_tps)]


def _quality_vs_baselines(q: QualitySummary, where: str, series: str) -> list[Recommendation]:
    m, r, maj, n = q.metrics, q.arm("retrieval"), q.majority, q.sample_size
    acc, acc_maj, acc_cb = m.get("accuracy"), m.get("accuracy_majority"), m.get("accuracy_closed_book")
    out = []
    if acc is not None and acc_maj is not None and acc <= acc_maj:
        out.append(Recommendation(
            "accuracy_not_above_majority", "warn", series,
            f"{where}answers are no better than always saying '{maj.label if maj else None}': accuracy "
            f"{acc:.0%} ({r.correct}/{n}) vs {acc_maj:.0%} ({maj.correct if maj else None}/{n}) for the majority "
            f"class on the same sample (closed-book {'n/a' if acc_cb is None else f'{acc_cb:.0%}'}; decisions "
            f"given: {r.decisions}): the model is too small to read the evidence; use a larger model (e.g. the "
            f"ollama backend's) before tuning retrieval.",
            {"accuracy": acc, "accuracy_majority": acc_maj, "accuracy_closed_book": acc_cb, "n": n}))
    if acc is not None and acc_cb is not None and acc <= acc_cb:
        p = q.p_value("retrieval_vs_closed_book")
        t, t_cb = m.get("time_per_question_s"), m.get("time_per_question_closed_book_s")
        out.append(Recommendation(
            "retrieval_no_gain", "warn", series,
            f"{where}retrieval adds no accuracy: {acc:.0%} with evidence vs {acc_cb:.0%} closed-book on the same {n} "
            f"questions (exact McNemar p = {fmt(p, 'ratio')}), at {fmt(t, 's')} vs {fmt(t_cb, 's')} per question.",
            {"accuracy": acc, "accuracy_closed_book": acc_cb, "p_value": p, "time_per_question_s": t,
             "time_per_question_closed_book_s": t_cb}))
    return out


def _quality_citations(q: QualitySummary, where: str, series: str) -> list[Recommendation]:
    m, n = q.metrics, q.sample_size
    cgr, prec, gr = m.get("context_gold_recall"), m.get("citation_precision"), m.get("gold_recall")
    if cgr is not None and cgr < CONTEXT_GOLD_RECALL_LOW:
        return [Recommendation(
            "gold_not_in_context", "warn", series,
            f"{where}the question's gold passages (PubMedQA: its own abstract) reached the context in only {cgr:.0%} "
            f"of {n} questions: raise retrieve_k / ef_search or put the top hits in the first batch.",
            {"context_gold_recall": cgr, "n": n})]
    if prec is not None and cgr is not None and prec < 0.5:
        return [Recommendation(
            "citations_off_gold", "info", series,
            f"{where}the gold passages were in context for {cgr:.0%} of questions, yet only {prec:.0%} of valid "
            f"citations name them (gold cited in {gr or 0:.0%} of questions): claims lean on neighbouring "
            f"passages; fewer passages per batch keep the model on the relevant one.",
            {"citation_precision": prec, "context_gold_recall": cgr, "gold_recall": gr})]
    return []


def _quality_early_exit(q: QualitySummary, where: str, series: str) -> list[Recommendation]:
    ee = q.early_exit
    ch, saved = ee.accuracy_change, ee.tokens_saved_share
    if ee.n and ch is not None and ch < 0:
        return [Recommendation(
            "early_exit_costs_accuracy", "warn", series,
            f"{where}early exit saved {(saved or 0):.1%} of generated tokens but cost {-ch:.0%} accuracy on {ee.n} "
            f"paired questions ({ee.accuracy_off or 0:.0%} -> {ee.accuracy_on or 0:.0%}): lower novelty_threshold.",
            {"accuracy_change": ch, "tokens_saved_share": saved, "n": ee.n})]
    if ee.n and ee.fired == 0:
        return [Recommendation(
            "early_exit_idle_in_quality", "info", series,
            f"{where}early exit fired in 0 of {ee.n} paired questions, so on vs off differs by {ee.tokens_saved} "
            f"generated tokens ({(saved or 0):.1%}) and {(ch or 0) * 100:+.1f} accuracy points: the gate is not "
            f"what bounds these runs.",
            {"fired": 0, "n": ee.n, "tokens_saved": ee.tokens_saved, "accuracy_change": ch})]
    return []


def recommend_quality(q: QualitySummary, *, series: str = "") -> list[Recommendation]:
    """Rules over one quality summary: against its baselines, its citations, its early-exit trade-off."""
    return [rec for rule in (_quality_vs_baselines, _quality_citations, _quality_early_exit)
            for rec in rule(q, _where(series), series)]


def recommend(records: Sequence[Any]) -> list[Recommendation]:
    """Every rule over stored ResultRecords: for each series, the runs of its newest commit on the newest record's
    machine; run rules read their telemetry, quality rules extra['quality']. The decode rule compares with the newest
    raw-backend decode rate any of them measured (a breakdown or engine-efficiency bench)."""
    from . import measures
    mine = measures.on_machine(records, measures.current_machine(records))
    raws = [(r.timestamp, v) for r in mine if (v := measures.record_values(r).get("raw_decode_tokens_per_second"))
            is not None]
    raw = max(raws, key=lambda x: x[0])[1] if raws else None
    out: list[Recommendation] = []
    for series, recs in sorted(measures.latest_commit_records(mine).items()):
        tels = [r.telemetry for r in recs if r.telemetry and not (r.extra or {}).get("representative_telemetry")]
        budget = next((r.budget for r in reversed(recs) if r.budget), None)
        out += recommend_runs(tels, budget=budget, series=series, citation_floor=(budget or {}).get("citation_floor"),
                              raw_decode_tps=raw)
        q = QualitySummary.of_record(recs[-1])
        out += recommend_quality(q, series=series) if q is not None else []
    return out
