"""Corpus files as people save them: a UTF-8 byte-order mark is read as UTF-8 (no passage lost), and gold
passage ids that name no passage are dropped from their question and reported in one warning line."""
from __future__ import annotations

import json
import logging

import pytest

from llm_research_bench.engine.corpus import load_corpus
from tests.reliability.bad_input import Q, clean, engine_cli, one_line, run_args
from tests.reliability.engine_child import engine_child

BOM = b"\xef\xbb\xbf"
PASSAGES = [{"id": "p1", "text": "Mitochondria change shape before the cell dies."},
            {"id": "p2", "text": "The kidney filters the blood."}]


def jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _folder(tmp_path):
    (tmp_path / "passages.jsonl").write_bytes(BOM + jsonl(PASSAGES))
    (tmp_path / "questions.jsonl").write_bytes(BOM + jsonl([{"id": "q1", "question": Q, "answer": "yes",
                                                               "gold_passage_ids": ["p1"]}]))
    return tmp_path


def _file(tmp_path):
    f = tmp_path / "passages.jsonl"
    f.write_bytes(BOM + jsonl(PASSAGES))
    return f


def _pubmedqa(tmp_path):
    f = tmp_path / "ori_pqal.json"
    f.write_bytes(BOM + json.dumps({"123": {"QUESTION": Q, "CONTEXTS": [p["text"] for p in PASSAGES],
                                            "final_decision": "yes"}}).encode())
    return f


@pytest.mark.parametrize("make", [_folder, _file, _pubmedqa], ids=["folder", "jsonl-file", "pubmedqa-json"])
def test_a_corpus_starting_with_a_bom_loses_no_passage(tmp_path, caplog, make):
    with caplog.at_level(logging.WARNING):
        c = load_corpus(make(tmp_path))
    assert [p.text for p in c.passages] == [p["text"] for p in PASSAGES]
    assert c.skipped == {} and caplog.records == []
    if make is not _file:
        assert [q.question for q in c.questions] == [Q] and c.questions[0].answer == "yes"


@pytest.mark.timeout(60)
def test_a_run_on_a_bom_corpus_counts_every_passage(capsys, caplog, scripted, tmp_path):
    out = tmp_path / "t.json"
    with caplog.at_level(logging.WARNING):
        r = clean(engine_cli(capsys, *run_args(_folder(tmp_path), "--telemetry-out", out)))
    assert r.rc == 0 and r.lines == [] and caplog.records == [], (r.lines, caplog.records)
    tel = json.loads(out.read_text())
    assert tel["corpus"]["passages"] == 2 and tel["corpus"]["skipped_lines"] == 0
    assert tel["question"]["gold_passage_ids"] == ["p1"]


def _gold_folder(tmp_path, gold):
    (tmp_path / "passages.jsonl").write_bytes(jsonl(PASSAGES))
    (tmp_path / "questions.jsonl").write_bytes(jsonl([
        {"id": "q1", "question": Q, "answer": "yes", "gold_passage_ids": gold},
        {"id": "q2", "question": "Does the kidney filter blood?", "gold_passage_ids": ["p2"]}]))
    return tmp_path


def test_unknown_gold_ids_are_counted_dropped_and_reported_once(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        c = load_corpus(_gold_folder(tmp_path, ["p1", "nope", "gone"]))
    assert c.unknown_gold_ids == {"q1": ("nope", "gone")}
    assert [q.gold_passage_ids for q in c.questions] == [("p1",), ("p2",)]
    (w,) = [r.getMessage() for r in caplog.records]
    assert w == (f"corpus {tmp_path}: 2 gold passage ids in 1 question match no passage, e.g. 'nope' in question "
                 f"'q1'; ignored (fix gold_passage_ids in questions.jsonl)")


def test_known_gold_ids_warn_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        c = load_corpus(_gold_folder(tmp_path, ["p1"]))
    assert c.unknown_gold_ids == {} and caplog.records == []


@pytest.mark.timeout(120)
def test_a_run_with_an_unknown_gold_id_says_so_in_one_line_and_keeps_it_out_of_telemetry(tmp_path):
    out = tmp_path / "t.json"
    r = engine_child(*run_args(_gold_folder(tmp_path, ["p1", "nope"]), "--telemetry-out", out))
    one_line(r, r"^corpus .*: 1 gold passage id in 1 question matches no passage, e.g\. 'nope' in question 'q1'; "
                r"ignored \(fix gold_passage_ids in questions\.jsonl\)$", 0)
    tel = json.loads(out.read_text())
    assert tel["success"] is True and tel["question"]["gold_passage_ids"] == ["p1"]
