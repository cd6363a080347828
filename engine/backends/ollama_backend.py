"""Ollama through the official `ollama` client: stream=True, num_ctx from the profile, native timings mapped.

Fails fast and clearly: server not listening, listening but silent, model not pulled, stream cut mid-way.
The run's deadline bounds a call: the stream is read on a helper thread (`_Pump`), so a server that stays silent
(a long prompt evaluation) past the deadline ends the call with RunTimeout at the deadline; the helper then
closes the stream as soon as the server sends anything (or its read timeout passes).
An output format (engine.grammar) goes to the server as a JSON Schema (`format`, Ollama's structured outputs);
the JSON it streams is turned back into the text the format stands for (`StructuredText`), each claim as soon as
its object is complete.
"""
from __future__ import annotations

import json
import math
import queue
import re
import threading
import time
from typing import TYPE_CHECKING, Iterator

from .base import (Backend, BackendUnavailable, ContextTooLarge, GenerationStats, Message, ModelNotFound,
                   StreamInterrupted)
from ..system import HostError, ollama_host, redact_url

if TYPE_CHECKING:
    from ..grammar import OutputFormat

CONNECT_TIMEOUT_S = 3.0


class _Pump:
    """Reads an iterator on a daemon thread: `next(timeout)` returns its next item (None at its end), re-raises
    its error, or raises TimeoutError when nothing came within `timeout`; `stop()` makes the thread close it."""

    def __init__(self, open_iter):
        self._q: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(open_iter,), name="ollama-stream", daemon=True)
        self._thread.start()

    def _run(self, open_iter) -> None:
        it = None
        try:
            it = open_iter()
            for item in it:
                if self._stop.is_set():
                    break
                self._q.put((item, None))
            self._q.put((None, None))
        except Exception as e:
            self._q.put((None, e))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def next(self, timeout: float | None):
        try:
            item, err = self._q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if err is not None:
            raise err
        return item

    def stop(self) -> None:
        self._stop.set()


class StructuredText:
    """A structured-output reply, fed as it streams, turned into the text its format stands for
    (OutputFormat.render): a claims reply yields each claim as soon as its JSON object is complete, any other the
    whole text when the reply ends. `close()` returns what is left (nothing when the reply is not JSON)."""

    _CLAIM = re.compile(r'\{\s*"text"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"passage"\s*:\s*(-?\d+)\s*\}')

    def __init__(self, fmt: "OutputFormat") -> None:
        self.fmt, self.buf, self.sent = fmt, "", ""

    def _new(self, text: str) -> str:
        if not text.startswith(self.sent):
            return ""
        new, self.sent = text[len(self.sent):], text
        return new

    def feed(self, delta: str) -> str:
        self.buf += delta
        if self.fmt.kind != "claims":
            return ""
        objs = []
        for m in self._CLAIM.finditer(self.buf):
            try:
                objs.append({"text": json.loads(m.group(1)), "passage": int(m.group(2))})
            except ValueError:
                break
        return self._new(self.fmt.render({"claims": objs})) if objs else ""

    def close(self) -> str:
        try:
            obj = json.loads(self.buf)
        except ValueError:
            return ""
        return self._new(self.fmt.render(obj))


