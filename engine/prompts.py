"""The words the model is given for each evidence batch (kept apart from the control flow)."""
from __future__ import annotations

from .corpus import Passage

MAX_PASSAGE_CHARS = 1500
CLAIM_PREFILL = "- "


def evidence_block(labelled: list[tuple[int, Passage]]) -> str:
    lines = []
    for label, p in labelled:
        text = p.text if len(p.text) <= MAX_PASSAGE_CHARS else p.text[:MAX_PASSAGE_CHARS].rsplit(" ", 1)[0] + " ..."
        lines.append(f"[{label}] {text}")
    return "\n".join(lines)


def _example(labelled: list[tuple[int, Passage]]) -> str:
    """A format example built from the first passage itself, so copying it still yields a true claim."""
    label, p = labelled[0]
    words = p.text.split(".")[0].split()[:14]
    return f"- {' '.join(words).rstrip(',;:')} [{label}]"


def _what(mode: str) -> str:
    """How a claim is worded: in the model's own short words, or a sentence copied from one passage."""
    if mode == "extractive":
        return "claims, each a sentence copied word for word from one passage,"
    return "short factual claims"


def first_batch(question: str, labelled: list[tuple[int, Passage]], max_claims: int,
                mode: str = "abstractive") -> str:
    return (f"Question: {question}\n\nEvidence passages:\n{evidence_block(labelled)}\n\n"
            f"Task: write up to {max_claims} {_what(mode)} that help answer the question, one per line, each "
            f"ending with its passage number in brackets, for example:\n{_example(labelled)}")


def next_batch(labelled: list[tuple[int, Passage]], max_claims: int, mode: str = "abstractive") -> str:
    what = "new claims, each a sentence copied from one passage," if mode == "extractive" else "new claims"
    return (f"More evidence passages:\n{evidence_block(labelled)}\n\n"
            f"Write up to {max_claims} {what} from these new passages only, in the same format, for "
            f"example:\n{_example(labelled)}")


def rest_of(labelled: list[tuple[int, Passage]]) -> str:
    """The unshown sentences of cut passages, put before the answer's request ("" when there are none)."""
    return "".join(f"The rest of passage [{label}]: {p.text}\n\n" for label, p in labelled)


def claims_wanted(batch_size: int) -> int:
    return max(2, min(6, batch_size // 2 + 1))
