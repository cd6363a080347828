"""The Ollama backend through the official client, against loopback sockets (no Ollama server exists here).

FakeOllamaServer is a test double speaking the few endpoints the backend uses; it exists only in tests."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llm_research_bench.engine.backends import (BackendUnavailable, ContextTooLarge, Message, ModelNotFound,
                                                StreamInterrupted, make_backend)
from llm_research_bench.engine.deadline import Deadline, RunTimeout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeOllamaServer:
    """Test double: /api/version, /api/show (404 unless model == 'tiny:1b'; mode 'ctx2048': trained on 2,048
    tokens), /api/chat streaming NDJSON (JSON claims when the request has a `format`; bodies kept)."""

    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self.release = threading.Event()
        self.chat_bodies: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def _json(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._json(200, {"version": "0.9.9-test"}) if self.path == "/api/version" else self._json(404, {})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/api/show":
                    if body.get("model") == "tiny:1b":
                        info = {"llama.context_length": 2048} if outer.mode == "ctx2048" else {}
                        return self._json(200, {"modelfile": "", "details": {}, "model_info": info,
                                                "capabilities": ["completion"]})
                    return self._json(404, {"error": f"model '{body.get('model')}' not found"})
                if self.path == "/api/chat":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-ndjson")
                    self.end_headers()
                    outer.chat_bodies.append(body)
                    words = ["- Claim one", " [1]\n", "- Claim two [2]"]
                    if body.get("format"):      # structured output: the reply is JSON, streamed in pieces
                        words = ['{"claims": [{"text": "Claim one is', ' long enough", "passage": 1}, ',
                                 '{"text": "Claim \\"two\\" is long", "passage": 2}]}']
                    for word in words:
                        self.wfile.write(json.dumps({"model": "tiny:1b", "created_at": "2026-01-01T00:00:00Z",
                                                     "message": {"role": "assistant", "content": word},
                                                     "done": False}).encode() + b"\n")
                        self.wfile.flush()
                    if outer.mode == "cut":
                        return   # connection closes without the final 'done' record
                    if outer.mode == "stall":
                        outer.release.wait(30)   # silent, as a server stuck in a long prompt evaluation
                        return
                    self.wfile.write(json.dumps({
                        "model": "tiny:1b", "created_at": "2026-01-01T00:00:00Z",
                        "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                        "total_duration": 900_000_000, "load_duration": 100_000_000, "prompt_eval_count": 40,
                        "prompt_eval_duration": 200_000_000, "eval_count": 6, "eval_duration": 300_000_000,
                    }).encode() + b"\n")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake(monkeypatch, request):
    srv = FakeOllamaServer(getattr(request, "param", "ok"))
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{srv.port}")
    yield srv
    srv.close()


def test_server_not_listening_fails_fast_naming_ollama_serve(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{free_port()}")
    t = time.perf_counter()
    with pytest.raises(BackendUnavailable, match=r"not reachable: start it with `ollama serve`"):
        make_backend("ollama", "qwen2.5:3b-instruct-q4_K_M", context_window=4096)
    assert time.perf_counter() - t < 5


def test_server_that_accepts_and_never_answers_times_out(monkeypatch):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    held = []
    threading.Thread(target=lambda: held.append(lsock.accept()), daemon=True).start()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{lsock.getsockname()[1]}")
    t = time.perf_counter()
    with pytest.raises(BackendUnavailable, match="did not answer within 3 s.*ollama serve"):
        make_backend("ollama", "qwen2.5:3b-instruct-q4_K_M", context_window=4096)
    assert time.perf_counter() - t < 8
    lsock.close()


def test_credentials_in_host_are_never_shown(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"http://alice:s3cret@127.0.0.1:{free_port()}")
    with pytest.raises(BackendUnavailable) as e:
        make_backend("ollama", "x", context_window=4096)
    assert "s3cret" not in str(e.value) and "alice" not in str(e.value)


def test_model_not_pulled_names_ollama_pull(fake):
    with pytest.raises(ModelNotFound, match=r"run `ollama pull qwen2.5:7b-instruct-q4_K_M`"):
        make_backend("ollama", "qwen2.5:7b-instruct-q4_K_M", context_window=4096)


def test_stream_maps_native_timings(fake):
    b = make_backend("ollama", "tiny:1b", context_window=2048)
    text = "".join(b.stream([Message("user", "q")], max_tokens=32))
    assert text == "- Claim one [1]\n- Claim two [2]"
    s = b.last_stats
    assert (s.prompt_tokens_evaluated, s.tokens_generated, s.finish_reason) == (40, 6, "stop")
    assert s.native_decode_s == pytest.approx(0.3) and s.native_prompt_eval_s == pytest.approx(0.2)
    assert s.load_s == pytest.approx(0.1) and s.total_s == pytest.approx(0.9)
    assert b.describe()["backend_version"] == "0.9.9-test"
    assert b.threads == {"n_threads": None, "source": "server", "reason": "the Ollama server chooses its own threads"}


def test_an_output_format_goes_as_a_json_schema_and_its_claims_come_back_as_lines(fake):
    from llm_research_bench.engine.grammar import claims_format
    b = make_backend("ollama", "tiny:1b", context_window=2048)
    fmt = claims_format([1, 2], 3)
    deltas = list(b.stream([Message("user", "q")], max_tokens=32, prefill="- ", output_format=fmt))
    assert "".join(deltas) == 'Claim one is long enough [1]\n- Claim "two" is long [2]'
    assert deltas.index("Claim one is long enough [1]") < len(deltas) - 2     # streamed before the reply ends
    body = fake.chat_bodies[-1]
    assert body["format"] == fmt.json_schema
    assert body["format"]["properties"]["claims"]["items"]["properties"]["passage"]["enum"] == [1, 2]
    assert [m["role"] for m in body["messages"]] == ["user"]        # no prefill turn: the reply is JSON


@pytest.mark.parametrize("fake", ["cut"], indirect=True)
def test_stream_cut_mid_generation_is_reported(fake):
    b = make_backend("ollama", "tiny:1b", context_window=2048)
    got = []
    with pytest.raises(StreamInterrupted, match="ended before the server said it was done"):
        for d in b.stream([Message("user", "q")], max_tokens=32):
            got.append(d)
    assert "".join(got).startswith("- Claim one")


@pytest.mark.parametrize("fake", ["stall"], indirect=True)
def test_a_silent_server_is_cut_at_the_run_deadline(fake):
    """The server goes silent mid-call (read timeout 60 s): the run's deadline (1 s) ends the call, as RunTimeout."""
    b = make_backend("ollama", "tiny:1b", context_window=2048, timeout_s=60)
    b.deadline = Deadline(1.0)
    t = time.perf_counter()
    got = []
    with pytest.raises(RunTimeout, match="passed its 1 s timeout during a call to the Ollama server"):
        for d in b.stream([Message("user", "q")], max_tokens=32):
            got.append(d)
    assert 0.9 <= time.perf_counter() - t < 3 and "".join(got).startswith("- Claim one")


@pytest.mark.parametrize("fake", ["ctx2048"], indirect=True)
def test_context_window_above_the_models_trained_context_is_refused(fake):
    with pytest.raises(ContextTooLarge, match=r"context_window 4,096 is larger than the 2,048-token context tiny:1b "
                                              r"was trained on: set context_window <= 2,048"):
        make_backend("ollama", "tiny:1b", context_window=4096)
    assert make_backend("ollama", "tiny:1b", context_window=2048).context_window == 2048


@pytest.mark.parametrize("host", ["127.0.0.1:99999", "[::1", "http://alice:pw@[::1"])
def test_malformed_host_is_one_clear_error_before_the_client_is_imported(monkeypatch, host):
    monkeypatch.setenv("OLLAMA_HOST", host)
    with pytest.raises(BackendUnavailable, match=r"OLLAMA_HOST=.* is not a valid host\[:port\]") as e:
        make_backend("ollama", "x", context_window=4096)
    assert "pw" not in str(e.value)
