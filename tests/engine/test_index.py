import json

import numpy as np

from llm_research_bench.engine.corpus import load_corpus
from llm_research_bench.engine.embed import shared_embedder
from llm_research_bench.engine.index import HNSWIndex


def _corpus(tmp_path, texts):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return load_corpus(f)


def test_index_is_cached_and_rebuilt_when_content_changes(tmp_path):
    emb = shared_embedder()
    texts = ["Aspirin lowers the risk of heart attack.", "Mitochondria produce ATP in cells.",
             "Smoking damages the lungs.", "Exercise improves cardiovascular health."]
    a = HNSWIndex.build_or_load(_corpus(tmp_path, texts), emb, cache_dir=tmp_path / "cache")
    assert not a.cache_hit
    b = HNSWIndex.build_or_load(_corpus(tmp_path, texts), emb, cache_dir=tmp_path / "cache")
    assert b.cache_hit and np.allclose(a.vectors, b.vectors)
    c = HNSWIndex.build_or_load(_corpus(tmp_path, texts[:3] + ["Sleep matters."]), emb, cache_dir=tmp_path / "cache")
    assert not c.cache_hit
    hits = b.search(emb.encode(["Which organelle makes ATP?"])[0], k=2, ef_search=16)
    assert hits[0].passage_id == "p1" and hits[0].score > hits[1].score


def test_damaged_cache_is_rebuilt(tmp_path):
    emb = shared_embedder()
    corpus = _corpus(tmp_path, ["one passage about kidneys", "another about the liver"])
    a = HNSWIndex.build_or_load(corpus, emb, cache_dir=tmp_path / "cache")
    (a.path / "hnsw.bin").write_bytes(b"junk")
    b = HNSWIndex.build_or_load(corpus, emb, cache_dir=tmp_path / "cache")
    assert not b.cache_hit and len(b.search(emb.encode(["liver"])[0], 1, 8)) == 1


def test_build_reports_its_progress(tmp_path, monkeypatch):
    from llm_research_bench.engine import index as index_mod
    monkeypatch.setattr(index_mod, "EMBED_CHUNK", 2)
    emb = shared_embedder()
    corpus = _corpus(tmp_path, [f"passage number {i} about organ {i}" for i in range(5)])
    seen = []
    a = HNSWIndex.build_or_load(corpus, emb, cache_dir=tmp_path / "cache", on_progress=lambda *e: seen.append(e))
    assert seen == [("embed", 0, 5), ("embed", 2, 5), ("embed", 4, 5), ("embed", 5, 5), ("hnsw", 5, 5),
                    ("saved", 5, 5)]
    assert a.vectors.shape[0] == 5
    seen.clear()
    HNSWIndex.build_or_load(corpus, emb, cache_dir=tmp_path / "cache", on_progress=lambda *e: seen.append(e))
    assert seen == [("cached", 5, 5)]
