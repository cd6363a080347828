"""Speed and fidelity of the embedded model's weights re-encoded as other llama.cpp types, against the shipped file.

    .venv/bin/python scripts/weight_types.py [--types q8_0 bf16 q4_0] [--texts 6] [--tokens 400]

Speed: a 256-token prompt evaluated three times (seconds, fresh context each), and 20 single-token decodes
(tokens/s), with the machine's threads. Fidelity, on the first `--texts` PubMedQA abstracts (`--tokens` tokens
each): the mean KL divergence of each next-token distribution from the shipped file's, how often the most likely
token is the same, and the mean negative log-likelihood of the text under each (the shipped file's first).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import llama_cpp
import numpy as np

from engine.backends import weights
from engine.backends.registry import resolve_model
from engine.corpus import DEFAULT_PUBMEDQA


def speed(path: Path) -> tuple[list[float], float]:
    threads = os.cpu_count() or 1
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    toks = llm.tokenize(("The lace plant leaf forms perforations during programmed cell death. " * 30).encode())[:256]
    prompt = []
    for _ in range(3):
        llm.reset()
        t = time.perf_counter()
        llm.eval(toks)
        prompt.append(round(time.perf_counter() - t, 3))
    llm.reset()
    llm.eval(toks[:10])
    t = time.perf_counter()
    for tok in toks[10:30]:
        llm.eval([tok])
    return prompt, 20 / (time.perf_counter() - t)


def log_probs(path: Path, toks: list[int]) -> np.ndarray:
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, logits_all=True, verbose=False)
    llm.eval(toks)
    x = np.array(llm.scores[:len(toks)], dtype=np.float64)
    x -= x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def fidelity(shipped: Path, other: Path, texts: list[list[int]]) -> tuple[float, float, float, float]:
    kl, top1, nll_s, nll_o = [], [], [], []
    for toks in texts:
        s, o = log_probs(shipped, toks), log_probs(other, toks)
        kl.append((np.exp(s) * (s - o)).sum(1).mean())
        top1.append((s.argmax(1) == o.argmax(1)).mean())
        nxt = np.arange(len(toks) - 1), toks[1:]
        nll_s.append(-s[nxt].mean())
        nll_o.append(-o[nxt].mean())
    return tuple(float(np.mean(v)) for v in (kl, top1, nll_s, nll_o))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--types", nargs="+", default=["q8_0", "bf16", "q4_0"])
    ap.add_argument("--texts", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=400)
    a = ap.parse_args()
    logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL + 1)
    shipped, _ = resolve_model("smollm2-135m")
    vocab = llama_cpp.Llama(model_path=str(shipped), vocab_only=True, verbose=False)
    abstracts = list(json.loads(Path(DEFAULT_PUBMEDQA).read_text()).values())[:a.texts]
    texts = [vocab.tokenize(" ".join(v["CONTEXTS"]).encode())[:a.tokens] for v in abstracts]
    print(f"{'weights':<14} {'prompt 256 tok (s)':<22} {'decode tok/s':>12} {'KL':>7} {'top-1 same':>10} {'NLL':>6}")
    prompt, decode = speed(shipped)
    print(f"{'q4_1 shipped':<14} {str(prompt):<22} {decode:>12.1f} {'-':>7} {'-':>10} {'-':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for wtype in a.types:
            path = Path(folder) / f"{wtype}.gguf"
            assert weights.encode(shipped, path, wtype, llama_cpp)
            prompt, decode = speed(path)
            kl, top1, nll_s, nll_o = fidelity(shipped, path, texts)
            print(f"{wtype:<14} {str(prompt):<22} {decode:>12.1f} {kl:>7.4f} {top1:>10.3f} {nll_o:>6.3f} "
                  f"(shipped {nll_s:.3f})")


if __name__ == "__main__":
    main()
