"""Bad corpora, in the engine CLI and in a bench session: a file that is not PubMedQA, a FIFO, arbitrary bytes.
One CorpusError (or one usage line) naming the file, never a traceback."""
from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_research_bench.engine.corpus import CorpusError, load_corpus
from tests.reliability.bad_input import Q, clean, engine_cli, one_line, session_ran


@pytest.mark.parametrize("name,content,msg", [
    ("other.json", {"a": [1, 2]}, r"JSON, but not PubMedQA's ori_pqal\.json format .* use a \.jsonl file"),
    ("list.json", [{"id": "p1", "text": "x"}], r"JSON, but not PubMedQA's ori_pqal\.json format"),
    ("bad.json", "{oops", r"not valid JSON \(line 1: .*\); expected PubMedQA's ori_pqal\.json, or for your own"),
    ("fifo.jsonl", "fifo", r"cannot be read \(is a FIFO, not a regular file\): pass a corpus file or folder"),
], ids=["object", "list", "not-json", "fifo"])
@pytest.mark.timeout(30)
def test_a_corpus_that_is_not_pubmedqa_gets_its_own_message(capsys, tmp_path, name, content, msg):
    f = tmp_path / name
    if content == "fifo":
        os.mkfifo(f)
    else:
        f.write_text(content if isinstance(content, str) else json.dumps(content))
    one_line(engine_cli(capsys, "run", Q, "--corpus", f), rf"^error: {re.escape(str(f))}: {msg}", 2)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("corpus", ["other.json", "fifo.jsonl"])
def test_a_bad_corpus_in_a_bench_session_is_one_line_not_a_traceback(bench, corpus):
    f = bench.pytester.path / corpus
    os.mkfifo(f) if corpus.startswith("fifo") else f.write_text(json.dumps({"a": [1]}))
    bench.pytester.makeconftest("")                  # the real warm-up: it loads the corpus first, and fails there
    bench.run_bench()
    r = clean(session_ran(bench.run("-m", "quick", "--research-corpus", str(f))))
    assert r.rc == 1
    fails = [x for x in r.out.splitlines() if x.startswith("bench warm-up: ")]
    assert len(fails) == 1 and str(f) in fails[0], r.out[-3000:]
    assert "During handling" not in r.out
    assert ("not PubMedQA's" if corpus == "other.json" else "is a FIFO") in fails[0]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40, deadline=None)
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".json", ".jsonl"]))
def test_any_bytes_as_a_corpus_load_or_raise_one_corpus_error(tmp_path_factory, data, suffix):
    f = tmp_path_factory.mktemp("c") / f"corpus{suffix}"
    f.write_bytes(data)
    try:
        load_corpus(f)
    except CorpusError as e:
        assert "\n" not in str(e) and str(f) in str(e)
