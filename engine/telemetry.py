"""Telemetry documents: the schema, the one builder of a run's document, validation, and the writer.

    build(facts, system=..., store_text=..., success=..., timed_out=...) -> dict
                                the document of one run, from its RunFacts (engine.runlog); every figure is
                                measured, and a null figure has its reason under `unmeasured`
    schema()                    the JSON Schema (schemas/telemetry.schema.json); the harness reads metric specs
                                (units, directions) from it in harness/records.py
    validation_errors(doc), validate(doc)   schema check; TelemetryInvalid names the JSON path and the rule
    text_digest(text), redact(text)   how question and answer text are stored: a digest + length (text only on
                                request, redacted). The digest is SHA-256, or HMAC-SHA256 keyed with
                                $RESEARCH_BENCH_HASH_KEY when that is set, so a guessable question cannot be
                                confirmed from the store without the key; the document says which (`hash`, and
                                `hash_key_id`, an id of the key that reveals nothing of it). Machines that share
                                the key produce the same digests, so their runs of one question still match.
    check_destination(path), write(path, doc)   the telemetry file: checked before a run starts (a folder or an
                                unwritable place is a TelemetryPathError), written atomically after it; when the
                                write fails, the document goes to a fallback file that the result names

Cheap to import (no numpy, torch, psutil): the harness reads the schema and validates documents through it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .batching import adaptive_batch_effectiveness
from .claims import citation_counts
from .runlog import RunFacts
from .stream import itl_percentiles, tpot

# The folder of the JSON Schemas: the repository's schemas/ in a checkout, llm_research_bench/schemas/ (beside
# engine/) in an installed wheel.
SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
SCHEMA_PATH = SCHEMAS_DIR / "telemetry.schema.json"
SCHEMA_VERSION = "1.2"
#: Versions a reader of this version reads. 1.1 only adds to 1.0 (answer type, decision method, grounded
#: citations, the gate's decisions, single-shot runs) and redefines `novelty` as information gain (plain
#: passage novelty stays as `passage_novelty`); a 1.0 document simply lacks what 1.1 added. 1.2 gives three
#: metrics the seed's names (the schema's `x-renamed-to` maps the older names; harness/records.py applies it).
READABLE_VERSIONS = ("1.0", "1.1", "1.2")


class TelemetryInvalid(ValueError):
    """A telemetry document breaks the schema; the message names the JSON path and the rule."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator
    s = schema()
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)


def json_path(err) -> str:
    p = "$"
    for part in err.absolute_path:
        p += f"[{part}]" if isinstance(part, int) else f".{part}"
    return p


def validation_errors(doc: Any) -> list[str]:
    """Every schema violation as 'JSON path: rule broken (message)'; empty when valid."""
    errs = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{json_path(e)}: {e.validator} ({e.message})" for e in errs]


def validate(doc: Any) -> None:
    errs = validation_errors(doc)
    if errs:
        raise TelemetryInvalid(errs)


#: The environment variable holding the key of the keyed text hash (HMAC-SHA256). Unset: plain SHA-256.
HASH_KEY_ENV = "RESEARCH_BENCH_HASH_KEY"
_KEY_ID_MESSAGE = b"llm-research-bench hash key id"


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:           # lone surrogates (bytes that were not UTF-8): hashed, never a crash
        return text.encode("utf-8", "surrogateescape" if _escaped(text) else "surrogatepass")


