"""Run the claim-format arms of the quality comparison on the same questions, one JSON line per run.

    .venv/bin/python scripts/quality_arms.py run --out FILE [--n 30] [--profile quick] [--corpora C ...] [--until HH:MM]
    .venv/bin/python scripts/quality_arms.py summary FILE [FILE ...]

`run` samples the quality benches' questions (harness.analysis.quality.sample_questions, its seed) from PubMedQA
(polar) and tooldocs (open), alternating the corpora question by question, and researches each in every arm:
    abstractive   progressive, claims and answer held to the grammar, claims in the model's words
    extractive    progressive, claims held to the grammar of sentences copied from the passage they cite
    extractive_whole_first
                  extractive with no prompt-token budget on the first batch (its passages shown whole)
    free          progressive without a grammar (claims and answer written freely, a first batch of the full
                  batch size): the engine's behaviour before the grammar
    single_shot   the top passages that fit, one prompt, one answer (held to the answer grammar)
    closed_book   no retrieval
It appends each outcome (harness.analysis.quality.QuestionOutcome.as_dict, with the corpus and the run's
citation validity and time to the first valid claim) as it goes, so a stopped run keeps what it measured;
`--until` stops starting questions after that UTC time. One backend serves every run (model loaded once).

`summary` reads the lines back: per corpus and arm (ARM@WEIGHTS where the run loaded a CPU copy of the model)
n, accuracy (Wilson 95 %) or ROUGE-L (bootstrap 95 %), the grounded-citation rate (Wilson 95 % over citations),
validity, tokens and time per question; and paired comparisons of each arm with `abstractive` (or `--base ARM`)
on the questions both ran: McNemar's exact test on accuracy, Wilcoxon with a bootstrap interval on the
per-question grounded rate and ROUGE-L.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from engine import research
from engine.backends import make_backend
from engine.corpus import load_corpus
from engine.deadline import RunTimeout
from engine.profiles import get_profile
from harness.analysis import quality

ROOT = Path(__file__).resolve().parents[1]
CORPORA = {"pubmedqa": (None, "polar"), "tooldocs": (str(ROOT / "benches" / "data" / "tooldocs"), "auto")}
ARMS = ("abstractive", "extractive", "extractive_whole_first", "free", "single_shot", "closed_book")


def _arm_kwargs(arm: str, prof) -> tuple[object, dict]:
    if arm == "extractive":
        return prof.with_overrides(claim_mode="extractive"), {}
    if arm == "extractive_whole_first":
        return prof.with_overrides(claim_mode="extractive", first_batch_tokens=0), {}
    if arm == "free":
        return prof.with_overrides(first_batch_size=prof.batch_size, first_batch_tokens=0), {"grammar": False}
    if arm == "single_shot":
        return prof, {"strategy": "single_shot"}
    if arm == "closed_book":
        return prof, {"retrieval": False}
    return prof.with_overrides(claim_mode="abstractive"), {}


def _deadline(hhmm: str) -> dt.datetime:
    """The UTC moment at HH:MM nearest now: within the last 12 hours (already past) or the next 12 (ahead)."""
    now = dt.datetime.now(dt.timezone.utc)
    t = dt.datetime.strptime(hhmm, "%H:%M").time()
    at = now.replace(hour=t.hour, minute=t.minute, second=0, microsecond=0)
    if at - now > dt.timedelta(hours=12):
        return at - dt.timedelta(days=1)
    return at if now - at < dt.timedelta(hours=12) else at + dt.timedelta(days=1)


def run(args) -> int:
    prof = get_profile(args.profile)
    backend = make_backend("llamacpp", prof.model_for("llamacpp"), context_window=prof.context_window,
                           timeout_s=prof.timeout_s)
    samples = {}
    for name, (path, answer_type) in CORPORA.items():
        if name not in args.corpora:
            continue
        corpus = load_corpus(path)
        samples[name] = (corpus, answer_type, quality.sample_questions(corpus.questions, args.n))
    done = set()
    if Path(args.out).exists():
        for line in Path(args.out).read_text().splitlines():
            r = json.loads(line)
            done.add((r["corpus"], r["question_id"], r["arm"]))
    stop = _deadline(args.until) if args.until else None
    for i in range(args.n):
        for name, (corpus, answer_type, sample) in samples.items():
            if stop and dt.datetime.now(dt.timezone.utc) >= stop:
                print("stopped at --until", flush=True)
                return 0
            if i >= len(sample):
                continue
            q = sample[i]
            for arm in args.arms:
                if (name, str(q.id), arm) in done:
                    continue
                p, kw = _arm_kwargs(arm, prof)
                t0 = time.perf_counter()
                try:
                    s = research(q.question, profile=p, backend=backend, corpus=corpus, answer_type=answer_type,
                                 timeout_s=0, **kw)     # answers are measured here, not the time budget
                    o = quality.outcome_from_session(s, q, arm, time.perf_counter() - t0)
                    m = s.telemetry["metrics"]
                    extra = {"weights": backend.weights, "citation_validity": m["citation_validity"],
                             "ttfc_s": m["time_to_first_claim_s"],
                             "ttft_s": m["ttft_s"], "claims_rejected": m["claims_rejected"]}
                except (Exception, RunTimeout) as e:    # a failed run counts as a wrong answer, as in the bench
                    backend.close()          # a run stopped inside llama.cpp leaves its context unusable: reload
                    backend = make_backend("llamacpp", prof.model_for("llamacpp"),
                                           context_window=prof.context_window, timeout_s=prof.timeout_s)
                    o = quality.QuestionOutcome(str(q.id), q.answer, None, arm, time.perf_counter() - t0,
                                                success=False, gold_ids=list(q.gold_passage_ids),
                                                overlap=0.0 if q.answer not in quality.DECISIONS else None)
                    extra = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
                row = {"corpus": name, **o.as_dict(), **extra}
                with open(args.out, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"{name} q{q.id} {arm}: correct={o.correct} overlap={o.overlap} grounded={o.grounded}/"
                      f"{o.all_citations} {o.time_s:.1f}s", flush=True)
    return 0


def _label(r: dict) -> str:
    """The arm, and the weights it ran on where they are not the shipped file's (rows without the key were)."""
    return r["arm"] if r.get("weights", "shipped") == "shipped" else f"{r['arm']}@{r['weights']}"


