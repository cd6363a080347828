"""One interface for every backend: a stream of text deltas, then the backend's own timing stats."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Iterator

from ..deadline import Deadline

if TYPE_CHECKING:
    from ..grammar import OutputFormat


class BackendError(RuntimeError):
    """A backend cannot serve the run. The message is one line and names the fix."""


class BackendUnavailable(BackendError):
    """The server is down or does not answer in time."""


class ModelNotFound(BackendError):
    """The model is not installed / not pulled / the file is missing or unreadable."""


class StreamInterrupted(BackendError):
    """The stream ended before the backend said it was done."""


class ContextTooLarge(BackendError):
    """The profile's context_window is larger than the context the model was trained on (read from the model)."""


@dataclass
class Message:
    role: str      # system | user | assistant
    content: str


@dataclass
class GenerationStats:
    """Backend-native accounting of one generation call (None where the backend does not report it)."""
    prompt_tokens: int                  # length of the full prompt, cached prefix included
    prompt_tokens_evaluated: int        # tokens actually evaluated (cache hits excluded)
    tokens_generated: int
    native_prompt_eval_s: float | None
    native_decode_s: float | None
    native_decode_tokens: int | None    # tokens the native decode timer covers
    load_s: float | None = None
    total_s: float | None = None
    finish_reason: str | None = None    # None: the call was interrupted (its counters cover what ran)
    tokens_sampled: int | None = None   # the runtime's sampler count (an end-of-generation token included)
    counter_mismatch: str | None = None # the runtime's counters disagree with each other or the stream: how

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Choice:
    """What the model picked among given continuations by its own token probabilities (Backend.stream's
    `choose_first`). `raw`: softmax probability of each option's first token at the first generated position,
    summed over the option's single-token spellings. `probabilities`: what the choice was taken on (the raw ones,
    or calibrated by `prior` with engine.synthesis.calibrate); the option with the largest one was written."""
    choice: str
    probabilities: dict[str, float]
    method: str = "token_probabilities"
    raw: dict[str, float] | None = None
    prior: dict[str, float] | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class Backend(ABC):
    name: str = ""
    model_name: str = ""
    accelerator: str = "cpu"
    token_count_method: str = "tokenizer"   # or "estimate" where the backend exposes no tokenizer
    #: Whether stream(choose_first=...) picks by the model's token probabilities (else the option is ignored and
    #: the caller parses the text).
    supports_choice: bool = False
    #: Whether stream() takes `choice_prior` (a calibrated choice) and first_token_probabilities() is served.
    supports_calibration: bool = False
    #: Whether stream() takes `output_format` (engine.grammar.OutputFormat): generation held to its grammar
    #: (llama.cpp) or its JSON Schema (Ollama's structured outputs), the text yielded in the parser's format.
    supports_format: bool = False

    def __init__(self) -> None:
        self.last_stats: GenerationStats | None = None
        self.deadline: Deadline | None = None   # the current run's, set by the pipeline for the run
        self.threads: dict | None = None        # the thread choice and its reason (engine.threads), if it has one
        self.last_choice: Choice | None = None

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abstractmethod
    def render(self, messages: list[Message], prefill: str = "") -> str:
        """The exact prompt text the model sees for this conversation (generation prompt + prefill)."""

    def prompt_tokens(self, messages: list[Message], prefill: str = "") -> int:
        return self.count_tokens(self.render(messages, prefill))

    @abstractmethod
    def stream(self, messages: list[Message], *, max_tokens: int, prefill: str = "",
               stop: list[str] | None = None, choose_first: dict[str, list[str]] | None = None,
               output_format: "OutputFormat | None" = None) -> Iterator[str]:
        """Yield text deltas; when exhausted, self.last_stats holds the call's native stats. A backend bounds what
        the caller cannot interrupt between deltas (a long prompt evaluation, a silent server) by self.deadline,
        raising RunTimeout.

        choose_first: option -> its spellings (e.g. {"yes": [" yes", " Yes"], ...}). A backend that
        supports_choice makes the first generated words the option the model finds most probable (first
        spelling) and leaves the Choice in self.last_choice; others ignore it (last_choice stays None). A backend
        that supports_calibration also takes `choice_prior` (option -> probability): the choice is then taken on
        the probabilities calibrated by it.

        output_format: where supports_format, the output is held to it (engine.grammar); the deltas are the text
        the format stands for, continuing the prefill."""

    def first_token_probabilities(self, messages: list[Message], options: dict[str, list[str]],
                                  prefill: str = "") -> tuple[dict[str, float], dict]:
        """Each option's probability at the first generated position of this conversation, without generating,
        and what it cost ({"time_s", "prompt_tokens", "cached"}). Served where supports_calibration."""
        raise NotImplementedError(f"{self.name or type(self).__name__} exposes no token probabilities")

    def describe(self) -> dict:
        return {"name": self.model_name}

    def close(self) -> None:
        pass
