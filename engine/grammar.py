"""Output formats the model cannot break: claims and answers held to a grammar, built per call from the labels
of the passages in context.

An `OutputFormat` carries the same format twice: as GBNF (llama.cpp's grammar, `LlamaGrammar.from_string`) and as
a JSON Schema (Ollama's structured outputs, its `format` argument), with `render`, which turns the JSON a
structured-output call returns into the text the claim parser reads. Either way a citation can only be a label
of a passage in context, so every citation the model writes is valid by construction; the claim parser still
checks each one (engine.claims), and the pipeline counts anything it rejects.

Claim modes (the profile's `claim_mode`):
    abstractive  a claim is `- text [n]`: free words (one sentence: no line break, no brackets), then one label
                 in context; a list number may lead it (`- 1. text [n]`: the parser drops it), since a small model
                 numbers its claims and writes worse when it may not.
    extractive   a claim is a sentence of passage n, or the first words of one (at least MIN_SPAN_WORDS), copied
                 verbatim, then `[n]`: the grammar is the set of those alternatives, so a claim is grounded in
                 the passage it cites by construction.
Answers: an open answer is two to four sentences, each ending with a label in context; a polar answer is the
decision word (which the backend's token probabilities pick) and one or two such sentences.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

CLAIM_MODES = ("abstractive", "extractive")
MIN_CLAIM_CHARS = 12         # a claim's free text: at least this many characters ...
MAX_CLAIM_CHARS = 240        # ... and at most this many (a claim is a line, not a paragraph)
MIN_SPAN_WORDS = 6           # an extractive claim copies at least this many words of a sentence (or all of it)
MAX_SPAN_WORDS = 40          # and at most this many (a longer sentence is cut to its first words)
MAX_ALTERNATIVES = 12        # extractive: sentences offered per passage (its first ones)
DECISION_WORDS = ("yes", "no", "maybe")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


@dataclass(frozen=True)
class OutputFormat:
    """One call's output format. `gbnf`: the grammar llama.cpp samples under (its root starts right after the
    call's prefill). `json_schema`: the same format as a JSON object for a structured-output backend; `render`
    maps that object to the text the claim and answer parsers read (as if the model had written it after the
    prefill)."""
    kind: str                                   # "claims" | "answer"
    gbnf: str
    json_schema: dict
    render: Callable[[dict], str] = field(compare=False)
    labels: tuple[int, ...] = ()


def _literal(text: str) -> str:
    """A GBNF string literal of `text` (quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _label_rule(labels: list[int]) -> str:
    return "label ::= " + " | ".join(_literal(str(n)) for n in sorted(set(labels)))


def _check_labels(labels: list[int]) -> list[int]:
    if not labels:
        raise ValueError("a grammar needs at least one passage label in context")
    return sorted(set(int(n) for n in labels))


#: A claim's or sentence's words: starting with a letter (not a list number), no line break or bracket, a full stop
#: only before a digit or a lower-case letter (3.5, e.g.) or at its end, so a claim is one sentence that then
#: must take its citation.
_WORDS = f'[A-Za-z(] ([^\\n\\[\\].] | "." [0-9a-z]){{{MIN_CLAIM_CHARS - 1},{MAX_CLAIM_CHARS - 1}}}'
_FREE_TEXT = _WORDS + ' "."?'       # a claim line may close its sentence before the citation
#: An answer's sentence puts its citation before the full stop ("... [2]."), so that the sentence and its
#: citation stay one sentence when the answer is split into sentences (engine.claims.answer_sentences).
_SENTENCE_TEXT = _WORDS


def split_sentences(text: str) -> list[str]:
    """The text's sentences as written (one ends at . ! or ? before a capital letter, a digit or a parenthesis)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def sentences(text: str) -> list[str]:
    """The passage's sentences as an extractive claim may copy them: brackets turned to parentheses (a bracket
    would read as a citation), whitespace collapsed, final punctuation dropped, cut to MAX_SPAN_WORDS words, at
    least MIN_SPAN_WORDS words each, the first MAX_ALTERNATIVES of them, duplicates dropped."""
    flat = " ".join(text.replace("[", "(").replace("]", ")").split())
    out: list[str] = []
    for s in split_sentences(flat):
        words = s.rstrip(" .!?;:,").split()[:MAX_SPAN_WORDS]
        if len(words) >= MIN_SPAN_WORDS and " ".join(words) not in out:
            out.append(" ".join(words))
        if len(out) >= MAX_ALTERNATIVES:
            break
    return out


def _span_rule(sentence: str) -> str:
    """A GBNF expression for the sentence or any prefix of it of at least MIN_SPAN_WORDS words."""
    words = sentence.split()
    head = _literal(" ".join(words[:MIN_SPAN_WORDS]))
    tail = ""
    for w in reversed(words[MIN_SPAN_WORDS:]):
        tail = f"({_literal(' ' + w)}{tail})?" if not tail else f"({_literal(' ' + w)} {tail})?"
    return f"{head} {tail}".strip()


def _render_claims(obj: dict) -> str:
    """JSON claims -> the lines the claim parser reads, the first without its bullet (the call's prefill)."""
    lines = []
    for c in obj.get("claims", []) if isinstance(obj, dict) else []:
        if isinstance(c, dict) and isinstance(c.get("text"), str):
            lines.append(f"{' '.join(c['text'].split())} [{c.get('passage')}]")
    return "\n- ".join(lines)


def claims_format(labels: list[int], max_claims: int, mode: str = "abstractive",
                  passages: dict[int, str] | None = None) -> OutputFormat:
    """Up to `max_claims` claims, one a line, each citing one of `labels` (the call's prefill is "- ").

    mode "extractive" needs `passages` (label -> text): each claim is then a sentence (or a leading span of
    one) of the passage it cites. A label whose passage offers no sentence is left out of the choice."""
    labels = _check_labels(labels)
    if mode not in CLAIM_MODES:
        raise ValueError(f"claim mode '{mode}' is not one of {', '.join(CLAIM_MODES)}")
    n = max(1, int(max_claims))
    rules = [f'root ::= claim ("\\n- " claim){{0,{n - 1}}}']
    if mode == "abstractive":
        rules += [f'claim ::= ([1-9] ". ")? text " [" label "]"', f"text ::= {_FREE_TEXT}", _label_rule(labels)]
        schema_claim = {"type": "object", "properties": {"text": {"type": "string", "minLength": MIN_CLAIM_CHARS,
                                                                  "maxLength": MAX_CLAIM_CHARS},
                                                         "passage": {"type": "integer", "enum": labels}},
                        "required": ["text", "passage"]}
    else:
        if passages is None:
            raise ValueError("the extractive mode needs the passages' texts")
        alts, per_label = [], []
        for lab in labels:
            sents = sentences(passages.get(lab, ""))
            if not sents:
                continue
            rules.append(f"p{lab} ::= " + " | ".join(f"({_span_rule(s)})" for s in sents))
            alts.append(f'p{lab} " [{lab}]"')
            per_label.append({"type": "object", "properties": {"text": {"enum": sents},
                                                               "passage": {"const": lab}},
                              "required": ["text", "passage"]})
        if not alts:
            return claims_format(labels, max_claims, "abstractive")
        rules.insert(1, "claim ::= " + " | ".join(alts))
        schema_claim = {"anyOf": per_label}
    schema = {"type": "object", "properties": {"claims": {"type": "array", "items": schema_claim, "minItems": 1,
                                                          "maxItems": n}},
              "required": ["claims"]}
    return OutputFormat("claims", "\n".join(rules) + "\n", schema, _render_claims, tuple(labels))


def _render_answer(obj: dict) -> str:
    """JSON answer -> the text after "Answer:" (the decision first where there is one)."""
    if not isinstance(obj, dict):
        return ""
    parts = [f" {obj['decision']}."] if obj.get("decision") in DECISION_WORDS else []
    for s in obj.get("sentences", []):
        if isinstance(s, dict) and isinstance(s.get("text"), str):
            parts.append(f" {' '.join(s['text'].split()).rstrip('.')} [{s.get('passage')}].")
    return "".join(parts)


def answer_format(labels: list[int], polar: bool) -> OutputFormat:
    """The answer after the prefill "Answer:": open, two to four sentences; polar, the decision word then one or
    two sentences; each sentence ends with `[n]` for a label in context, then a full stop."""
    labels = _check_labels(labels)
    lo, hi = (1, 2) if polar else (2, 4)
    head = '(" yes" | " no" | " maybe") "." ' if polar else ""
    rules = [f"root ::= {head}sentence{{{lo},{hi}}}",
             f'sentence ::= " " text " [" label "]."', f"text ::= {_SENTENCE_TEXT}", _label_rule(labels)]
    props: dict = {"sentences": {"type": "array", "minItems": lo, "maxItems": hi,
                                 "items": {"type": "object",
                                           "properties": {"text": {"type": "string", "minLength": MIN_CLAIM_CHARS,
                                                                   "maxLength": MAX_CLAIM_CHARS},
                                                          "passage": {"type": "integer", "enum": labels}},
                                           "required": ["text", "passage"]}}}
    required = ["sentences"]
    if polar:
        props = {"decision": {"enum": list(DECISION_WORDS)}, **props}
        required = ["decision", "sentences"]
    schema = {"type": "object", "properties": props, "required": required}
    return OutputFormat("answer", "\n".join(rules) + "\n", schema, _render_answer, tuple(labels))


def parse_json_output(fmt: OutputFormat, text: str) -> str:
    """The text a structured-output reply stands for (fmt.render of its JSON); "" when it is not JSON."""
    try:
        obj = json.loads(text)
    except ValueError:
        return ""
    return fmt.render(obj)