def _outcome(r: dict) -> quality.QuestionOutcome:
    keys = quality.QuestionOutcome.__dataclass_fields__
    return quality.QuestionOutcome(**{k: r[k] for k in keys if k in r})


def _fmt(x, nd=2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _ci(c) -> str:
    return "-" if not c else f"[{c[0]:.2f}, {c[1]:.2f}]"


def summary(files: list[str], base_arm: str = "abstractive") -> int:
    rows = [json.loads(line) for f in files for line in Path(f).read_text().splitlines() if line.strip()]
    for corpus in CORPORA:
        rs = [r for r in rows if r["corpus"] == corpus]
        if not rs:
            continue
        polar = corpus == "pubmedqa"
        print(f"\n{corpus}: per arm (quality = {'accuracy' if polar else 'ROUGE-L'}, 95 % interval)")
        print(f"{'arm':17s} {'n':>3s} {'quality':>7s} {'95 % CI':>14s} {'grounded':>8s} {'95 % CI':>14s} "
              f"{'validity':>8s} {'cites':>5s} {'tok/q':>6s} {'s/q':>6s} {'1st claim s':>11s}")
        by_arm = {a: [_outcome(r) for r in rs if _label(r) == a] for a in dict.fromkeys(map(_label, rs))}
        for arm, outs in by_arm.items():
            if not outs:
                continue
            a = quality.summarize_arm(outs)
            qual, ci = (a.accuracy, a.accuracy_ci95) if polar else (a.overlap, a.overlap_ci95)
            firsts = sorted(r["ttfc_s"] for r in rs if _label(r) == arm and r.get("ttfc_s") is not None)
            med = firsts[len(firsts) // 2] if firsts else None
            print(f"{arm:17s} {a.n:3d} {_fmt(qual):>7s} {_ci(ci):>14s} {_fmt(a.grounded_citation_rate):>8s} "
                  f"{_ci(a.grounded_citation_rate_ci95):>14s} {_fmt(a.citation_validity):>8s} "
                  f"{a.citations:5d} {_fmt(a.tokens_per_question, 0):>6s} {_fmt(a.time_per_question_s, 1):>6s} "
                  f"{_fmt(med):>11s}")
        base = {o.question_id: o for o in by_arm.get(base_arm, [])}
        print(f"paired with {base_arm} ({'accuracy: McNemar exact p' if polar else 'ROUGE-L: Wilcoxon'}; "
              f"grounded rate per question: mean change, bootstrap 95 %, Wilcoxon p)")
        for arm, outs in by_arm.items():
            pairs = [(o, base[o.question_id]) for o in outs if o.question_id in base and arm != base_arm]
            if not pairs:
                continue
            if polar:
                qp = quality.mcnemar_exact_p([o.correct for o, _ in pairs], [b.correct for _, b in pairs])
                qd = (sum(o.correct for o, _ in pairs) - sum(b.correct for _, b in pairs)) / len(pairs)
                qtext = f"accuracy change {qd:+.2f} (p {_fmt(qp, 3)})"
            else:
                pd = quality.paired_difference([o.overlap or 0 for o, _ in pairs], [b.overlap or 0 for _, b in pairs])
                qtext = f"ROUGE-L change {_fmt(pd.mean_change, 3)} {_ci(pd.ci95)} (p {_fmt(pd.p_value, 3)})"
            g = [(o.grounded_rate, b.grounded_rate) for o, b in pairs
                 if o.grounded_rate is not None and b.grounded_rate is not None]
            gd = quality.paired_difference([x for x, _ in g], [y for _, y in g])
            print(f"  {arm:17s} n={len(pairs):3d} {qtext}; grounded change {_fmt(gd.mean_change)} {_ci(gd.ci95)} "
                  f"(n={gd.n}, p {_fmt(gd.p_value, 3)})")
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--n", type=int, default=30)
    r.add_argument("--profile", default="quick")
    r.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    r.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=CORPORA)
    r.add_argument("--until", help="UTC HH:MM after which no new question is started")
    s = sub.add_parser("summary")
    s.add_argument("files", nargs="+")
    s.add_argument("--base", default="abstractive",
                   help="the arm every other is paired with (ARM, or ARM@WEIGHTS for a run on a CPU copy)")
    a = p.parse_args(argv)
    return run(a) if a.cmd == "run" else summary(a.files, a.base)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
