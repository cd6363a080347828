"""The final answer: what kind of answer the question asks for, the prompts, and the yes/no/maybe decision.

A polar (yes/no) question gets a decision: the backend picks "yes", "no" or "maybe" by the model's own
probabilities of those words right after "Answer:" where it exposes them (llama.cpp; Backend.stream's
`choose_first`), so a decision always parses; elsewhere (Ollama) it is parsed from the text (`parse_decision`)
and may be missing. Any other question gets a free-text answer of a few sentences with citations and no
decision. `detect_answer_type` tells the two apart; callers may say which it is instead.

Calibration ("Calibrate Before Use", Zhao et al. 2021): a small model's label probabilities carry a bias that
depends on the prompt. `calibrate` divides them by the probabilities the same conversation gives with its
question and evidence replaced by a content-free placeholder (`CONTENT_FREE`), and the decision is taken on the
result; the engine's default ("relative") divides by that prior over the content-free closed-book prompt's.
"""
from __future__ import annotations

import re
from typing import Mapping

SYNTHESIS_PREFILL = "Answer:"
POLAR, OPEN = "polar", "open"
ANSWER_TYPES = ("auto", POLAR, OPEN)
DECISIONS = ("yes", "no", "maybe")
#: The words the decision is picked among, each with the spellings whose first token counts towards it. The
#: first spelling is the one written into the answer.
DECISION_OPTIONS: dict[str, list[str]] = {d: [f" {d}", f" {d.capitalize()}", f" {d.upper()}"] for d in DECISIONS}

#: What replaces the question and every passage (and claim) in the content-free conversation.
CONTENT_FREE = "N/A"
#: How a decision is calibrated: "relative" (the default: divide by the content-free conversation's probabilities
#: over the content-free closed-book prompt's: keep that prompt's bias, remove what the research conversation
#: adds), "content_free" (divide by the content-free conversation's) or "none" (the raw probabilities decide).
CALIBRATIONS = ("relative", "content_free", "none")

_DECISION = re.compile(r"\b(yes|no|maybe)\b", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"answer\s*[:\-]\s*\**\s*(yes|no|maybe)\b", re.IGNORECASE)
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how"}
_IMPERATIVE = {"describe", "explain", "list", "name", "give", "summarize", "summarise", "compare", "tell", "define",
               "outline", "show", "find"}
_AUX = {"is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "should", "would", "will", "shall",
        "has", "have", "had", "may", "might", "must", "isn't", "aren't", "wasn't", "weren't", "don't", "doesn't",
        "didn't", "can't", "cannot", "couldn't", "shouldn't", "wouldn't", "won't", "hasn't", "haven't", "hadn't"}
_PREPOSITIONS = {"in", "on", "at", "for", "from", "to", "with", "by", "of", "under", "into", "about", "through"}
_WORD = re.compile(r"[a-z']+")


def detect_answer_type(question: str) -> str:
    """'polar' for a yes/no question, 'open' for any other.

    Open: a clause that starts with a wh-word ("How ...", "Vitamin D: what is known?") or an imperative
    ("Explain ..."), also after a preposition ("In which ways ..."). Polar: a question that starts with an
    auxiliary verb ("Do mitochondria ...?", "Is ...?"), or any other sentence ending in "?" ("Sternal fracture in
    children: a rare fracture?"). A statement without "?" is open. An alternative question ("Is it A or B?") reads
    as polar: pass answer_type="open" for it."""
    q = " ".join(question.strip().split()).lower()
    clauses = [c.strip() for c in re.split(r"[:;,(]|\s-\s", q) if c.strip()]
    for c in clauses:
        words = _WORD.findall(c)
        if words and (words[0] in _WH or words[0] in _IMPERATIVE
                      or (words[0] in _PREPOSITIONS and len(words) > 1 and words[1] in _WH)):
            return OPEN
    first = (_WORD.findall(q) or [""])[0]
    return POLAR if first in _AUX or q.endswith("?") else OPEN


def resolve_answer_type(question: str, answer_type: str | None) -> tuple[str, str]:
    """(answer type, how it was set: 'given' | 'detected'). `answer_type` is 'auto', None, 'polar' or 'open'."""
    if answer_type in (None, "auto"):
        return detect_answer_type(question), "detected"
    if answer_type not in (POLAR, OPEN):
        raise ValueError(f"answer_type '{answer_type}' is not one of {', '.join(ANSWER_TYPES)}")
    return answer_type, "given"


_POLAR_TAIL = ("Start with \"Answer: yes\", \"Answer: no\" or \"Answer: maybe\", then give one or two sentences of "
               "explanation that cite the passage numbers in square brackets.")
_OPEN_TAIL = ("Answer in two to four sentences that say what the evidence says, and cite the passage numbers in "
              "square brackets after each sentence, for example [2].")


def synthesis_request(question: str, answer_type: str = POLAR) -> str:
    """The last user turn of a progressive run: answer from the claims written so far."""
    tail = _POLAR_TAIL if answer_type == POLAR else _OPEN_TAIL
    return f"Now answer the question \"{question}\" from your claims above. {tail}"


def single_shot_request(question: str, evidence: str, answer_type: str = POLAR) -> str:
    """The one prompt of a single-shot run: the question, the top passages that fit, the task."""
    tail = _POLAR_TAIL if answer_type == POLAR else _OPEN_TAIL
    return f"Question: {question}\n\nEvidence passages:\n{evidence}\n\nAnswer the question from the evidence. {tail}"


def closed_book_request(question: str, answer_type: str = POLAR) -> str:
    if answer_type == POLAR:
        return (f"Question: {question}\n\nAnswer from what you know. Start with \"Answer: yes\", \"Answer: no\" or "
                f"\"Answer: maybe\", then give one sentence of explanation.")
    return f"Question: {question}\n\nAnswer from what you know in two to four sentences."


def parse_decision(text: str) -> str | None:
    """'Answer: yes ...' -> 'yes'. Falls back to the first yes/no/maybe word of the first line."""
    m = _ANSWER_LINE.search(text)
    if m:
        return m.group(1).lower()
    first = text.strip().splitlines()[0] if text.strip() else ""
    m = _DECISION.search(first)
    return m.group(1).lower() if m else None


def normalized(probs: Mapping[str, float]) -> dict[str, float]:
    """The probabilities scaled to sum to 1 over the options (uniform when they are all 0)."""
    total = float(sum(probs.values()))
    if total <= 0:
        return {k: 1.0 / len(probs) for k in probs}
    return {k: float(v) / total for k, v in probs.items()}


def calibrate(raw: Mapping[str, float], prior: Mapping[str, float], floor: float = 1e-9) -> dict[str, float]:
    """Raw option probabilities divided by the prior's (each normalized over the options), renormalized: the
    options the prompt favours regardless of its content lose that advantage. A zero prior counts as `floor`."""
    r, q = normalized(raw), normalized(prior)
    return normalized({k: r[k] / max(q.get(k, 0.0), floor) for k in r})


def pick(probs: Mapping[str, float]) -> str:
    """The most probable option; a tie goes to the option listed first."""
    order = list(probs)
    return max(order, key=lambda o: (probs[o], -order.index(o)))
