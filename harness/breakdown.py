"""The performance breakdown: pure logic over measured telemetry (phase shares, native time split, prompt
cache use, growth fits) and the scaled corpora the corpus-size bench runs on.

Metric names, units and directions: schemas/breakdown.schema.json (`metric_specs()`).

Scaled corpora (`scaled_corpus(corpus, n)`), built from PubMedQA-L's 1,000 abstracts (3,358 passages):
- n <= 3,358: whole abstracts in corpus order until n passages (the last abstract may be cut short);
- n  > 3,358: every passage, then sentence-level splits of the multi-sentence passages in corpus order
  (sentences of >= 5 words; a passage that is one sentence adds nothing, so no split repeats a passage)
  until n. The ids are "<passage id>#s<j>". The corpus holds ~8,600 such sentences, so up to ~12,000 passages.
"""
from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "breakdown.schema.json"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
MIN_SENTENCE_WORDS = 5


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def metric_specs() -> dict[str, dict]:
    return schema()["properties"]["metrics"]["properties"]


def validation_errors(summary: dict) -> list[str]:
    from jsonschema import Draft202012Validator
    v = Draft202012Validator(schema())
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in v.iter_errors(summary)]


# -- one run's time -----------------------------------------------------------------------------------------

def phase_shares(telemetry: dict) -> dict[str, float]:
    """'phase_share_<phase>' -> share of execution_time_s spent in that phase (phases from the telemetry)."""
    total = telemetry["metrics"]["execution_time_s"]
    if not total:
        return {}
    return {f"phase_share_{k[:-2] if k.endswith('_s') else k}": v / total for k, v in telemetry["phases"].items()}


def native_split(telemetry: dict) -> dict[str, float | None]:
    """Where generation time went, from the backend's own counters summed over the calls: prompt evaluation,
    decoding, and the rest (sampling, detokenising, the engine's streaming loop), each as seconds and as a
    share of the run's wall time."""
    calls = telemetry["traces"]["calls"]
    total = telemetry["metrics"]["execution_time_s"] or 0.0
    pe = sum(c.get("native_prompt_eval_s") or 0.0 for c in calls)
    dec = sum(c.get("native_decode_s") or 0.0 for c in calls)
    gen = sum(c.get("e2e_s") or 0.0 for c in calls)
    return {
        "prompt_eval_s": pe, "decode_s": dec, "generation_wall_s": gen,
        "generation_other_s": max(0.0, gen - pe - dec),
        "prompt_eval_share": pe / total if total else None,
        "decode_share": dec / total if total else None,
        "generation_other_share": max(0.0, gen - pe - dec) / total if total else None,
    }


def prompt_cache_hit_share(telemetry: dict) -> float | None:
    """Share of the prompt tokens sent that the backend did not evaluate (served from the KV prefix cache)."""
    m = telemetry["metrics"]
    total = m.get("prompt_tokens_total") or 0
    return 1.0 - m["prompt_tokens_evaluated"] / total if total else None


# -- growth -------------------------------------------------------------------------------------------------

def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares (slope, intercept); None with fewer than two distinct x."""
    n = len(xs)
    if n < 2 or len(set(xs)) < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def loglog_exponent(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """b in y ~ x^b (least squares on logs): 1 = linear growth, 0 = flat. None if any value is <= 0."""
    if any(x <= 0 for x in xs) or any(y <= 0 for y in ys):
        return None
    fit = linear_fit([math.log(x) for x in xs], [math.log(y) for y in ys])
    return fit[0] if fit else None


def growth_summary(points: Sequence[dict], x: str, ys: Sequence[str]) -> dict[str, dict]:
    """For each y: slope per 1,000 units of x, the log-log exponent, and the ratio of the largest-x value to the
    smallest-x value."""
    pts = sorted((p for p in points if p.get(x) is not None), key=lambda p: p[x])
    out = {}
    for y in ys:
        pp = [p for p in pts if isinstance(p.get(y), (int, float))]
        xs, vs = [p[x] for p in pp], [p[y] for p in pp]
        fit = linear_fit(xs, vs)
        out[y] = {"per_1k": fit[0] * 1000 if fit else None, "exponent": loglog_exponent(xs, vs),
                  "ratio_max_min": (vs[-1] / vs[0]) if len(vs) >= 2 and vs[0] else None}
    return out


# -- scaled corpora -----------------------------------------------------------------------------------------

def sentence_splits(passages: Sequence[Any]) -> list[tuple[str, str]]:
    """(id, text) of the sentences of multi-sentence passages, in corpus order (see module doc)."""
    out = []
    for p in passages:
        sents = [s for s in _SENTENCE.split(p.text) if len(s.split()) >= MIN_SENTENCE_WORDS]
        if len(sents) >= 2:
            out += [(f"{p.id}#s{j}", s) for j, s in enumerate(sents)]
    return out


def scaled_corpus(corpus: Any, n: int) -> Any:
    """A corpus of exactly n passages built from `corpus` (an engine Corpus) as the module doc says; its
    questions are those whose gold passages are all inside."""
    from engine.corpus import Corpus, Passage

    base = list(corpus.passages)
    if n <= 0:
        raise ValueError("n must be positive")
    if n <= len(base):
        passages = base[:n]
        how = "abstracts"
    else:
        splits = sentence_splits(base)
        need = n - len(base)
        if need > len(splits):
            raise ValueError(f"{n:,} passages asked, but {len(base):,} passages + {len(splits):,} sentence splits "
                             f"= {len(base) + len(splits):,} is the most this corpus gives")
        passages = base + [Passage(pid, text, None) for pid, text in splits[:need]]
        how = "abstracts+sentences"
    ids = {p.id for p in passages}
    questions = [q for q in corpus.questions if q.gold_passage_ids and all(g in ids for g in q.gold_passage_ids)]
    return Corpus(passages, questions, corpus.source, f"{corpus.format}:scaled-{how}-{n}")