def _escaped(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def sha256(text: str) -> str:
    """Plain SHA-256 of the text's UTF-8 bytes."""
    return hashlib.sha256(_utf8(text)).hexdigest()


def hash_key() -> bytes | None:
    """The key of the keyed text hash, from $RESEARCH_BENCH_HASH_KEY (None when unset or empty)."""
    key = os.environ.get(HASH_KEY_ENV, "")
    return key.encode("utf-8", "surrogateescape") if key else None


def hash_method() -> dict[str, str]:
    """How text digests are made now: {"hash": "sha256"}, or {"hash": "hmac-sha256", "hash_key_id": ID} where ID
    (16 hex digits, an HMAC of a fixed message) tells whether two runs used the same key without revealing it."""
    key = hash_key()
    if key is None:
        return {"hash": "sha256"}
    return {"hash": "hmac-sha256", "hash_key_id": hmac.new(key, _KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:16]}


def text_digest(text: str) -> str:
    """The stored digest of question or answer text: HMAC-SHA256 with the key when one is set, else SHA-256."""
    key = hash_key()
    return sha256(text) if key is None else hmac.new(key, _utf8(text), hashlib.sha256).hexdigest()


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<!\w)(?:\+?\d[\d\s().-]{7,}\d)(?!\w)")


def redact(text: str) -> str:
    """E-mail addresses and phone numbers replaced, for text that is stored or logged on request."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))



# ---- building the document -------------------------------------------------------------------------------------

_ALWAYS_UNMEASURED = {
    "mps_utilization": "GPU utilisation needs root (powermetrics) on macOS and is not sampled on other "
                       "platforms; not measured",
}


def build(facts: RunFacts, *, system: dict | None = None, store_text: bool = False, success: bool,
          timed_out: bool = False) -> dict:
    """The telemetry document of one run (schema_version SCHEMA_VERSION) from what it measured.

    `system` is the machine's facts (system_facts() when None); `store_text` keeps the question and answer text,
    redacted; `success` and `timed_out` say how the run ended. Every null metric gets its reason in
    `unmeasured`."""
    prof = facts.profile
    calls = facts.calls
    complete = [c for c in calls if c.complete]
    tokens = sum(c.tokens_generated for c in calls)
    dec_s = sum(c.native_decode_s or 0 for c in complete)
    dec_n = sum(c.native_decode_tokens or 0 for c in complete)
    pe_s = sum(c.native_prompt_eval_s or 0 for c in complete)
    pe_n = sum(c.prompt_tokens_evaluated for c in complete if c.native_prompt_eval_s)
    evaluated = sum(c.prompt_tokens_evaluated for c in calls)
    unique = max((c.prompt_tokens for c in calls), default=0)
    gen_wall = sum(c.e2e_s for c in calls)
    cit, val, inv = citation_counts(facts.claims)
    answer_cit = sum(len(c.citations) for c in facts.answer_claims)
    grounded = sum(1 for c in facts.citation_checks if c.grounded)
    peak = facts.memory_peak_mb
    decisions = facts.batch_size_decisions
    streamed = [b for b in facts.batches if b.streamed]
    unmeasured: dict[str, str] = dict(_ALWAYS_UNMEASURED)
    abe = adaptive_batch_effectiveness(decisions)
    if abe is None:
        unmeasured["adaptive_batch_effectiveness"] = "no batch was sized under high memory pressure (> 0.85)"
    metrics: dict[str, Any] = {
        "execution_time_s": round(facts.execution_time_s, 4),
        "cpu_time_s": round(facts.cpu_time_s, 3) if facts.cpu_time_s is not None else None,
        "ttft_s": calls[0].ttft_s if calls else None,
        "tpot_s": tpot(facts.timings, [c.tokens_generated for c in calls]),
        **itl_percentiles(facts.timings),
        "tokens_generated": tokens,
        "tokens_per_second": _ratio(dec_n, dec_s),
        "wall_tokens_per_second": _ratio(tokens, gen_wall),
        "prompt_tokens_evaluated": evaluated,
        "prompt_tokens_total": sum(c.prompt_tokens for c in calls),
        "unique_context_tokens": unique,
        "prompt_eval_tokens_per_second": _ratio(pe_n, pe_s),
        "prefix_reuse_ratio": _ratio(evaluated, unique),
        "context_utilization": (_ratio(facts.final_context_tokens, prof.context_window)
                                if facts.final_context_tokens else None),
        "memory_peak_mb": round(peak, 1) if peak is not None else None,
        "ru_maxrss_mb": round(facts.ru_maxrss_mb, 1),
        "memory_samples": facts.memory_samples,
        "memory_sample_hz": facts.memory_sample_hz,
        "streaming_chunks": sum(len(t.chunk_times) for t in facts.timings),
        "batches": len(streamed),
        "claims": len(facts.claims),
        "citations": cit, "valid_citations": val, "invalid_citations": inv,
        "citation_validity": _ratio(val, cit),
        "answer_citations": answer_cit,
        "grounded_citations": grounded,
        "grounded_citation_rate": _ratio(grounded, cit + answer_cit),
        "memory_efficiency": _ratio(peak, facts.memory_limit_mb),
        "context_efficiency": _ratio(unique, evaluated),
        "progressive_quality_score": (sum(1 for b in streamed if b.valid_citations) / len(streamed)
                                      if streamed else None),
        "adaptive_batch_effectiveness": abe,
        "mps_utilization": None,
        "time_to_first_claim_s": (round(facts.time_to_first_claim_s, 4)
                                  if facts.time_to_first_claim_s is not None else None),
        "claims_rejected": facts.claims_rejected,
    }
    for k, v in metrics.items():
        if isinstance(v, float):
            metrics[k] = round(v, 6)
        if v is None and k not in unmeasured:
            unmeasured[k] = _why_null(k, facts)
    if facts.token_count_method == "estimate":
        unmeasured.setdefault("unique_context_tokens_method", "Ollama exposes no tokenizer: context fitting used "
                                                              "an estimate of 3.5 characters per token")
    method = hash_method()
    label = facts.gold_answer if facts.gold_answer in ("yes", "no", "maybe") else None
    question: dict[str, Any] = {"sha256": text_digest(facts.question), **method, "length": len(facts.question),
                                "gold_answer": label, "gold_passage_ids": list(facts.gold_passage_ids),
                                "answer_type": facts.answer_type, "answer_type_source": facts.answer_type_source}
    if facts.gold_answer is not None and label is None:           # a free-text gold answer: hashed like the text
        question["gold_answer_sha256"] = text_digest(facts.gold_answer)
    answer: dict[str, Any] = {"decision": facts.decision, "decision_method": facts.decision_method,
                              "decision_probabilities": facts.decision_probabilities,
                              "decision_calibration": facts.decision_calibration,
                              "sha256": text_digest(facts.answer), **method, "length": len(facts.answer),
                              "sources": facts.answer_sources, "citations": answer_cit,
                              "grounded_citations": sum(1 for c in facts.citation_checks
                                                        if c.source == "answer" and c.grounded)}
    if store_text:
        question["text"] = redact(facts.question)
        answer["text"] = redact(facts.answer)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": facts.run_id,
        "started_at": facts.started_at,
        "profile": {"name": prof.name, "context_window": prof.context_window,
                    "memory_limit_mb": facts.memory_limit_mb, "batch_size": prof.batch_size,
                    "ef_search": prof.ef_search, "max_tokens": prof.max_tokens,
                    "novelty_threshold": prof.novelty_threshold, "timeout_s": prof.timeout_s,
                    "early_exit_enabled": facts.early_exit_enabled,
                    "retrieval": "hnsw" if facts.retrieval else "none", "strategy": facts.strategy,
                    "claim_format": facts.claim_format, "first_batch_size": prof.first_batch_size or prof.batch_size,
                    "first_batch_tokens": prof.first_batch_tokens},
        "backend": facts.backend,
        "model": facts.model if facts.model is not None else {"name": "(not loaded)"},
        "threads": _threads(facts),
        "corpus": {"id": facts.corpus_id, "format": facts.corpus_format, "passages": facts.corpus_passages,
                   "skipped_lines": facts.corpus_skipped_lines, "index_cache_hit": facts.index_cache_hit,
                   "embedding_model": facts.embedding_model or "none"},
        "question": question,
        "system": system if system is not None else system_facts(),
        "accelerator": {"llm": facts.llm_accelerator, "embedding": facts.embedding_device},
        "phases": {f"{p}_s": round(s, 4) for p, s in facts.phase_s.items()},
        "metrics": metrics,
        "unmeasured": unmeasured,
        "traces": {
            "batches": [b.as_trace() for b in facts.batches],
            "batch_size": [d.as_dict() for d in decisions],
            "novelty": list(facts.novelty_trace),
            "gate": [d.as_dict() for d in facts.gate_decisions],
            "grounding": [c.as_trace() for c in facts.citation_checks],
            "calls": [c.as_trace() for c in calls],
        },
        "early_exit": facts.early_exit.as_dict(),
        "answer": answer,
        "errors": facts.errors,
        "success": success,
        "timed_out": timed_out,
    }


def _threads(facts: RunFacts) -> dict:
    if facts.threads is not None:
        return dict(facts.threads)
    if facts.model is None:
        return {"n_threads": None, "source": "none", "reason": "no model was loaded"}
    return {"n_threads": None, "source": "none", "reason": "the backend reports no thread choice"}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _why_null(metric: str, facts: RunFacts) -> str:
    if metric == "cpu_time_s":
        return "the process tree's CPU times could not be read (psutil)"
    if not facts.calls:
        return "no generation call completed"
    return {
        "ttft_s": "the first call streamed no content",
        "tpot_s": "no call produced two or more tokens",
        "citation_validity": "no citation was made",
        "grounded_citation_rate": "no citation was made",
        "context_utilization": "the synthesis call did not complete",
        "progressive_quality_score": "no evidence batch was streamed",
        "time_to_first_claim_s": "no claim citing only passages in context was made",
    }.get(metric, "the backend did not report the counters this metric needs")


_SYSTEM_CACHE: dict | None = None


def system_facts() -> dict:
    """The machine's facts for the document's `system` (no Ollama probe; detected once per process)."""
    global _SYSTEM_CACHE
    if _SYSTEM_CACHE is None:
        from . import system as system_mod
        _SYSTEM_CACHE = system_mod.detect(probe_ollama_server=False).as_dict()
    return _SYSTEM_CACHE


# ---- writing the document ------------------------------------------------------------------------------------

class TelemetryPathError(ValueError):
    """The telemetry file cannot be written where asked (checked before the run); the message names the fix."""


def check_destination(path: str | os.PathLike) -> None:
    """Before a run: can the telemetry file be written at `path`? TelemetryPathError names the fix."""
    from .atomic import check_writable
    try:
        check_writable(path, example="telemetry.json")
    except OSError as e:
        raise TelemetryPathError(f"telemetry output: {e}") from None


@dataclass(frozen=True)
class Written:
    """Where a telemetry document went: `path` (None if nowhere), `requested`, and why it is not there (`error`)."""
    requested: Path
    path: Path | None
    error: str | None = None

    @property
    def note(self) -> str | None:
        """One line for people when the document is not where it was asked for; None when it is."""
        if self.error is None:
            return None
        if self.path is None:
            return (f"telemetry could not be written to {self.requested} ({self.error}) nor to a fallback file: "
                    f"free disk space or choose another --telemetry-out")
        return f"telemetry could not be written to {self.requested} ({self.error}): written to {self.path} instead"


def fallback_dirs() -> list[Path]:
    """Where a telemetry document goes when its own path fails: the current folder, then the temp folder."""
    return [Path.cwd(), Path(tempfile.gettempdir())]


def write(path: str | os.PathLike, doc: dict) -> Written:
    """Write `doc` to `path` atomically. Never raises for I/O: if `path` fails, the document is written (create
    only) to research-telemetry-<run_id>.json in a fallback folder, and the result says where and why."""
    from .atomic import write_json
    requested = Path(path)
    try:
        return Written(requested, write_json(requested, doc))
    except OSError as e:
        error = e.strerror or str(e)
    name = f"research-telemetry-{doc.get('run_id') or 'unknown'}.json"
    for folder in fallback_dirs():
        try:
            return Written(requested, write_json(folder / name, doc, exclusive=True), error)
        except OSError:
            continue
    return Written(requested, None, error)
