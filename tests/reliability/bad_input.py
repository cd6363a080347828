"""Helpers of the bad-input suite (tests/reliability/test_bad_*.py): how a command ran, and the checks every
case makes of it (one message line naming the fix, no traceback); the scripted backend double."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from llm_research_bench.engine.backends import Backend, GenerationStats


ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "telemetry_quick.json"
Q = "Do mitochondria matter?"
COMMIT_A, COMMIT_B = "a" * 40, "b" * 40
GOOD = json.loads(DATA.read_text())     # a real quick run's telemetry


@dataclass
class Ran:
    rc: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """The non-empty lines on stderr (the messages)."""
        return [line for line in self.err.splitlines() if line.strip()]


def clean(r: Ran) -> Ran:
    """No traceback and no pytest INTERNALERROR anywhere in the output."""
    text = r.out + r.err
    assert "Traceback" not in text and "INTERNALERROR" not in text, text[-3000:]
    return r


def one_line(r: Ran, pattern: str, rc: int) -> str:
    """Exit status `rc` and exactly one message line, matching `pattern`."""
    clean(r)
    assert r.rc == rc, (r.rc, r.out[-1000:], r.err[-2000:])
    assert len(r.lines) == 1, r.lines
    assert re.search(pattern, r.lines[0]), r.lines[0]
    return r.lines[0]


def engine_cli(capsys, *argv: str) -> Ran:
    from llm_research_bench.engine.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return Ran(rc, cap.out, cap.err)


def bench_cli(capsys, *argv: str) -> Ran:
    from llm_research_bench.harness.commands.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return Ran(rc, cap.out, cap.err)


class ScriptedBackendDouble(Backend):
    """Test double of a model backend: streams a fixed answer; `during` runs between its two chunks (to send a
    signal, or to break the telemetry path mid-run)."""
    name, model_name = "llamacpp", "scripted-double"

    def __init__(self, during=None):
        super().__init__()
        self.during = during
        self.calls = 0

    def count_tokens(self, text):
        return len(text) // 4

    def render(self, messages, prefill=""):
        return "".join(m.content for m in messages) + prefill

    def stream(self, messages, *, max_tokens, prefill="", stop=None):
        self.calls += 1
        yield " yes, they do"
        if self.during is not None:
            self.during()
        yield " [1]."
        n = self.prompt_tokens(messages, prefill)
        self.last_stats = GenerationStats(n, n, 5, 0.01, 0.02, 4, finish_reason="stop")


def run_args(corpus_file, *extra) -> list:
    return ["run", Q, "--closed-book", "--quiet", "--corpus", corpus_file, *extra]


def session_ran(result) -> Ran:
    """A pytester session's outcome as a Ran."""
    return Ran(result.ret, result.stdout.str(), result.stderr.str())
