"""Novelty of an evidence batch as information gain towards the question, and the early-exit gate (pure numpy).

A batch's novelty is what it adds towards the question, relative to what the first batch added:

    relevance weight  w(p) = max(0, cos(q, p) - floor),  floor = cos(q, corpus centroid) (mean similarity of a
                      random corpus passage to the question: relevance above chance, not raw similarity)
    marginal novelty  m(p) = 1 - max cos(p, c) over every passage c before p: those already in context and the
                      batch's passages ranked above p (1 for the run's first passage)
    novelty (gain)    G(b) = mean over the batch of w(p) * m(p)  /  the same mean over the first batch

So G = 1 for the first batch, and G = 0.15 reads "the average passage of this batch brings 15 % of the new,
question-relevant material that the average passage of the first batch brought". Both batches are measured the
same way (each passage against everything before it), so the first batch's own repetition (sections of one
abstract, paragraphs of one README section) does not inflate the reference. A batch far down the ranking
(low relevance) or repeating what is in context (low novelty) scores low; the first batch below the
threshold stops the run. When the first batch holds nothing above the floor the gain cannot be judged and the
gate never fires (reason `no_relevant_first_batch` in its trace).

Plain passage novelty (the mean of m(p) without relevance weights) is kept in every decision's trace as
`passage_novelty`: distinct abstracts already score high on it, so on its own it stops only on near-duplicates.
The thresholds and the measured distributions behind the default are in docs/measurements.md (Early exit).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def passage_novelties(batch: np.ndarray, context: np.ndarray | None) -> np.ndarray:
    """Per passage of the batch: 1 - the highest cosine similarity to a passage already in context (1 if none)."""
    b = np.asarray(batch)
    if b.size == 0:
        return np.zeros(0, dtype=np.float32)
    if context is None or np.asarray(context).size == 0:
        return np.ones(len(_unit(b)), dtype=np.float32)
    return 1.0 - (_unit(b) @ _unit(context).T).max(axis=1)


def marginal_novelties(batch: np.ndarray, context: np.ndarray | None) -> np.ndarray:
    """Per passage of the batch, in order: 1 - the highest cosine similarity to a passage in context or to an
    earlier passage of the batch (1 for a first passage with nothing before it)."""
    b = _unit(np.asarray(batch)) if np.asarray(batch).size else np.zeros((0, 1), dtype=np.float32)
    if not len(b):
        return np.zeros(0, dtype=np.float32)
    ctx = _unit(context) if context is not None and np.asarray(context).size else np.zeros((0, b.shape[1]), np.float32)
    prior = np.vstack([ctx, b])
    sims = b @ prior.T                                  # row i: passage i against context + the whole batch
    out = np.empty(len(b), dtype=np.float32)
    for i in range(len(b)):
        before = sims[i, :len(ctx) + i]                 # context, then batch passages ranked above i
        out[i] = 1.0 - before.max() if before.size else 1.0
    return out


def novelty(batch: np.ndarray, context: np.ndarray | None) -> float:
    """Plain passage novelty: 1 - mean over the batch's passages of the highest cosine similarity to a
    passage already in context. With nothing in context every passage is new: 1.0. An empty batch: 0.0."""
    n = passage_novelties(batch, context)
    return float(n.mean()) if n.size else 0.0


def relevance_weights(query: np.ndarray, vectors: np.ndarray, floor: float) -> np.ndarray:
    """w(p) = max(0, cos(q, p) - floor) for each row of `vectors`."""
    v = np.asarray(vectors)
    if v.size == 0:
        return np.zeros(0, dtype=np.float32)
    return np.maximum(0.0, (_unit(v) @ _unit(query)[0]) - floor)


def relevance_floor(query: np.ndarray, corpus_vectors: np.ndarray) -> float:
    """cos(q, p) averaged over every corpus passage p: the similarity a passage has to the question by chance.

    With unit vectors this is q . mean(p), one dot product with the corpus centroid."""
    v = _unit(corpus_vectors)
    return float(_unit(query)[0] @ v.mean(axis=0)) if len(v) else 0.0


@dataclass(frozen=True)
class GateDecision:
    """One batch's score and what the gate did with it (the entries of telemetry `traces.gate`)."""
    batch: int
    novelty: float              # the information gain G(b) the gate compares with the threshold
    passage_novelty: float      # plain passage novelty (mean over the batch of 1 - max cos to the context)
    relevance: float            # mean cos(q, p) over the batch
    weighted_gain: float        # mean w(p) * m(p) over the batch (before dividing by the reference)
    reference: float            # the same mean over the first batch
    threshold: float
    admitted: bool
    reason: str                 # first_batch | above_threshold | below_threshold | gate_disabled |
                                # no_relevant_first_batch

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class EarlyExitController:
    """Admits a batch while its novelty (information gain, see the module doc) is >= threshold; the first batch
    below it stops the run. Without a query it falls back to relevance weights of 1 (plain passage novelty
    relative to the first batch's)."""
    threshold: float = 0.15
    enabled: bool = True
    query: np.ndarray | None = None
    floor: float = 0.0
    trace: list[float] = field(default_factory=list)
    decisions: list[GateDecision] = field(default_factory=list)
    stopped_at: int | None = None
    _context: list[np.ndarray] = field(default_factory=list)
    _reference: float | None = None

    def _weights(self, vectors: np.ndarray) -> np.ndarray:
        if self.query is None:
            return np.ones(len(vectors), dtype=np.float32)
        return relevance_weights(self.query, vectors, self.floor)

    def score(self, batch_vectors: np.ndarray) -> tuple[float, GateDecision]:
        """The batch's novelty and the decision record (admitted/reason filled in by admit)."""
        v = np.asarray(batch_vectors, dtype=np.float32).reshape(len(batch_vectors), -1)
        ctx = np.vstack(self._context) if self._context else None
        n = passage_novelties(v, ctx)
        w = self._weights(v)
        weighted = float((w * marginal_novelties(v, ctx)).mean()) if len(v) else 0.0
        rel = float((_unit(v) @ _unit(self.query)[0]).mean()) if self.query is not None and len(v) else 1.0
        if self._reference is None:                     # the first batch scored sets the reference
            self._reference = weighted
            gain, reason = 1.0, "first_batch"
        elif self._reference <= 0.0:
            gain, reason = 1.0, "no_relevant_first_batch"
        else:
            gain, reason = weighted / self._reference, ""
        d = GateDecision(batch=-1, novelty=round(gain, 4), passage_novelty=round(float(n.mean()) if n.size else 0.0, 4),
                         relevance=round(rel, 4), weighted_gain=round(weighted, 4),
                         reference=round(self._reference, 4), threshold=self.threshold, admitted=True, reason=reason)
        return gain, d

    def admit(self, batch_index: int, batch_vectors: np.ndarray) -> tuple[bool, float]:
        """Score the batch; return (admitted, novelty). Admitted batches join the context."""
        gain, d = self.score(batch_vectors)
        below = gain < self.threshold
        admitted = not (self.enabled and below)
        reason = d.reason or ("below_threshold" if below and self.enabled else
                              "gate_disabled" if below else "above_threshold")
        self.trace.append(round(gain, 4))
        self.decisions.append(GateDecision(**{**d.as_dict(), "batch": batch_index, "admitted": admitted,
                                              "reason": reason}))
        if not admitted:
            self.stopped_at = batch_index
            return False, gain
        self._context.append(np.asarray(batch_vectors, dtype=np.float32).reshape(len(batch_vectors), -1))
        return True, gain

    def forget_last(self, keep: int) -> None:
        """The last admitted batch was cut to its first `keep` passages (context fitting): only those are in
        context."""
        if self._context:
            self._context[-1] = self._context[-1][:keep]
