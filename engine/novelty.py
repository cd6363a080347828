"""Novelty scoring and the early-exit gate (pure numpy)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def novelty(batch: np.ndarray, context: np.ndarray | None) -> float:
    """1 - mean over the batch's passages of the highest cosine similarity to a passage already in context.

    With nothing in context every passage is new: novelty 1.0. An empty batch has novelty 0.0."""
    b = np.asarray(batch)
    if b.size == 0:
        return 0.0
    if context is None or np.asarray(context).size == 0:
        return 1.0
    sims = _unit(b) @ _unit(context).T
    return float(1.0 - sims.max(axis=1).mean())


@dataclass
class EarlyExitController:
    """Admits a batch while its novelty is >= threshold; the first batch below it stops the run."""
    threshold: float = 0.15
    enabled: bool = True
    trace: list[float] = field(default_factory=list)
    stopped_at: int | None = None
    _context: list[np.ndarray] = field(default_factory=list)

    def score(self, batch_vectors: np.ndarray) -> float:
        ctx = np.vstack(self._context) if self._context else None
        n = novelty(batch_vectors, ctx)
        self.trace.append(round(n, 4))
        return n

    def admit(self, batch_index: int, batch_vectors: np.ndarray) -> tuple[bool, float]:
        """Score the batch; return (admitted, novelty). Admitted batches join the context."""
        n = self.score(batch_vectors)
        if self.enabled and n < self.threshold:
            self.stopped_at = batch_index
            return False, n
        self._context.append(np.asarray(batch_vectors, dtype=np.float32).reshape(len(batch_vectors), -1))
        return True, n
