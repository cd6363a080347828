"""The embedded default backend: llama.cpp in-process through llama-cpp-python. No server."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

from .base import Backend, BackendError, Choice, GenerationStats, Message, ModelNotFound
from .registry import resolve_model
from ..system import physical_cores

CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _check_gguf(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as e:
        raise ModelNotFound(f"model file {path} cannot be read ({e.strerror}): check the path and permissions") from None
    if magic != b"GGUF":
        raise ModelNotFound(f"model file {path} is not a GGUF file (corrupt or truncated): re-download or "
                            f"reinstall it (`make setup` for the embedded models)")


def render_gemma(messages: list[Message], prefill: str = "") -> str:
    """Gemma's turn format. It has no system role: system text is prepended to the first user turn."""
    out, system = ["<bos>"], ""
    for m in messages:
        if m.role == "system":
            system += m.content + "\n\n"
            continue
        role = "model" if m.role == "assistant" else "user"
        text = (system + m.content) if role == "user" and system else m.content
        if role == "user":
            system = ""
        out.append(f"<start_of_turn>{role}\n{text}<end_of_turn>\n")
    out.append("<start_of_turn>model\n" + prefill)
    return "".join(out)


class _TokenCounter:
    """A stopping criterion that never stops: called once per sampled token, so it counts them."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, input_ids, logits) -> bool:
        self.n += 1
        return False


class FirstTokenChoice:
    """A logits processor that makes the first generated words one of given options, picked by the model.

    At the first generated position it reads the softmax probability of each option's single-token spellings
    (token ids in `options`: option -> [canonical spelling's tokens, then the first token of every other
    single-token spelling]), sums them per option, takes the most probable option, and forces that option's
    canonical tokens one by one; after them it leaves the logits alone. `choice` holds the result."""

    def __init__(self, canonical: dict[str, list[int]], counted: dict[str, list[int]]):
        self.canonical, self.counted = canonical, counted
        self.step = 0
        self.forced: list[int] = []
        self.choice: Choice | None = None

    def __call__(self, input_ids, scores):
        import numpy as np
        if self.step == 0:
            x = np.asarray(scores, dtype=np.float64)
            p = np.exp(x - x.max())
            p /= p.sum()
            probs = {opt: float(sum(p[t] for t in set(ids))) for opt, ids in self.counted.items()}
            best = max(probs, key=lambda o: (probs[o], -list(probs).index(o)))
            self.choice = Choice(best, {k: round(v, 6) for k, v in probs.items()})
            self.forced = list(self.canonical[best])
        step, self.step = self.step, self.step + 1
        if step < len(self.forced):
            out = np.full_like(scores, -np.inf)
            out[self.forced[step]] = 0.0
            return out
        return scores


class LlamaCppBackend(Backend):
    name = "llamacpp"
    supports_choice = True

    def __init__(self, model: str, *, context_window: int, n_threads: int | None = None, seed: int = 0,
                 verbose: bool = False):
        super().__init__()
        try:
            import llama_cpp
        except ImportError:
            raise BackendError("llama-cpp-python is not installed: run `make setup` (builds it from source)") from None
        self._lc = llama_cpp
        path, entry = resolve_model(model)
        _check_gguf(path)
        self.model_name = entry.name if entry else path.name
        self.model_path = path
        self.chat_format = entry.chat_format if entry else None
        self.n_threads = n_threads or physical_cores()
        offload = bool(llama_cpp.llama_supports_gpu_offload())
        self.gpu_layers = -1 if offload else 0
        self.accelerator = ("metal" if os.uname().sysname == "Darwin" else "cuda") if offload else "cpu"
        t0 = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=context_window, n_threads=self.n_threads,
                                       n_threads_batch=self.n_threads, n_gpu_layers=self.gpu_layers,
                                       seed=seed, verbose=verbose)
        except (ValueError, RuntimeError) as e:
            raise ModelNotFound(f"llama.cpp could not load {path.name} ({e}): the file may be corrupt; "
                                f"reinstall it (`make setup`) or pass another --model") from None
        self.load_s = time.perf_counter() - t0
        self._load_reported = False
        template = None if self.chat_format else self.llm.metadata.get("tokenizer.chat_template")
        if self.chat_format == "gemma":
            self._render = render_gemma
        else:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
            bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode("utf-8", "replace")
            eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode("utf-8", "replace")
            self.chat_format = "gguf-template" if template else "chatml"
            fmt = Jinja2ChatFormatter(template=template or CHATML, eos_token=eos, bos_token=bos)

            def _render(messages: list[Message], prefill: str = "") -> str:
                return fmt(messages=[{"role": m.role, "content": m.content} for m in messages]).prompt + prefill
            self._render = _render
        self.prompt_log: list[list[int]] | None = None   # set to [] to keep each call's prompt tokens
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.llm._model.vocab))
        self._bos_text = self.llm.detokenize([self.llm.token_bos()], special=True).decode("utf-8", "replace")

    # -- tokens ---------------------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        add_bos = self._add_bos and not (self._bos_text and text.startswith(self._bos_text))
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def render(self, messages: list[Message], prefill: str = "") -> str:
        return self._render(messages, prefill)

    def prefix_cached(self, tokens: list[int]) -> int:
        """Tokens of this prompt already in the KV cache, as llama-cpp-python's generate() will reuse them."""
        n = self.llm.n_tokens
        if n == 0:
            return 0
        lcp = 0
        for a, b in zip(self.llm._input_ids[:n], tokens):
            if a != b:
                break
            lcp += 1
        return lcp - 1 if lcp == len(tokens) else lcp

    # -- generation -----------------------------------------------------------------------------------------
    def choice_processor(self, options: dict[str, list[str]]) -> FirstTokenChoice:
        """The logits processor for `choose_first`: each option's canonical (first) spelling as tokens, and the
        first token of each of its spellings that is a single token (a spelling split into pieces, e.g. " MAYBE",
        would count an unrelated piece, so it does not count). A token shared by two options counts for neither."""
        canonical, counted = {}, {}
        for opt, spellings in options.items():
            canonical[opt] = self.llm.tokenize(spellings[0].encode("utf-8"), add_bos=False, special=False)
            counted[opt] = [t[0] for t in (self.llm.tokenize(s.encode("utf-8"), add_bos=False, special=False)
                                           for s in spellings) if len(t) == 1]
        shared = {t for o in counted for t in counted[o] if any(t in counted[x] for x in counted if x != o)}
        counted = {o: [t for t in ids if t not in shared] or canonical[o][:1] for o, ids in counted.items()}
        return FirstTokenChoice(canonical, counted)

    def stream(self, messages: list[Message], *, max_tokens: int, prefill: str = "",
               stop: list[str] | None = None, choose_first: dict[str, list[str]] | None = None) -> Iterator[str]:
        self.last_choice = None
        chooser = self.choice_processor(choose_first) if choose_first else None
        tokens = self.tokenize(self.render(messages, prefill))
        if len(tokens) + max_tokens > self.llm.n_ctx():
            raise BackendError(f"prompt of {len(tokens)} tokens + {max_tokens} to generate exceeds the "
                               f"context window ({self.llm.n_ctx()}): use a profile with a larger context_window")
        cached = self.prefix_cached(tokens)
        if self.prompt_log is not None:
            self.prompt_log.append(list(tokens))
        lc = self._lc
        lc.llama_perf_context_reset(self.llm.ctx)
        counter = _TokenCounter()
        finish = None
        t0 = time.perf_counter()
        extra = {"logits_processor": lc.LogitsProcessorList([chooser])} if chooser else {}
        for chunk in self.llm.create_completion(tokens, max_tokens=max_tokens, temperature=0.0,
                                                repeat_penalty=1.1, stream=True, stop=stop or [],
                                                stopping_criteria=lc.StoppingCriteriaList([counter]), **extra):
            choice = chunk["choices"][0]
            finish = choice.get("finish_reason") or finish
            yield choice.get("text") or ""
        total = time.perf_counter() - t0
        perf = lc.llama_perf_context(self.llm.ctx)
        # llama.cpp counts single-token decodes in n_eval; a 1-token prompt remainder lands there too.
        n_decode = int(perf.n_eval)
        self.last_stats = GenerationStats(
            prompt_tokens=len(tokens), prompt_tokens_evaluated=len(tokens) - cached,
            tokens_generated=counter.n,
            native_prompt_eval_s=perf.t_p_eval_ms / 1000.0 if perf.n_p_eval else None,
            native_decode_s=perf.t_eval_ms / 1000.0 if n_decode else None,
            native_decode_tokens=n_decode or None,
            load_s=None if self._load_reported else self.load_s, total_s=total, finish_reason=finish)
        self._load_reported = True
        if chooser is not None:
            self.last_choice = chooser.choice

    def describe(self) -> dict:
        try:
            size = round(self.model_path.stat().st_size / 2**20, 1)
        except OSError:
            size = None
        import hashlib
        return {"name": self.model_name, "path_sha256_16": hashlib.sha256(str(self.model_path).encode()).hexdigest()[:16],
                "file_size_mb": size, "chat_format": self.chat_format, "n_threads": self.n_threads,
                "gpu_layers": self.gpu_layers, "backend_version": self._lc.__version__}

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None
