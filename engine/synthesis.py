"""The final answer: its prompt, and the yes/no/maybe decision parsed from what the model wrote."""
from __future__ import annotations

import re

SYNTHESIS_PREFILL = "Answer:"
_DECISION = re.compile(r"\b(yes|no|maybe)\b", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"answer\s*[:\-]\s*\**\s*(yes|no|maybe)\b", re.IGNORECASE)


def synthesis_request(question: str) -> str:
    return (f"Now answer the question \"{question}\" from your claims above. Start with \"Answer: yes\", "
            f"\"Answer: no\" or \"Answer: maybe\", then give one or two sentences of explanation that cite the "
            f"passage numbers in square brackets.")


def closed_book_request(question: str) -> str:
    return (f"Question: {question}\n\nAnswer from what you know. Start with \"Answer: yes\", \"Answer: no\" or "
            f"\"Answer: maybe\", then give one sentence of explanation.")


def parse_decision(text: str) -> str | None:
    """'Answer: yes ...' -> 'yes'. Falls back to the first yes/no/maybe word of the first line."""
    m = _ANSWER_LINE.search(text)
    if m:
        return m.group(1).lower()
    first = text.strip().splitlines()[0] if text.strip() else ""
    m = _DECISION.search(first)
    return m.group(1).lower() if m else None
