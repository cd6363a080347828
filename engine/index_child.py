"""Build a corpus's HNSW index in a child process, so that the memory its embedding batches take never stays in the
caller's process (CPython and torch keep memory they have freed, and a later measurement would count it).

    python -m llm_research_bench.engine.index_child [CORPUS]

builds the index into the cache (or finds it there), printing its progress as JSON lines [stage, done, total]
(engine.index's stages), and exits 0 once the cache holds it, 3 when it could not be saved."""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Callable

MODULE = "llm_research_bench.engine.index_child"


def build_in_child(corpus_path: str | None,
                   on_progress: Callable[[str, int, int], None] | None = None) -> bool:
    """Build the index of the corpus at `corpus_path` (None: the default corpus) into the cache in a child
    process; True once the cache holds it. False where the child failed: the caller builds in its own process,
    which reports the reason."""
    cmd = [sys.executable, "-m", MODULE] + ([str(corpus_path)] if corpus_path else [])
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as child:
        assert child.stdout is not None
        for line in child.stdout:
            try:
                stage, done, total = json.loads(line)
            except (ValueError, TypeError):
                continue
            if on_progress is not None:
                on_progress(stage, done, total)
    return child.returncode == 0


def main(argv: list[str]) -> int:
    from .corpus import load_corpus
    from .embed import shared_embedder
    from .index import HNSWIndex

    def report(stage: str, done: int, total: int) -> None:
        print(json.dumps([stage, done, total]), flush=True)

    index = HNSWIndex.build_or_load(load_corpus(argv[0] if argv else None), shared_embedder(), on_progress=report)
    return 0 if (index.path / "meta.json").exists() else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
