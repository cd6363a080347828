"""Stored telemetry carries no question/passage text unless asked; credentials never printed or stored."""
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llm_research_bench import engine
from llm_research_bench.engine.corpus import DEFAULT_PUBMEDQA, load_corpus
from llm_research_bench.engine.system import detect, redact_url

ROOT = Path(__file__).resolve().parents[2]
SECRET_Q = "Does drug X reduce stroke risk? Contact jane.doe@example.org or +1 (555) 123-4567."


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(DEFAULT_PUBMEDQA).slice(3)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.e2e
def test_default_telemetry_holds_hashes_not_text(corpus):
    tel = engine.research(SECRET_Q, corpus=corpus, retrieval=False).telemetry
    blob = json.dumps(tel)
    # (the phone number as written: a bare "555" may occur in any hex digest, e.g. the run id)
    assert "jane.doe" not in blob and "stroke" not in blob and "123-4567" not in blob and "(555)" not in blob
    assert tel["question"]["length"] == len(SECRET_Q) and len(tel["question"]["sha256"]) == 64
    assert "text" not in tel["answer"]
    for p in corpus.passages:
        assert p.text[:40] not in blob


@pytest.mark.e2e
def test_store_text_keeps_text_redacted(corpus):
    tel = engine.research(SECRET_Q, corpus=corpus, retrieval=False, store_text=True).telemetry
    assert tel["question"]["text"] == "Does drug X reduce stroke risk? Contact [email] or [phone]."


def test_redact_url_drops_credentials():
    assert redact_url("http://alice:pw@host:11434/x") == "http://host:11434/x"
    assert redact_url("host:1") == "http://host:1"


def test_system_info_never_carries_ollama_credentials(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"http://alice:hunter2@127.0.0.1:{_free_port()}")
    info = json.dumps(detect().as_dict())
    assert "hunter2" not in info and "alice" not in info
    out = subprocess.run([sys.executable, "-m", "engine", "system", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**__import__("os").environ,
                                                      "OLLAMA_HOST": "http://alice:hunter2@127.0.0.1:9"})
    assert out.returncode == 0 and "hunter2" not in out.stdout + out.stderr
