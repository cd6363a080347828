"""Telemetry on bad input: `research-engine validate` on what is not telemetry, and the keyed question digest."""
from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_research_bench.engine import pipeline, telemetry
from tests.reliability.bad_input import DATA, GOOD, Q, ScriptedBackendDouble, engine_cli, one_line


@pytest.mark.parametrize("content,msg", [
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", r"not UTF-8 JSON text \(invalid start byte at byte 0\)"),
    (b"{not json", r"not JSON \(line 1, column 2: .*\)"),
    (None, r"cannot be read \(is a folder, not a regular file\)"),
    ("fifo", r"cannot be read \(is a FIFO, not a regular file\)"),
], ids=["binary", "not-json", "folder", "fifo"])
@pytest.mark.timeout(30)
def test_engine_validate_on_what_is_not_telemetry(capsys, tmp_path, content, msg):
    f = tmp_path / "t.json"
    if content is None:
        f.mkdir()
    elif content == "fifo":
        os.mkfifo(f)
    else:
        f.write_bytes(content)
    one_line(engine_cli(capsys, "validate", f), rf"^error: .*t\.json: {msg}: give a telemetry JSON file", 2)


# -- the keyed question hash -------------------------------------------------------------------------------------------
def _research_digest(monkeypatch, key: str | None) -> dict:
    from llm_research_bench.engine.corpus import Corpus, Passage
    if key is None:
        monkeypatch.delenv(telemetry.HASH_KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(telemetry.HASH_KEY_ENV, key)
    corpus = Corpus([Passage("p1", "Mitochondria change shape.")], [], "memory", "jsonl")
    sample = json.loads(DATA.read_text())
    tel = pipeline.research(Q, backend=ScriptedBackendDouble(), corpus=corpus, retrieval=False,
                            system_info=sample["system"]).telemetry
    assert telemetry.validation_errors(tel) == []
    return tel["question"]


def test_question_hash_is_sha256_without_a_key(monkeypatch):
    q = _research_digest(monkeypatch, None)
    assert q["hash"] == "sha256" and q["sha256"] == hashlib.sha256(Q.encode()).hexdigest() and "hash_key_id" not in q


def test_question_hash_is_hmac_with_a_key_and_comparable_where_the_key_is_shared(monkeypatch):
    a, b = _research_digest(monkeypatch, "team-secret"), _research_digest(monkeypatch, "team-secret")
    other = _research_digest(monkeypatch, "another-secret")
    assert a["hash"] == "hmac-sha256" and a["sha256"] == hmac.new(b"team-secret", Q.encode(), "sha256").hexdigest()
    assert a["sha256"] == b["sha256"] and a["hash_key_id"] == b["hash_key_id"]    # two machines, one key: comparable
    assert other["sha256"] != a["sha256"] and other["hash_key_id"] != a["hash_key_id"]
    assert a["sha256"] != hashlib.sha256(Q.encode()).hexdigest()                  # a guess cannot be confirmed
    assert "team-secret" not in json.dumps(a)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), st.just(json.dumps(GOOD).encode())))
def test_engine_validate_on_any_bytes(tmp_path_factory, data):
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO
    from llm_research_bench.engine.cli import main
    f = tmp_path_factory.mktemp("v") / "t.json"
    f.write_bytes(data)
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["validate", str(f)])
    assert rc in (0, 1, 2) and "Traceback" not in err.getvalue()
    if rc == 2:
        assert len(err.getvalue().strip().splitlines()) == 1
