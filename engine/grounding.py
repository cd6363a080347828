"""Grounded citations: does the passage a claim cites support it?

A citation is *valid* when it names a passage that was in context (engine.claims); it is *grounded* when, in
addition, that passage supports the claim. Support is scored from two signals, both cheap:

    similarity  cos(MiniLM(claim), MiniLM(passage)), the embedder the run already loaded (the passage's vector
                is the index's, so only the claims are embedded)
    overlap     the share of the claim's content words (lower-cased, stop words out, plural -s folded) that
                occur in the passage

    support = SIMILARITY_WEIGHT * similarity + (1 - SIMILARITY_WEIGHT) * overlap;  grounded = support >= THRESHOLD

The weight and threshold are fitted on hand-labelled claim/passage pairs kept in
tests/data/grounding/labelled.jsonl (real claims of SmolLM2-135M runs on PubMedQA and the tooldocs corpus, each
paired with the passage it cited and with other passages of the same context; labels by reading). The fit is
checked in tests/engine/test_grounding.py; its accuracy is in docs/measurements.md (Grounded citations).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

#: Fitted on tests/data/grounding/labelled.jsonl (see the module doc): the grid point of best balanced accuracy
#: (weights 0..1 by 0.1, thresholds 0.2..0.925 by 0.025). The embedding helps with paraphrases; neither signal
#: catches a claim that reverses what its passage says.
SIMILARITY_WEIGHT = 0.3
THRESHOLD = 0.6

_STOP = frozenset("""a an the and or but if then than that this these those there here of to in on at by for with
from into onto over under about as is are was were be been being am do does did done has have had having it its
it's they them their we our you your he she his her i me my not no nor so such can could should would will shall
may might must also which who whom whose what when where why how all any each both few more most other some only
own same very just one two per via e.g. i.e. etc while during after before between within without among upon""".split())
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def content_words(text: str) -> set[str]:
    """Lower-cased words without stop words, plural -s folded ("passages" -> "passage")."""
    out = set()
    for w in _TOKEN.findall(text.lower()):
        if w in _STOP or len(w) < 2:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.add(w)
    return out


def overlap(claim: str, passage: str) -> float:
    """Share of the claim's content words found in the passage (0 when the claim has none)."""
    c = content_words(claim)
    return len(c & content_words(passage)) / len(c) if c else 0.0


def support(similarity: float, lexical: float, weight: float = SIMILARITY_WEIGHT) -> float:
    return weight * similarity + (1.0 - weight) * lexical


def is_grounded(similarity: float, lexical: float, *, weight: float = SIMILARITY_WEIGHT,
                threshold: float = THRESHOLD) -> bool:
    return support(similarity, lexical, weight) >= threshold


@dataclass(frozen=True)
class CitationCheck:
    """One citation of a claim (or of an answer sentence) and whether its passage supports it."""
    source: str              # claim | answer
    index: int               # the claim's (or answer sentence's) index in the run
    batch: int | None
    passage_id: str | None   # None for an invalid citation (names no passage in context)
    similarity: float | None
    overlap: float | None
    grounded: bool

    def as_trace(self) -> dict:
        d = asdict(self)
        for k in ("similarity", "overlap"):
            if d[k] is not None:
                d[k] = round(d[k], 4)
        return d


def check_citations(items: Sequence[tuple[str, int, int | None, list[str | None]]], vectors: np.ndarray,
                    texts: Sequence[str], passage_text: Callable[[str], str],
                    passage_vector: Callable[[str], np.ndarray]) -> list[CitationCheck]:
    """Check every citation of `items` = (source, index, batch, cited passage ids; None = invalid), whose texts
    are `texts` and embeddings `vectors` (one row each, unit-normalised). An invalid citation is never grounded."""
    out: list[CitationCheck] = []
    for (source, idx, batch, pids), text, v in zip(items, texts, vectors):
        for pid in pids:
            if pid is None:
                out.append(CitationCheck(source, idx, batch, None, None, None, False))
                continue
            pv = passage_vector(pid)
            sim = float(np.dot(v, pv) / ((np.linalg.norm(v) * np.linalg.norm(pv)) or 1.0))
            lex = overlap(text, passage_text(pid))
            out.append(CitationCheck(source, idx, batch, pid, sim, lex, is_grounded(sim, lex)))
    return out
