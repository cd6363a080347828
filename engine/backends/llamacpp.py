"""The embedded default backend: llama.cpp in-process through llama-cpp-python. No server.

Threads: chosen from the CPUs actually free when the backend is created (engine.threads), unless given.
Counters: every figure of a call comes from llama.cpp itself and is cross-checked (`reconcile`):
    tokens sampled            llama.cpp's sampler counter (`llama_perf_sampler.n_sample`), checked against the
                              tokens llama-cpp-python's generate() handed over
    tokens_generated          sampled minus an end-of-generation token (llama.cpp's vocabulary says which), so a
                              call stopped by its token limit stores exactly that limit
    prompt_tokens_evaluated   llama.cpp's prompt-eval counter read at the first sampled token, plus the 1-token
                              prompt remainder llama.cpp counts as a single-token decode (n_eval)
    decode steps              n_eval since the first sampled token: the last sampled token is never decoded
Deadline: the pipeline checks the run's deadline (Backend.deadline) between streamed tokens, and llama.cpp's
abort callback (`_AbortFlag`, C only) stops a prompt evaluation or a decode that outlasts it (llama_decode
returns 2), so no call overruns the run's timeout by more than one graph node.
Grammar: a call's output format (engine.grammar) is sampled under its GBNF, checked against the greedy choice
first (`_GrammarFirstChoice`): the same tokens as llama.cpp's whole-vocabulary grammar sampler, at a fraction of
its cost.
Log: llama.cpp's own log stays quiet unless `show_native_log(True)` (the CLI's `--verbose`) lets it through.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .base import Backend, BackendError, Choice, ContextTooLarge, GenerationStats, Message, ModelNotFound
from .weights import SHIPPED, cached_copy, discard, wanted
from .registry import MODELS, installed_models, resolve_model
from ..index import cache_root
from .. import threads as threads_mod
from ..synthesis import calibrate, pick

if TYPE_CHECKING:
    from ..grammar import OutputFormat

log = logging.getLogger(__name__)
_NATIVE_LOGGER = "llama-cpp-python"     # the logger llama-cpp-python's llama_log_set callback consults
_show_native_log = False


def show_native_log(on: bool) -> None:
    """Let llama.cpp's own log (load details, `decode: removing memory module entries ...`) through to stderr,
    or keep it quiet: the default, since the engine reports what a user needs itself."""
    global _show_native_log
    _show_native_log = on
    _apply_native_log(on)


def _apply_native_log(on: bool) -> None:
    """Set the level that llama-cpp-python's log callback checks; above CRITICAL lets no line through.
    Llama() resets it (to ERROR when not verbose), so this runs again after each load."""
    logging.getLogger(_NATIVE_LOGGER).setLevel(logging.DEBUG if on else logging.CRITICAL + 1)


def prepare_cpu_weights() -> None:
    """Write the CPU copies of the installed embedded models now (a warm-up step), so that no timed run pays
    for writing one. Nothing to do on a GPU, or with RESEARCH_BENCH_WEIGHTS=shipped."""
    import llama_cpp
    accelerator = "gpu" if llama_cpp.llama_supports_gpu_offload() else "cpu"
    _apply_native_log(_show_native_log)          # the quantizer logs every tensor it writes
    for entry in MODELS.values():
        wtype = wanted(entry.cpu_weights, accelerator)
        if wtype and installed_models().get(entry.name):
            cached_copy(entry.locate(), wtype, llama_cpp, cache_root())


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


# ---- llama.cpp's counters and their reconciliation (pure) -------------------------------------------------------

@dataclass(frozen=True)
class PerfReading:
    """`llama_perf_context` as llama.cpp reports it. llama.cpp reports a count of 0 as 1 (max(1, n)); a counter
    whose timer is still 0 has counted nothing (perf timers are on: the backend creates its context so)."""
    n_p_eval: int          # tokens evaluated in batches of 2 or more
    t_p_eval_ms: float
    n_eval: int            # single-token decodes (generated tokens, and a 1-token prompt remainder)
    t_eval_ms: float

    @property
    def batch_tokens(self) -> int:
        return self.n_p_eval if self.t_p_eval_ms > 0 else 0

    @property
    def single_decodes(self) -> int:
        return self.n_eval if self.t_eval_ms > 0 else 0


@dataclass(frozen=True)
class CallCounters:
    prompt_tokens_evaluated: int
    tokens_sampled: int
    tokens_generated: int
    decode_steps: int
    mismatches: tuple[str, ...] = ()


def reconcile(*, first: PerfReading | None, end: PerfReading, n_sample: int, handed_over: int, last_is_eog: bool,
              token_chunks: int, finished: bool) -> CallCounters:
    """One call's counters from llama.cpp's own, cross-checked.

    first: the perf reading at the first sampled token (before any generated token is decoded); None when no
    token was sampled. end: the reading when the call ended. n_sample: llama.cpp's sampler counter.
    handed_over: tokens llama-cpp-python's generate() yielded. last_is_eog: the last sampled token ends
    generation (llama.cpp's vocabulary). token_chunks: streamed chunks that carried text tokens. finished: the
    call ran to its end (not interrupted)."""
    at_prompt_end = first if first is not None else end
    evaluated = at_prompt_end.batch_tokens + at_prompt_end.single_decodes
    decodes = end.single_decodes - first.single_decodes if first is not None else 0
    generated = n_sample - (1 if last_is_eog and n_sample else 0)
    bad: list[str] = []
    if n_sample != handed_over:
        bad.append(f"llama.cpp sampled {n_sample} tokens, llama-cpp-python handed over {handed_over}")
    if first is not None and end.batch_tokens != first.batch_tokens:
        bad.append(f"prompt-eval counter moved during generation ({first.batch_tokens} -> {end.batch_tokens})")
    expected = {max(0, n_sample - 1)} if finished else {max(0, n_sample - 1), n_sample}
    if decodes not in expected:
        bad.append(f"{decodes} decode steps for {n_sample} sampled tokens (expected {n_sample - 1})")
    if token_chunks > generated:
        bad.append(f"{token_chunks} streamed chunks carry more than the {generated} tokens generated")
    return CallCounters(evaluated, n_sample, generated, decodes, tuple(bad))


@dataclass
class _CallProbe:
    """What one call's generate() handed over, and llama.cpp's counters at its first sampled token."""
    read_perf: object
    first: PerfReading | None = None
    handed_over: int = 0
    last_token: int | None = None

    def sampled(self, token: int) -> None:
        if self.first is None:
            self.first = self.read_perf()
        self.handed_over += 1
        self.last_token = token


class _AbortFlag:
    """llama.cpp's abort callback without Python: libc's strlen over a 2-byte buffer returns 1 (abort) once the
    flag byte is set and 0 before. ggml calls the callback between graph nodes; being C, it costs nothing per
    node, takes no GIL, and no signal handler (a harness's timeout) can run inside it -- a Python callback can
    be interrupted there, and ctypes then returns garbage to llama.cpp. A timer thread sets the flag at the
    run's deadline. `available` is False where libc's strlen cannot be found (no abort: between-token checks)."""

    def __init__(self, llama_cpp):
        import ctypes
        self.buf = ctypes.create_string_buffer(2)
        self.data = ctypes.cast(self.buf, ctypes.c_void_p)
        try:
            strlen = ctypes.CDLL(None).strlen
        except (OSError, AttributeError, TypeError):
            try:
                strlen = ctypes.cdll.msvcrt.strlen
            except (OSError, AttributeError):
                strlen = None
        self.available = strlen is not None
        self.fn = (llama_cpp.ggml_abort_callback(ctypes.cast(strlen, ctypes.c_void_p).value) if strlen
                   else llama_cpp.ggml_abort_callback())

    def set(self) -> None:
        self.buf[0] = b"\x01"

    def clear(self) -> None:
        self.buf[0] = b"\x00"

    @property
    def is_set(self) -> bool:
        return self.buf[0] != b"\x00"


_COUNTING_LLAMA = None


class _GrammarFirstChoice:
    """A grammar checked against the greedy choice first (as llama.cpp's own common sampler does): the token with
    the highest logit is tested alone, and only when the grammar refuses it is the grammar applied to the whole
    vocabulary. Greedy decoding picks the same token either way; the whole-vocabulary pass, whose cost grows with
    the vocabulary, runs only at the steps where the model's first choice breaks the format.

    It is a llama.cpp sampler written in Python (apply and accept), placed in the chain after the repetition
    penalty and before the greedy pick; `accept` advances the grammar with the token picked."""

    TOP_FEW = 64

    def __init__(self, llama_cpp, vocab, gbnf: str) -> None:
        import ctypes
        self._lc, self._ct = llama_cpp, ctypes
        self.grammar = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not self.grammar:
            raise BackendError("llama.cpp refused the output grammar: report it (the engine built it)")
        self.full_passes = self.few_passes = self.steps = 0
        self._few = (llama_cpp.llama_token_data * self.TOP_FEW)()
        self._arr = llama_cpp.llama_token_data_array(data=self._few, size=1, selected=-1, sorted=False)
        iface = llama_cpp.llama_sampler_i()
        self._apply_ref = llama_cpp.llama_sampler_i_apply(lambda smpl, cur_p: self.apply(cur_p))
        self._accept_ref = llama_cpp.llama_sampler_i_accept(lambda smpl, token: self.accept(token))
        iface.apply, iface.accept = self._apply_ref, self._accept_ref
        iface.name = llama_cpp.llama_sampler_i_name(0)
        iface.reset = llama_cpp.llama_sampler_i_reset(0)
        iface.clone = llama_cpp.llama_sampler_i_clone(0)
        iface.free = llama_cpp.llama_sampler_i_free(0)
        self._iface = iface
        self.sampler = llama_cpp.llama_sampler()
        self.sampler.iface = ctypes.pointer(iface)
        self.sampler.ctx = None

    def _allowed(self, ids, logits) -> "object":
        """The grammar's verdict on a few candidates: their logits after it (-inf where refused)."""
        import numpy as np
        n = len(ids)
        for i in range(n):
            d = self._few[i]
            d.id, d.logit, d.p = int(ids[i]), float(logits[i]), 0.0
        self._arr.size, self._arr.selected, self._arr.sorted = n, -1, False
        self._lc.llama_sampler_apply(self.grammar, self._ct.byref(self._arr))
        return np.array([self._few[i].logit for i in range(n)])

    def apply(self, cur_p) -> None:
        """Greedy under the grammar, cheapest check first: the top token alone, then the TOP_FEW best (the best
        of them the grammar allows is the best it allows at all), and only then the whole vocabulary. The token
        found is made the greedy pick (its logit raised to +inf); the whole-vocabulary pass leaves the grammar's
        own -inf marks."""
        import numpy as np
        arr = cur_p.contents
        data = np.ctypeslib.as_array(arr.data, shape=(arr.size,))
        logits = data["logit"]
        self.steps += 1
        best = int(np.argmax(logits))
        if np.isfinite(self._allowed([data["id"][best]], [logits[best]])[0]):
            return
        few = np.argpartition(-logits, self.TOP_FEW)[:self.TOP_FEW]
        after = self._allowed(data["id"][few], logits[few])
        if np.isfinite(after).any():
            self.few_passes += 1
            logits[few[int(np.argmax(after))]] = np.inf
            return
        self.full_passes += 1
        self._lc.llama_sampler_apply(self.grammar, cur_p)

    def accept(self, token: int) -> None:
        self._lc.llama_sampler_accept(self.grammar, token)

    def free(self) -> None:
        if self.grammar:
            self._lc.llama_sampler_free(self.grammar)
            self.grammar = None


def _counting_llama(llama_cpp):
    """llama_cpp.Llama whose generate() reports every token it hands over to `self.probe`, and which samples
    under a grammar greedy-choice first (`_GrammarFirstChoice`) when a call sets `self.lazy_grammar`."""
    global _COUNTING_LLAMA
    if _COUNTING_LLAMA is None:
        class CountingLlama(llama_cpp.Llama):
            probe: _CallProbe | None = None
            lazy_grammar: _GrammarFirstChoice | None = None

            def _init_sampler(self, *args, **kwargs):
                import ctypes
                lazy = self.lazy_grammar
                sampler = super()._init_sampler(*args, **kwargs)
                if lazy is None:
                    return sampler
                # The chain is [logits processor], penalties, greedy: the grammar goes before the greedy pick.
                chain = sampler.sampler
                n = llama_cpp.llama_sampler_chain_n(chain)
                greedy = llama_cpp.llama_sampler_chain_remove(chain, n - 1)
                llama_cpp.llama_sampler_chain_add(chain, ctypes.pointer(lazy.sampler))
                sampler.custom_samplers.append((n - 1, lazy))
                llama_cpp.llama_sampler_chain_add(chain, greedy)
                return sampler

            def generate(self, tokens, *args, **kwargs):
                probe = self.probe
                for token in super().generate(tokens, *args, **kwargs):
                    if probe is not None:
                        probe.sampled(token)
                    yield token
        _COUNTING_LLAMA = CountingLlama
    return _COUNTING_LLAMA


class FirstTokenChoice:
    """A logits processor that makes the first generated words one of given options, picked by the model.

    At the first generated position it reads the softmax probability of each option's single-token spellings
    (token ids in `options`: option -> [canonical spelling's tokens, then the first token of every other
    single-token spelling]), sums them per option, takes the most probable option (after calibrating by `prior`
    when given: engine.synthesis.calibrate), and forces that option's canonical tokens one by one; after them it
    leaves the logits alone. `choice` holds the result."""

    def __init__(self, canonical: dict[str, list[int]], counted: dict[str, list[int]],
                 prior: dict[str, float] | None = None):
        self.canonical, self.counted, self.prior = canonical, counted, prior
        self.step = 0
        self.forced: list[int] = []
        self.choice: Choice | None = None

    def read(self, scores) -> dict[str, float]:
        """Each option's probability (summed over its counted tokens) in these logits."""
        import numpy as np
        x = np.asarray(scores, dtype=np.float64)
        p = np.exp(x - x.max())
        p /= p.sum()
        return {opt: float(sum(p[t] for t in set(ids))) for opt, ids in self.counted.items()}

    def __call__(self, input_ids, scores):
        import numpy as np
        if self.step == 0:
            raw = {k: round(v, 6) for k, v in self.read(scores).items()}
            if self.prior is None:
                self.choice = Choice(pick(raw), raw, raw=raw)
            else:
                cal = {k: round(v, 6) for k, v in calibrate(raw, self.prior).items()}
                self.choice = Choice(pick(cal), cal, "calibrated_token_probabilities", raw, dict(self.prior))
            self.forced = list(self.canonical[self.choice.choice])
        step, self.step = self.step, self.step + 1
        if step < len(self.forced):
            out = np.full_like(scores, -np.inf)
            out[self.forced[step]] = 0.0
            return out
        return scores


#: How many prompts' first-token probabilities a process remembers (oldest dropped first).
PROBABILITY_MEMO_SIZE = 512


class LlamaCppBackend(Backend):
    name = "llamacpp"
    supports_choice = True
    supports_calibration = True
    supports_format = True
    #: first_token_probabilities' results by (model file, prompt text, options), shared by the process's backends
    _probability_memo: dict[tuple, dict[str, float]] = {}

    def __init__(self, model: str, *, context_window: int, n_threads: int | None = None, seed: int = 0,
                 verbose: bool | None = None):
        super().__init__()
        verbose = _show_native_log if verbose is None else verbose
        window = threads_mod.CpuWindow().start() if n_threads is None else None
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
        load_threads = n_threads or os.cpu_count() or 1     # set to the choice once loaded (threads decode only)
        offload = bool(llama_cpp.llama_supports_gpu_offload())
        self.gpu_layers = -1 if offload else 0
        self.accelerator = ("metal" if os.uname().sysname == "Darwin" else "cuda") if offload else "cpu"
        self.n_ctx_train = gguf_context_length(path)
        if self.n_ctx_train and context_window > self.n_ctx_train:
            raise ContextTooLarge(f"the profile's context_window {context_window:,} is larger than the "
                                  f"{self.n_ctx_train:,}-token context {self.model_name} was trained on: set "
                                  f"context_window <= {self.n_ctx_train:,} in the profile, or use another model")
        t0 = time.perf_counter()
        wtype = wanted(entry.cpu_weights if entry else None, self.accelerator)
        self.weights = wtype or SHIPPED
        settings = dict(n_ctx=context_window, n_threads=load_threads, n_threads_batch=load_threads,
                        n_gpu_layers=self.gpu_layers, seed=seed, verbose=verbose)
        self.llm = self._load(path, wtype, settings)
        self.load_s = time.perf_counter() - t0
        # The CPU window overlapped the load (this process's own CPU time is not counted as load).
        choice = threads_mod.choose_threads(window.reading()) if window else threads_mod.requested(n_threads)
        self.set_threads(choice)
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
        self.chunk_log: list[list[float]] | None = None  # set to [] to keep each call's chunk stamps (perf_counter)
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.llm._model.vocab))
        self._bos_text = self.llm.detokenize([self.llm.token_bos()], special=True).decode("utf-8", "replace")
        self._abort = _AbortFlag(llama_cpp)          # kept referenced while installed
        if self._abort.available:
            llama_cpp.llama_set_abort_callback(self.llm.ctx, self._abort.fn, self._abort.data)

    def set_threads(self, choice: "threads_mod.ThreadChoice") -> None:
        """Use `choice.n_threads` for decoding and prompt batches from the next call on."""
        n = choice.n_threads
        self._lc.llama_set_n_threads(self.llm.ctx, n, n)
        self.llm.n_threads = self.llm.n_threads_batch = n
        self.llm.context_params.n_threads = self.llm.context_params.n_threads_batch = n
        self.n_threads = n
        self.threads = choice.as_dict()

    # -- tokens ---------------------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        add_bos = self._add_bos and not (self._bos_text and text.startswith(self._bos_text))
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def render(self, messages: list[Message], prefill: str = "") -> str:
        return self._render(messages, prefill)

    def _perf(self) -> PerfReading:
        p = self._lc.llama_perf_context(self.llm.ctx)
        return PerfReading(int(p.n_p_eval), float(p.t_p_eval_ms), int(p.n_eval), float(p.t_eval_ms))

    def _n_sample(self) -> int:
        sampler = getattr(self.llm, "_sampler", None)
        chain = getattr(sampler, "sampler", None)
        return int(self._lc.llama_perf_sampler(chain).n_sample) if chain else 0

    # -- generation -----------------------------------------------------------------------------------------
    def choice_processor(self, options: dict[str, list[str]],
                         prior: dict[str, float] | None = None) -> FirstTokenChoice:
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
        return FirstTokenChoice(canonical, counted, prior)

    def first_token_probabilities(self, messages: list[Message], options: dict[str, list[str]],
                                  prefill: str = "") -> tuple[dict[str, float], dict]:
        """The options' probabilities at this conversation's first generated position: one evaluation of its
        prompt, remembered per model file and prompt text for the process (a content-free conversation recurs
        across runs). The running conversation's cache is set aside before and put back after, so the next call
        still reuses it: only its tokens and its sequence's KV cells (`_set_aside`), not llama-cpp-python's
        whole state (save_state copies the score rows and the context's state several times over)."""
        text = self.render(messages, prefill)
        key = (str(self.model_path), text, tuple((o, tuple(s)) for o, s in options.items()))
        memo = LlamaCppBackend._probability_memo
        if key in memo:
            return dict(memo[key]), {"time_s": 0.0, "prompt_tokens": 0, "cached": True}
        tokens = self.tokenize(text)
        if self.deadline is not None:
            self.deadline.check("decision calibration")
        t0 = time.perf_counter()
        saved = self._set_aside()
        try:
            import numpy as np
            self.llm.reset()
            self.llm.eval(tokens)          # logits of the last token only (the context keeps no others)
            logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),)).copy()
            probs = self.choice_processor(options).read(logits)
        finally:
            self._put_back(saved)
        probs = {k: round(v, 6) for k, v in probs.items()}
        if len(memo) >= PROBABILITY_MEMO_SIZE:
            memo.pop(next(iter(memo)))
        memo[key] = probs
        return dict(probs), {"time_s": round(time.perf_counter() - t0, 4), "prompt_tokens": len(tokens),
                             "cached": False}

    def _set_aside(self) -> tuple | None:
        """The running conversation's cache as (tokens, its sequence's KV cells): llama.cpp's copy of sequence 0
        (no logits, no output buffers), one buffer. None when the cache is empty or the copy fails (the next
        call then evaluates its prompt afresh)."""
        import ctypes
        n = self.llm.n_tokens
        if not n:
            return None
        ctx = self.llm._ctx.ctx
        size = int(self._lc.llama_state_seq_get_size(ctx, 0))
        buf = (ctypes.c_uint8 * size)()
        got = int(self._lc.llama_state_seq_get_data(ctx, buf, size, 0))
        return (self.llm.input_ids[:n].copy(), buf, got) if 0 < got <= size else None

    def _put_back(self, saved: tuple | None) -> None:
        """Restore what `_set_aside` kept; the next generation decodes at least its last token again (its
        logits are not kept). Nothing kept: the evaluated prompt stays (a next prompt may share its prefix). On
        failure the cache is left empty."""
        if saved is None:
            return
        ids, buf, size = saved
        self.llm.reset()
        self.llm._ctx.kv_cache_seq_rm(0, -1, -1)
        if not self._lc.llama_state_seq_set_data(self.llm._ctx.ctx, buf, size, 0):
            self.llm._ctx.kv_cache_seq_rm(0, -1, -1)
            return
        self.llm.input_ids[:len(ids)] = ids
        self.llm.n_tokens = len(ids)

    def stream(self, messages: list[Message], *, max_tokens: int, prefill: str = "",
               stop: list[str] | None = None, choose_first: dict[str, list[str]] | None = None,
               choice_prior: dict[str, float] | None = None,
               output_format: "OutputFormat | None" = None) -> Iterator[str]:
        self.last_choice = None
        chooser = self.choice_processor(choose_first, choice_prior) if choose_first else None
        tokens = self.tokenize(self.render(messages, prefill))
        if len(tokens) + max_tokens > self.llm.n_ctx():
            raise BackendError(f"prompt of {len(tokens)} tokens + {max_tokens} to generate exceeds the "
                               f"context window ({self.llm.n_ctx()}): use a profile with a larger context_window")
        if self.prompt_log is not None:
            self.prompt_log.append(list(tokens))
        stamps: list[float] = []
        if self.chunk_log is not None:
            self.chunk_log.append(stamps)
        lc, deadline = self._lc, self.deadline
        if deadline is not None:
            deadline.check("prompt evaluation")
        lc.llama_perf_context_reset(self.llm.ctx)
        self.llm._sampler = None      # this call's sampler chain (and its counter) is created by generate()
        probe = _CallProbe(self._perf)
        self.llm.probe = probe
        self._abort.clear()
        timer = None
        if deadline is not None and deadline.seconds is not None and self._abort.available:
            timer = threading.Timer(max(0.0, deadline.remaining()), self._abort.set)   # stops llama.cpp mid-batch
            timer.daemon = True
            timer.start()
        finish, token_chunks, finished = None, 0, False
        lazy = None
        t0 = time.perf_counter()
        try:
            extra: dict = {"logits_processor": lc.LogitsProcessorList([chooser])} if chooser else {}
            if output_format is not None:     # sampled after the chooser: a forced decision word must fit it
                self.llm.lazy_grammar = lazy = _GrammarFirstChoice(lc, self.llm._model.vocab, output_format.gbnf)
            for chunk in self.llm.create_completion(tokens, max_tokens=max_tokens, temperature=0.0,
                                                    repeat_penalty=1.1, stream=True, stop=stop or [], **extra):
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                text = choice.get("text") or ""
                if choice.get("finish_reason") is None:
                    token_chunks += 1
                if text:
                    stamps.append(time.perf_counter())
                yield text       # the pipeline checks the run's deadline between chunks
            finished = True
        except RuntimeError as e:
            if self._abort.is_set and deadline is not None:     # llama_decode returned 2: aborted at the deadline
                where = "prompt evaluation" if probe.first is None else "token generation"
                raise deadline.error(f"{where} (stopped inside llama.cpp)") from None
            raise BackendError(f"llama.cpp failed during generation ({e}): run again; if it persists, use a "
                               f"profile with a larger context_window or another --model") from None
        finally:
            if timer is not None:
                timer.cancel()
            self.llm.probe = None
            self.llm.lazy_grammar = None
            total = time.perf_counter() - t0
            perf = self._perf()
            n_sample = self._n_sample()
            last = probe.last_token
            eog = last is not None and bool(lc.llama_vocab_is_eog(self.llm._model.vocab, last)) and finished
            c = reconcile(first=probe.first, end=perf, n_sample=n_sample, handed_over=probe.handed_over,
                          last_is_eog=eog, token_chunks=token_chunks, finished=finished)
            self.last_stats = GenerationStats(
                prompt_tokens=len(tokens), prompt_tokens_evaluated=c.prompt_tokens_evaluated,
                tokens_generated=c.tokens_generated,
                native_prompt_eval_s=perf.t_p_eval_ms / 1000.0 if perf.batch_tokens else None,
                native_decode_s=perf.t_eval_ms / 1000.0 if perf.single_decodes else None,
                native_decode_tokens=perf.single_decodes or None,
                load_s=None if self._load_reported else self.load_s, total_s=total,
                finish_reason=finish if finished else None, tokens_sampled=c.tokens_sampled,
                counter_mismatch="; ".join(c.mismatches) or None)
            self._load_reported = True
            if chooser is not None:
                self.last_choice = chooser.choice
            if lazy is not None:    # the chain is not sampled again (the next call builds its own)
                self.grammar_passes = (lazy.full_passes, lazy.few_passes, lazy.steps)
                lazy.free()

    def _load(self, shipped: Path, wtype: str | None, settings: dict):
        """The model, from its CPU copy where `wtype` names one; a copy that cannot be loaded is written again."""
        _apply_native_log(settings["verbose"])       # the quantizer logs every tensor it writes
        path = cached_copy(shipped, wtype, self._lc, cache_root()) if wtype else shipped
        try:
            return self._open(path, settings)
        except ModelNotFound:
            if path == shipped:
                raise
        log.warning("the cached copy %s could not be loaded: writing it again", path)
        discard(path)
        return self._open(cached_copy(shipped, wtype, self._lc, cache_root()), settings)

    def _open(self, path: Path, settings: dict):
        self.model_path = path
        try:
            return _counting_llama(self._lc)(model_path=str(path), **settings)
        except (ValueError, RuntimeError) as e:
            raise ModelNotFound(f"llama.cpp could not load {path.name} ({e}): the file may be corrupt; "
                                f"reinstall it (`make setup`) or pass another --model") from None
        finally:
            _apply_native_log(settings["verbose"])

    def describe(self) -> dict:
        try:
            size = round(self.model_path.stat().st_size / 2**20, 1)
        except OSError:
            size = None
        import hashlib
        return {"name": self.model_name, "path_sha256_16": hashlib.sha256(str(self.model_path).encode()).hexdigest()[:16],
                "file_size_mb": size, "chat_format": self.chat_format, "n_threads": self.n_threads,
                "gpu_layers": self.gpu_layers, "backend_version": self._lc.__version__, "weights": self.weights}

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None
