"""What `research-engine` prints, without a model: widths, wrapped claims and answers, the sources block, the
warning and exit status of an uncited answer, progress when piped, the profiles table, llama.cpp's log kept quiet."""
import io
import logging
from types import SimpleNamespace

import pytest

from llm_research_bench import engine
from llm_research_bench.engine import cli, console
from llm_research_bench.engine.claims import Citation, Claim
from llm_research_bench.engine.corpus import Passage
from llm_research_bench.engine.pipeline import ResearchSession

LONG = ("pytest-timeout aborts a test that runs longer than the configured limit, reporting it as failed and "
        "dumping the stacks of all threads so that a hang can be located without attaching a debugger ") * 3


def _session(answer_sources: list[str], answer: str = "Answer: " + LONG + " [1]") -> ResearchSession:
    claims = [Claim(LONG, [Citation("1", "tooldocs/pytest-timeout#0", True), Citation("pytest", None, False)])]
    metrics = {"citations": 2, "valid_citations": 1, "answer_citations": 1, "grounded_citations": 1,
               "execution_time_s": 66.04, "tokens_generated": 812, "tokens_per_second": 12.3,
               "ttft_s": 1.2, "memory_peak_mb": 901.0, "claims": 1, "memory_samples": 10}
    tel = {"metrics": metrics, "profile": {"name": "quick"}, "backend": "llamacpp", "model": {"name": "smollm2-135m"},
           "question": {"answer_type": "open"}, "early_exit": {"reason": "novelty_below_threshold"},
           "answer": {"decision": None, "decision_method": None, "sources": answer_sources}}
    passages = {"tooldocs/pytest-timeout#0": Passage("tooldocs/pytest-timeout#0", "x", "pytest-timeout: " + LONG),
                "tooldocs/pytest-xdist#3": Passage("tooldocs/pytest-xdist#3", "y", "pytest-xdist")}
    return ResearchSession("What does pytest-timeout do?", answer, None, claims,
                           {1: "tooldocs/pytest-timeout#0", 2: "tooldocs/pytest-xdist#3"}, tel, passages)


@pytest.mark.parametrize("columns, width", [("200", 120), ("60", 60), ("10", console.MIN_WIDTH)])
def test_output_width_follows_the_terminal_within_bounds(monkeypatch, columns, width):
    monkeypatch.setenv("COLUMNS", columns)
    assert console.output_width() == width == console.output_width(io.StringIO())


