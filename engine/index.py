"""HNSW retrieval index (hnswlib), cached on disk keyed by corpus content + embedding model."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .corpus import Corpus
from .embed import Embedder

INDEX_FORMAT = 1


def cache_root() -> Path:
    base = os.environ.get("RESEARCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "llm-research-bench")
    return Path(base)


@dataclass
class Hit:
    passage_index: int
    passage_id: str
    score: float   # cosine similarity


class HNSWIndex:
    def __init__(self, index, vectors: np.ndarray, ids: list[str], cache_hit: bool, path: Path):
        self.index, self.vectors, self.ids, self.cache_hit, self.path = index, vectors, ids, cache_hit, path

    @classmethod
    def build_or_load(cls, corpus: Corpus, embedder: Embedder, *, m: int = 16, ef_construction: int = 200,
                      cache_dir: Path | None = None) -> "HNSWIndex":
        import hnswlib

        key = f"{corpus.id}-{embedder.model_id}-m{m}-efc{ef_construction}-v{INDEX_FORMAT}".replace("/", "_")
        d = (cache_dir or cache_root()) / "index" / key
        ids = [p.id for p in corpus.passages]
        meta_f, vec_f, idx_f = d / "meta.json", d / "vectors.npy", d / "hnsw.bin"
        if meta_f.exists() and vec_f.exists() and idx_f.exists():
            try:
                meta = json.loads(meta_f.read_text())
                if meta.get("ids") == ids:
                    vectors = np.load(vec_f)
                    index = hnswlib.Index(space="ip", dim=vectors.shape[1])
                    index.load_index(str(idx_f), max_elements=len(ids))
                    return cls(index, vectors, ids, True, d)
            except Exception:
                pass   # a damaged cache is rebuilt below
        vectors = embedder.encode([p.text for p in corpus.passages])
        index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        index.init_index(max_elements=len(ids), M=m, ef_construction=ef_construction, random_seed=42)
        index.add_items(vectors, np.arange(len(ids)))
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=d) as tmp:
            t = Path(tmp)
            index.save_index(str(t / "hnsw.bin"))
            np.save(t / "vectors.npy", vectors)
            (t / "meta.json").write_text(json.dumps({"ids": ids, "embedding_model": embedder.model_id}))
            for name in ("hnsw.bin", "vectors.npy", "meta.json"):   # meta last: it marks the cache complete
                os.replace(t / name, d / name)
        return cls(index, vectors, ids, False, d)

    def search(self, query: np.ndarray, k: int, ef_search: int) -> list[Hit]:
        k = max(1, min(k, len(self.ids)))
        self.index.set_ef(max(ef_search, k))
        labels, dists = self.index.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=k)
        return [Hit(int(i), self.ids[int(i)], float(1.0 - dd)) for i, dd in zip(labels[0], dists[0])]
