"""Claims with citations, parsed incrementally while the model streams.

The model is asked to write one claim per line, ending with the labels of its evidence, e.g.
    - Mitochondria move towards the nucleus during PCD [3][5]
Labels are the numbers the engine gave the passages in context ([1], [2], ...). A raw passage id in brackets
([21645374:2]) is accepted too. A citation is valid when it names a passage that was in context when cited.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

_CITE = re.compile(r"\[\s*([^\[\]]{1,40}?)\s*\]")
_LABEL = re.compile(r"^(?:E|S|passage\s*)?(\d{1,4})$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:(?:[-*\u2022]|\d{1,2}[.)]|claim\s*\d*\s*:)\s*)+", re.IGNORECASE)


@dataclass
class Citation:
    raw: str
    passage_id: str | None   # resolved passage id, None when it names nothing in context
    valid: bool
    grounded: bool | None = None   # the passage supports the claim (engine.grounding); None until checked


@dataclass
class Claim:
    text: str
    citations: list[Citation] = field(default_factory=list)
    batch: int = 0

    @property
    def valid_sources(self) -> list[str]:
        return [c.passage_id for c in self.citations if c.valid and c.passage_id]

    @property
    def grounded_sources(self) -> list[str]:
        return [c.passage_id for c in self.citations if c.grounded and c.passage_id]

    def as_dict(self) -> dict:
        return asdict(self)


class CitationResolver:
    """Maps labels to passage ids for the passages in context so far."""

    def __init__(self) -> None:
        self.labels: dict[int, str] = {}
        self.ids: set[str] = set()

    def add(self, passage_id: str) -> int:
        label = len(self.labels) + 1
        self.labels[label] = passage_id
        self.ids.add(passage_id)
        return label

    def resolve(self, raw: str) -> Citation:
        parts = [p.strip() for p in re.split(r"[,;]", raw) if p.strip()]
        token = parts[0] if parts else raw.strip()
        m = _LABEL.match(token)
        if m:
            pid = self.labels.get(int(m.group(1)))
            return Citation(raw, pid, pid is not None)
        if token in self.ids:
            return Citation(raw, token, True)
        return Citation(raw, None, False)


def split_citations(raw_inner: str) -> list[str]:
    """'[1, 3]' -> ['1', '3']; '[1]' -> ['1']."""
    return [p.strip() for p in re.split(r"[,;]", raw_inner) if p.strip()] or [raw_inner]


def parse_claim_line(line: str, resolver: CitationResolver, batch: int = 0) -> Claim | None:
    """A claim is a non-empty line with at least some words; bullets are stripped. Lines without any
    bracketed citation are still claims (uncited), so invalid/absent citations are visible, not hidden."""
    text = _BULLET.sub("", line.strip())
    cites: list[Citation] = []
    for m in _CITE.finditer(text):
        for part in split_citations(m.group(1)):
            cites.append(resolver.resolve(part))
    body = _CITE.sub("", text).strip(" .:;-")
    if len(re.findall(r"[A-Za-z]{2,}", body)) < 3:
        return None
    return Claim(text=body + ".", citations=cites, batch=batch)


class ClaimStreamParser:
    """Feed text deltas as they arrive; complete lines become claims immediately."""

    def __init__(self, resolver: CitationResolver, batch: int = 0, max_claims: int | None = None,
                 seen: set[str] | None = None, require_citation: bool = False):
        self.resolver, self.batch, self.max_claims = resolver, batch, max_claims
        self._buf = ""
        self.claims: list[Claim] = []
        self.seen = seen if seen is not None else set()   # normalised texts of claims already made in the run
        self.repeats = 0
        #: Under a grammar every claim line ends with a citation: a line without one (cut by the token cap) or
        #: one the checks refuse is counted in `rejected`, not kept.
        self.require_citation = require_citation
        self.rejected = 0

    def feed(self, delta: str) -> list[Claim]:
        self._buf += delta
        out = []
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            out += self._take(line)
        return out

    def close(self) -> list[Claim]:
        line, self._buf = self._buf, ""
        return self._take(line)

    def _take(self, line: str) -> list[Claim]:
        if self.max_claims is not None and len(self.claims) >= self.max_claims:
            return []
        c = parse_claim_line(line, self.resolver, self.batch)
        if c is None or (self.require_citation and not c.citations):
            self.rejected += bool(_BULLET.sub("", line).strip())
            return []
        key = " ".join(re.findall(r"[a-z0-9]+", c.text.lower()))
        if key in self.seen:          # a claim repeated from an earlier batch is not a new claim
            self.repeats += 1
            return []
        self.seen.add(key)
        self.claims.append(c)
        return [c]


def answer_sentences(answer: str, resolver: CitationResolver) -> list[Claim]:
    """The sentences of an answer that cite something, as claims (their citations resolved against the passages
    in context), so the answer's citations are counted and checked like the claims' ones."""
    flat = " ".join(answer.split())
    out = []
    for sent in re.split(r"(?<=[.!?])\s+(?=[A-Z\[])|(?<=\])\s*[.;]\s+", flat):
        if not _CITE.search(sent):
            continue
        c = parse_claim_line(sent, resolver)
        if c is not None and c.citations:
            out.append(c)
    return out


def citation_counts(claims: list[Claim]) -> tuple[int, int, int]:
    """(citations, valid, invalid) over claims."""
    total = sum(len(c.citations) for c in claims)
    valid = sum(1 for c in claims for x in c.citations if x.valid)
    return total, valid, total - valid