def test_output_width_when_piped(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert console.output_width(io.StringIO()) == console.PIPED_WIDTH
    assert 80 <= console.PIPED_WIDTH <= console.MAX_WIDTH == 120


@pytest.mark.parametrize("width", [40, 80, 120])
def test_claim_lines_are_wrapped_and_keep_their_citations(width):
    c = Claim(LONG + "x" * 300, [Citation("pytest", None, False), Citation("2", "a#1", True)])
    lines = console.claim_lines(7, c, width)
    assert len(lines) > 1 and max(map(len, lines)) <= width
    assert lines[0].startswith("  claim 7: ") and all(x.startswith("    ") for x in lines[1:])
    text = " ".join(lines)
    assert "[pytest](invalid)" in text and text.rstrip().endswith("[2]")


@pytest.mark.parametrize("width", [40, 80, 120])
def test_run_report_lists_numbered_sources_and_citation_counts_within_the_width(width):
    lines = console.run_report(_session(["tooldocs/pytest-timeout#0"]), width)
    assert max(map(len, lines)) <= width
    text = " ".join(x.strip() for x in lines)
    assert "Sources (cited): [1] tooldocs/pytest-timeout#0 - pytest-timeout:" in text
    assert "pytest-xdist" not in text                   # not cited: not listed
    assert "Citations: 1/2 in the claims valid; the answer's statements cite 1 source validly (1 citation); " \
           "1/3 grounded in the passage they cite" in text
    assert lines[lines.index("Answer:") + 1].startswith("  pytest-timeout aborts")
    assert not console.uncited(_session(["tooldocs/pytest-timeout#0"]))
    assert not console.uncited(_session([], answer="no"))      # a polar answer: its claims carry the citations


def test_an_answer_without_valid_citations_lists_the_passages_in_context_and_is_flagged():
    s = _session([], answer="Answer: [2]")
    s.claims = [Claim("It times out.", [Citation("pytest", None, False)])]
    text = "\n".join(console.run_report(s, 100))
    assert "Sources: none cited validly; the passages in context were:" in text
    assert "[1] tooldocs/pytest-timeout#0" in text and "[2] tooldocs/pytest-xdist#3 - pytest-xdist" in text
    assert console.uncited(s)
    s.sources = {i: f"p{i}" for i in range(1, 31)}
    lines = console.run_report(s, 100)
    assert "  [10] p10" in lines and "  [11] p11" not in lines
    assert "  ... and 20 more (the telemetry's batches list them all)" in lines
    s.sources = {}
    assert not console.uncited(s)                       # closed book: nothing to cite
    assert "Sources: none (no passage was in context)" in console.run_report(s, 100)


@pytest.mark.parametrize("sources, code", [(["tooldocs/pytest-timeout#0"], cli.EXIT_OK), ([], cli.EXIT_UNCITED)])
def test_cli_run_exit_status_and_warning(monkeypatch, capsys, sources, code):
    def uncited_claims(*a, **k):
        s = _session(sources)
        if not sources:
            s.claims = [Claim(LONG, [Citation("pytest", None, False)])]
            s.telemetry["metrics"].update(citations=1, valid_citations=0)
        return s
    monkeypatch.setattr(engine, "research", uncited_claims)
    monkeypatch.setenv("COLUMNS", "120")
    assert cli.main(["run", "What does pytest-timeout do?"]) == code
    out, err = capsys.readouterr()
    assert max(len(x) for x in (out + err).splitlines()) <= 120
    assert "Sources" in out and "Citations:" in out
    warned = " ".join(x.strip() for x in err[err.find("warning:"):].splitlines()) if "warning:" in err else ""
    assert (warned == "") == (code == cli.EXIT_OK)
    if warned:
        assert "no citation names a passage that was in context (0/1 in the claims valid, none in the answer)" \
               in warned
        assert warned.endswith(f"(exit {cli.EXIT_UNCITED})")
    assert cli.EXIT_UNCITED not in (cli.EXIT_OK, cli.EXIT_INVALID, cli.EXIT_USAGE, cli.EXIT_INTERNAL,
                                    cli.EXIT_INTERRUPTED, cli.EXIT_TERMINATED)


def _call(tokens=160, e2e=26.0, ttft=1.0):
    return SimpleNamespace(tokens_generated=tokens, e2e_s=e2e, ttft_s=ttft)


def test_progress_when_piped_is_one_plain_line_per_phase(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    err, out = io.StringIO(), io.StringIO()
    p = console.Progress(live=False, err=err, out=out)
    p.start()
    p("phase", {"phase": "plan"})
    p("retrieved", {"hits": 48, "cache_hit": True})
    p("batch", {"batch": 0, "size": 9, "novelty": 1.0, "admitted": True})
    p("phase", {"phase": "streaming_inference", "batch": 0})
    for _ in range(50):
        p("answer_delta", {"text": "x"})
    p("claim", {"claim": Claim(LONG, [Citation("1", "a", True)])})
    p("batch_done", {"batch": 0, "claims": 1, "call": _call()})
    p("batch", {"batch": 1, "size": 9, "novelty": 0.1, "admitted": False})
    p("phase", {"phase": "synthesis"})
    p.done()
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue() and "\033" not in err.getvalue()
    assert max(map(len, lines)) <= 80 and max(map(len, out.getvalue().splitlines())) <= 80
    starts = [x[9:] for x in lines if x.startswith("[")]
    assert [x.split(":")[0].split(" (")[0] for x in starts] == ["plan", "batch 0", "synthesis"]
    assert "retrieved 48 passages, index cached" in err.getvalue()
    assert "below the threshold: stopping" in " ".join(lines)
    assert out.getvalue().startswith("  claim 1: pytest-timeout aborts")


def test_progress_live_line_stays_on_one_terminal_row(monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    err = io.StringIO()
    p = console.Progress(live=True, err=err, out=io.StringIO())
    p("phase", {"phase": "streaming_inference", "batch": 3})
    p("batch_done", {"batch": 3, "claims": 12, "call": _call()})
    for _ in range(3):
        p("answer_delta", {"text": "x"})
    rows = [x for x in err.getvalue().split("\r\033[K") if x]
    assert "s] batch 3: generating claims | 3 chunks" in rows[-1]
    assert rows and "\n" not in err.getvalue() and max(map(len, rows)) < 50
    for live in (True, False):
        quiet = io.StringIO()
        console.Progress(quiet=True, live=live, err=quiet).start()
        assert quiet.getvalue() == ""


@pytest.mark.parametrize("columns", ["80", "100", "120", "200"])
def test_profiles_table_fits_the_width(monkeypatch, capsys, columns):
    monkeypatch.setenv("COLUMNS", columns)
    assert cli.main(["profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= min(int(columns), 120)
    text = "\n".join(lines)
    for name in ("quick", "balanced", "thorough", "smollm2-135m", "qwen2.5:3b-instruct-q4_K_M", "time budget"):
        assert name in text
    assert cli.main(["profiles", "--machine-class", "nowhere-9"]) == 0
    assert "* no budget for nowhere-9: the reference machine class's budget" in capsys.readouterr().out


def test_llama_cpp_log_is_quiet_unless_verbose(capsys):
    from llm_research_bench.engine.backends import llamacpp
    llama_cpp = pytest.importorskip("llama_cpp")
    from llama_cpp import _logger
    line = b"decode: removing memory module entries for seq_id = 0, pos = [993, +inf)\n"
    try:
        llamacpp.show_native_log(False)
        assert logging.getLogger("llama-cpp-python").level > logging.CRITICAL
        _logger.llama_log_callback(3, line, None)              # an ERROR-level line, as llama.cpp sends it
        assert capsys.readouterr().err == ""
        llamacpp.show_native_log(True)
        _logger.llama_log_callback(3, line, None)
        assert "removing memory module entries" in capsys.readouterr().err
    finally:
        llamacpp.show_native_log(False)
    assert llama_cpp is not None


@pytest.mark.e2e
def test_e2e_a_real_quick_run_prints_sources_within_120_columns(tmp_path):
    """The CLI on the real model, piped: progress lines on stderr, a sources block, no line over 120 columns and
    no line of llama.cpp's own log. The timeout is raised so that a slow machine tests the output, not its speed."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    f = tmp_path / "slow.toml"
    f.write_text("[profiles.quick]\ntimeout_s = 900\n")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = subprocess.run([sys.executable, "-m", "engine", "run", "What does pytest-timeout do?", "--profile", "quick",
                        "--corpus", str(root / "benches" / "data" / "tooldocs"), "--profiles-file", str(f)],
                       cwd=root, env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode in (cli.EXIT_OK, cli.EXIT_UNCITED), r.stderr[-2000:]
    assert ("warning:" in r.stderr) == (r.returncode == cli.EXIT_UNCITED)
    lines = r.stdout.splitlines() + r.stderr.splitlines()
    assert max(map(len, lines)) <= 120
    assert any(x.startswith("Sources") for x in r.stdout.splitlines()) and "\nCitations: " in r.stdout
    err = r.stderr.splitlines()
    assert err[0].startswith("[") and "] plan: retrieving passages" in err[0]
    assert all(x.startswith(("[", " ", "warning:")) for x in err), r.stderr     # nothing from llama.cpp
    assert "decode:" not in r.stderr and "llama_" not in r.stderr
