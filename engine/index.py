"""HNSW retrieval index (hnswlib), cached on disk keyed by corpus content + embedding model.

`build_or_load(..., on_progress=fn)` reports its progress as fn(stage, done, total): "cached" (loaded from the
cache), "embed" (passages embedded so far, in chunks of EMBED_CHUNK), "hnsw" (graph built), "saved"."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .corpus import Corpus
from .embed import Embedder
from .envvars import env

INDEX_FORMAT = 1
#: Passages embedded per progress report during a build.
EMBED_CHUNK = 256


def cache_root() -> Path:
    base = env("CACHE_DIR") or os.path.join(
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
                      cache_dir: Path | None = None,
                      on_progress: Callable[[str, int, int], None] | None = None) -> "HNSWIndex":
        import hnswlib

        report = on_progress or (lambda stage, done, total: None)

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
                    report("cached", len(ids), len(ids))
                    return cls(index, vectors, ids, True, d)
            except Exception:
                pass   # a damaged cache is rebuilt below
        texts = [p.text for p in corpus.passages]
        if on_progress is None:
            vectors = embedder.encode(texts)
        else:
            parts = []
            report("embed", 0, len(texts))
            for i in range(0, len(texts), EMBED_CHUNK):
                parts.append(embedder.encode(texts[i:i + EMBED_CHUNK]))
                report("embed", min(i + EMBED_CHUNK, len(texts)), len(texts))
            vectors = np.concatenate(parts) if parts else embedder.encode(texts)
        index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        index.init_index(max_elements=len(ids), M=m, ef_construction=ef_construction, random_seed=42)
        index.add_items(vectors, np.arange(len(ids)))
        report("hnsw", len(ids), len(ids))
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=d) as tmp:
            t = Path(tmp)
            index.save_index(str(t / "hnsw.bin"))
            np.save(t / "vectors.npy", vectors)
            (t / "meta.json").write_text(json.dumps({"ids": ids, "embedding_model": embedder.model_id}))
            for name in ("hnsw.bin", "vectors.npy", "meta.json"):   # meta last: it marks the cache complete
                os.replace(t / name, d / name)
        report("saved", len(ids), len(ids))
        return cls(index, vectors, ids, False, d)

    def search(self, query: np.ndarray, k: int, ef_search: int) -> list[Hit]:
        k = max(1, min(k, len(self.ids)))
        self.index.set_ef(max(ef_search, k))
        labels, dists = self.index.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=k)
        return [Hit(int(i), self.ids[int(i)], float(1.0 - dd)) for i, dd in zip(labels[0], dists[0])]
