"""The embedded default backend: llama.cpp in-process through llama-cpp-python. No server."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

from .base import Backend, BackendError, ContextTooLarge, GenerationStats, Message, ModelNotFound
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


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def gguf_context_length(path: Path) -> int | None:
    """The context length a GGUF model was trained on (`<architecture>.context_length` in its metadata), read
    from the file's header without loading the model; None when the header does not say (or is not GGUF v2+)."""
    import struct

    def read(fmt: str):
        size = struct.calcsize(fmt)
        data = fh.read(size)
        if len(data) != size:
            raise EOFError
        return struct.unpack(fmt, data)[0]

    def string() -> str:
        n = read("<Q")
        if n > 1 << 20:                              # a key or name is short: this is not a GGUF header
            raise ValueError("string too long")
        return fh.read(n).decode("utf-8", "replace")

    def skip(vtype: int) -> None:
        if vtype in _GGUF_SCALARS:
            fh.seek(struct.calcsize(_GGUF_SCALARS[vtype]), 1)
        elif vtype == 8:
            fh.seek(read("<Q"), 1)
        elif vtype == 9:
            etype, count = read("<I"), read("<Q")
            if etype in _GGUF_SCALARS:
                fh.seek(struct.calcsize(_GGUF_SCALARS[etype]) * count, 1)
            else:
                for _ in range(count):
                    skip(etype)
        else:
            raise ValueError(f"unknown GGUF value type {vtype}")

    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF" or read("<I") < 2:
                return None
            read("<Q")                                   # tensor count
            arch, lengths = None, {}
            for _ in range(read("<Q")):
                key, vtype = string(), read("<I")
                if key == "general.architecture" and vtype == 8:
                    arch = string()
                elif key.endswith(".context_length") and vtype in (4, 5, 10, 11):
                    lengths[key] = read(_GGUF_SCALARS[vtype])
                else:
                    skip(vtype)
                if arch and f"{arch}.context_length" in lengths:
                    return int(lengths[f"{arch}.context_length"])
    except (OSError, EOFError, ValueError, OverflowError, MemoryError):     # not a header we can read: no check
        return None
    return int(next(iter(lengths.values()))) if len(lengths) == 1 else None


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


class LlamaCppBackend(Backend):
    name = "llamacpp"

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
        self.n_ctx_train = gguf_context_length(path)
        if self.n_ctx_train and context_window > self.n_ctx_train:
            raise ContextTooLarge(f"the profile's context_window {context_window:,} is larger than the "
                                  f"{self.n_ctx_train:,}-token context {self.model_name} was trained on: set "
                                  f"context_window <= {self.n_ctx_train:,} in the profile, or use another model")
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
    def stream(self, messages: list[Message], *, max_tokens: int, prefill: str = "",
               stop: list[str] | None = None) -> Iterator[str]:
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
        for chunk in self.llm.create_completion(tokens, max_tokens=max_tokens, temperature=0.0,
                                                repeat_penalty=1.1, stream=True, stop=stop or [],
                                                stopping_criteria=lc.StoppingCriteriaList([counter])):
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
