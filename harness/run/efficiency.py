"""Engine vs raw llama-cpp-python: decode speed on the same model, threads, prompts and tokens. Each call of an
engine run is replayed through a bare `llama_cpp.Llama`; both are timed natively (llama.cpp's decode timer) and on
the wall (the client clock at each streamed chunk), with other processes' CPU load (run/cpu.py)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from llm_research_bench.engine.backends.llamacpp import LlamaCppBackend
from llm_research_bench.engine.corpus import Corpus
from llm_research_bench.engine.profiles import Profile, get_profile

from .cpu import CpuWatch
from .inprocess import run_in_process
from .request import COMPLETED, RunRequest


#: The engine run's timeout = this x the profile's timeout_s: decode speed is compared here, not the time budget.
RUN_TIMEOUT_FACTOR = 4
#: Calls that generated fewer tokens are not replayed: too short to time.
MIN_TOKENS = 16


@dataclass
class EfficiencyResult:
    engine_decode_tps: float          # native, summed over replayed calls
    raw_decode_tps: float
    decode_ratio: float               # engine / raw (goal >= 0.95)
    engine_wall_decode_tps: float     # (chunks - 1) / (last chunk - first chunk), summed over replayed calls
    raw_wall_decode_tps: float
    wall_decode_ratio: float          # engine / raw (goal >= 0.95)
    prefix_reuse_ratio: float         # prompt tokens evaluated / unique context tokens (goal <= 1.15)
    prompt_tokens_evaluated: int
    unique_context_tokens: int
    calls_compared: int
    tokens_compared: int
    calls_same_chunks: int            # replayed calls that streamed as many chunks as the engine's call
    n_threads: int
    model: str
    engine_other_cpu_cores: float | None   # other processes' load while the engine ran
    raw_other_cpu_cores: float | None      # ... while the raw replays ran
    telemetry: dict

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "telemetry"}


def wall_span(stamps: list[float]) -> tuple[int, float]:
    """(chunk gaps, seconds) from the first to the last streamed chunk: the wall decode measure of one call."""
    return (len(stamps) - 1, stamps[-1] - stamps[0]) if len(stamps) > 1 else (0, 0.0)


def _raw_replay(backend: LlamaCppBackend, prompt: list[int], n_tokens: int) -> tuple[int, float, list[float]]:
    """(native decode tokens, native decode s, chunk stamps) for one bare llama-cpp-python call."""
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
        return int(perf.n_eval), perf.t_eval_ms / 1000.0, stamps
    finally:
        llm.close()


def measure(question: str, profile: str | Profile = "quick", corpus: Corpus | str | None = None,
            grammar: bool = True) -> EfficiencyResult:
    """The engine's run (its claims and answer under the output grammar unless `grammar` is False: sampling
    under it is engine work) against raw replays of its calls without any grammar."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    backend = LlamaCppBackend(prof.model_for("llamacpp"), context_window=prof.context_window)
    backend.prompt_log, backend.chunk_log = [], []
    timeout_s = prof.timeout_s * RUN_TIMEOUT_FACTOR
    try:
        with CpuWatch() as engine_cpu:
            out = run_in_process(RunRequest(question=question, profile=prof, backend=backend, corpus=corpus,
                                            timeout_s=timeout_s,
                                            research_kwargs={"grammar": grammar, "timeout_s": timeout_s}))
        if out.exception is not None:
            raise out.exception
        if out.status != COMPLETED:
            raise RuntimeError(f"the engine run did not complete: {out.error}")
        tel = out.telemetry
        rows = []      # per replayed call: engine and raw native tokens and seconds, wall gaps and seconds, ...
        with CpuWatch() as raw_cpu:
            for call, prompt, stamps in zip(tel["traces"]["calls"], backend.prompt_log, backend.chunk_log):
                gen = call["tokens_generated"]
                if gen < MIN_TOKENS or not call["native_decode_s"] or len(stamps) < 2:
                    continue
                rt, rs, raw_stamps = _raw_replay(backend, prompt, gen)
                if len(raw_stamps) >= 2:
                    rows.append((call["native_decode_tokens"], call["native_decode_s"], rt, rs, *wall_span(stamps),
                                 *wall_span(raw_stamps), gen, int(len(raw_stamps) == len(stamps))))
        if not rows:
            raise RuntimeError(f"no call generated >= {MIN_TOKENS} tokens; nothing to compare")
        e_tok, e_s, r_tok, r_s, e_wall_tok, e_wall_s, r_wall_tok, r_wall_s, tokens, same = map(sum, zip(*rows))
        m = tel["metrics"]
        eng, raw = e_tok / e_s, r_tok / r_s
        ew, rw = e_wall_tok / e_wall_s, r_wall_tok / r_wall_s
        return EfficiencyResult(eng, raw, eng / raw, ew, rw, ew / rw, m["prefix_reuse_ratio"],
                                m["prompt_tokens_evaluated"], m["unique_context_tokens"], len(rows), tokens, same,
                                backend.n_threads, backend.model_name,
                                round(engine_cpu.load.other_cores, 2) if engine_cpu.load else None,
                                round(raw_cpu.load.other_cores, 2) if raw_cpu.load else None, tel)
    finally:
        backend.close()
