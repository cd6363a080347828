"""Engine vs raw llama-cpp-python: decode speed on the same model, threads and prompts, in one run.

The engine runs a real progressive research session; every claims call's prompt is then replayed through a
fresh, bare `llama_cpp.Llama` with the same file, threads and context, generating the same number of tokens.
Both sides are timed by llama.cpp's own perf counters (native) and by the client clock (wall). The engine's
run goes through the harness's in-process run machinery (run/inprocess.py), like a pipeline bench's."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from llm_research_bench.engine.backends.llamacpp import LlamaCppBackend
from llm_research_bench.engine.corpus import Corpus
from llm_research_bench.engine.profiles import Profile, get_profile

from .inprocess import run_in_process
from .request import COMPLETED, RunRequest


@dataclass
class EfficiencyResult:
    engine_decode_tps: float          # native, summed over replayed calls
    raw_decode_tps: float
    decode_ratio: float               # engine / raw (goal >= 0.95)
    engine_wall_decode_tps: float     # (e2e - TTFT) / (tokens - 1), summed
    raw_wall_decode_tps: float
    wall_decode_ratio: float
    prefix_reuse_ratio: float         # prompt tokens evaluated / unique context tokens (goal <= 1.15)
    prompt_tokens_evaluated: int
    unique_context_tokens: int
    calls_compared: int
    tokens_compared: int
    n_threads: int
    model: str
    telemetry: dict

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("telemetry")
        return d


def _raw_replay(backend: LlamaCppBackend, prompt: list[int], n_tokens: int) -> tuple[int, float, float]:
    """(native decode tokens, native decode s, wall decode s) for one bare llama-cpp-python call."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(backend.model_path), n_ctx=backend.llm.n_ctx(), n_threads=backend.n_threads,
                          n_threads_batch=backend.n_threads, n_gpu_layers=backend.gpu_layers, seed=0, verbose=False)
    try:
        llama_cpp.llama_perf_context_reset(llm.ctx)
        stamps = []
        for chunk in llm.create_completion(prompt, max_tokens=n_tokens, temperature=0.0, repeat_penalty=1.1,
                                           stream=True):
            if chunk["choices"][0].get("text"):
                stamps.append(time.perf_counter())
        perf = llama_cpp.llama_perf_context(llm.ctx)
        wall = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
        return int(perf.n_eval), perf.t_eval_ms / 1000.0, wall, max(0, len(stamps) - 1)
    finally:
        llm.close()


def measure(question: str, profile: str | Profile = "quick", corpus: Corpus | str | None = None,
            min_tokens: int = 16) -> EfficiencyResult:
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    backend = LlamaCppBackend(prof.model_for("llamacpp"), context_window=prof.context_window)
    backend.prompt_log = []
    try:
        out = run_in_process(RunRequest(question=question, profile=prof, backend=backend, corpus=corpus))
        if out.exception is not None:
            raise out.exception
        if out.status != COMPLETED:
            raise RuntimeError(f"the engine run did not complete: {out.error}")
        tel = out.telemetry
        calls = tel["traces"]["calls"]
        e_tok = e_s = e_wall_tok = 0.0
        e_wall_s = r_tok = r_s = r_wall_s = r_wall_tok = 0.0
        n = tokens = 0
        for call, prompt in zip(calls, backend.prompt_log):
            gen = call["tokens_generated"]
            if gen < min_tokens or not call["native_decode_s"]:
                continue
            rt, rs, rwall, rchunks = _raw_replay(backend, prompt, gen)
            e_tok += call["native_decode_tokens"]
            e_s += call["native_decode_s"]
            e_wall_tok += call["chunks"] - 1
            e_wall_s += call["e2e_s"] - call["ttft_s"]
            r_tok, r_s, r_wall_s, r_wall_tok = r_tok + rt, r_s + rs, r_wall_s + rwall, r_wall_tok + rchunks
            n += 1
            tokens += gen
        if not n:
            raise RuntimeError(f"no call generated >= {min_tokens} tokens; nothing to compare")
        m = tel["metrics"]
        eng, raw = e_tok / e_s, r_tok / r_s
        ew, rw = e_wall_tok / e_wall_s, r_wall_tok / r_wall_s
        return EfficiencyResult(eng, raw, eng / raw, ew, rw, ew / rw, m["prefix_reuse_ratio"],
                                m["prompt_tokens_evaluated"], m["unique_context_tokens"], n, tokens,
                                backend.n_threads, backend.model_name, tel)
    finally:
        backend.close()