class OllamaBackend(Backend):
    name = "ollama"
    accelerator = "ollama-server"
    token_count_method = "estimate"   # the client exposes no tokenizer: ~3.5 characters per token, rounded up
    supports_format = True

    def __init__(self, model: str, *, context_window: int, read_timeout_s: float = 60.0):
        super().__init__()
        try:
            self.host = ollama_host()          # before `import ollama`, which fails on a malformed OLLAMA_HOST
        except HostError as e:
            raise BackendUnavailable(str(e)) from None
        import httpx
        import ollama

        self._ollama, self._httpx = ollama, httpx
        self.model_name = model
        self.context_window = context_window
        self.shown_host = redact_url(self.host)
        self.read_timeout_s = read_timeout_s
        self.client = ollama.Client(host=self.host, timeout=httpx.Timeout(read_timeout_s, connect=CONNECT_TIMEOUT_S))
        self.server_version = self._preflight()
        self.threads = {"n_threads": None, "source": "server", "reason": "the Ollama server chooses its own threads"}

    def _unavailable(self, what: str) -> BackendUnavailable:
        return BackendUnavailable(f"Ollama server at {self.shown_host} {what}: start it with `ollama serve` "
                                  f"(or point OLLAMA_HOST at a running server)")

    def _preflight(self) -> str | None:
        httpx = self._httpx
        try:
            with httpx.Client(base_url=self.host, timeout=httpx.Timeout(CONNECT_TIMEOUT_S)) as c:
                r = c.get("/api/version")
                version = r.json().get("version") if r.status_code == 200 else None
        except httpx.ConnectError:
            raise self._unavailable("is not reachable") from None
        except httpx.TimeoutException:
            raise self._unavailable(f"accepted the connection but did not answer within {CONNECT_TIMEOUT_S:.0f} s") from None
        except (httpx.HTTPError, ValueError) as e:
            raise self._unavailable(f"answered with an error ({type(e).__name__})") from None
        try:
            shown = self.client.show(self.model_name)
        except self._ollama.ResponseError as e:
            if e.status_code == 404:
                raise ModelNotFound(f"model '{self.model_name}' is not pulled on {self.shown_host}: run "
                                    f"`ollama pull {self.model_name}`") from None
            raise self._unavailable(f"refused `show {self.model_name}` ({e.status_code})") from None
        except (ConnectionError, httpx.HTTPError):
            raise self._unavailable("stopped answering") from None
        except ValueError as e:   # pydantic ValidationError: the server answered something that is not Ollama
            raise self._unavailable(f"answered `show` with an unexpected reply ({type(e).__name__})") from None
        info = getattr(shown, "modelinfo", None) or {}
        trained = next((v for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)), None)
        if trained and self.context_window > trained:
            raise ContextTooLarge(f"the profile's context_window {self.context_window:,} is larger than the "
                                  f"{trained:,}-token context {self.model_name} was trained on: set context_window "
                                  f"<= {trained:,} in the profile, or use another model")
        return version

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / 3.5)

    def render(self, messages: list[Message], prefill: str = "") -> str:
        return "".join(f"{m.role}: {m.content}\n" for m in messages) + prefill

    def stream(self, messages: list[Message], *, max_tokens: int, prefill: str = "",
               stop: list[str] | None = None, choose_first: dict[str, list[str]] | None = None,
               output_format: "OutputFormat | None" = None) -> Iterator[str]:
        # choose_first is not supported: the client exposes no token probabilities, so the caller parses the
        # decision from the text (supports_choice is False). A structured reply is JSON: no prefill to continue.
        msgs = [{"role": m.role, "content": m.content} for m in messages]
        structured = StructuredText(output_format) if output_format is not None else None
        extra = {"format": output_format.json_schema} if output_format is not None else {}
        if prefill and structured is None:
            msgs.append({"role": "assistant", "content": prefill})   # Ollama continues a final assistant turn
        options = {"num_ctx": self.context_window, "num_predict": max_tokens, "temperature": 0.0}
        if stop:
            options["stop"] = stop
        t0 = time.perf_counter()
        final = None
        deadline = self.deadline
        if deadline is not None:
            deadline.check("a call to the Ollama server")
        chunks = _Pump(lambda: self.client.chat(model=self.model_name, messages=msgs, stream=True, options=options,
                                                **extra))
        try:
            while True:
                left = deadline.remaining() if deadline is not None else None
                try:
                    chunk = chunks.next(timeout=None if left is None else max(0.0, left))
                except TimeoutError:
                    raise deadline.error("a call to the Ollama server (it sent nothing before the deadline)") from None
                except Exception as e:
                    raise self._stream_error(e) from None
                if chunk is None:
                    break
                content = (chunk.message.content if chunk.message else "") or ""
                if chunk.done:
                    final = chunk
                yield structured.feed(content) if structured is not None else content
            if structured is not None:
                yield structured.close()
        finally:
            chunks.stop()
        if final is None:
            raise StreamInterrupted(f"the stream from {self.shown_host} ended before the server said it was done: "
                                    f"check `ollama serve` logs")
        ns = 1e-9
        self.last_stats = GenerationStats(
            prompt_tokens=final.prompt_eval_count or 0,
            prompt_tokens_evaluated=final.prompt_eval_count or 0,
            tokens_generated=final.eval_count or 0,
            native_prompt_eval_s=(final.prompt_eval_duration or 0) * ns or None,
            native_decode_s=(final.eval_duration or 0) * ns or None,
            native_decode_tokens=final.eval_count or None,
            load_s=(final.load_duration or 0) * ns or None,
            total_s=(final.total_duration or 0) * ns or (time.perf_counter() - t0),
            finish_reason=final.done_reason)

    def _stream_error(self, e: Exception) -> Exception:
        """The error a failed stream raises: one line naming the fix (other exceptions pass unchanged)."""
        httpx = self._httpx
        if isinstance(e, self._ollama.ResponseError):
            if e.status_code == 404:
                return ModelNotFound(f"model '{self.model_name}' is not pulled: run `ollama pull {self.model_name}`")
            return StreamInterrupted(f"Ollama returned an error mid-stream ({e.status_code}): see `ollama serve` logs")
        if isinstance(e, httpx.ReadTimeout):
            return self._unavailable(f"sent nothing for {self.read_timeout_s:.0f} s mid-generation")
        if isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError, ConnectionError)):
            return StreamInterrupted(f"the stream from {self.shown_host} was cut mid-generation: check "
                                     f"`ollama serve` (it may have crashed or been restarted)")
        return e

    def describe(self) -> dict:
        return {"name": self.model_name, "path_sha256_16": None, "file_size_mb": None, "chat_format": None,
                "n_threads": None, "gpu_layers": None, "backend_version": self.server_version}
