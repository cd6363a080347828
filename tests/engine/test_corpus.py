import json

import pytest

from llm_research_bench.engine.corpus import DEFAULT_PUBMEDQA, CorpusError, load_corpus


def test_pubmedqa_loads_with_gold():
    c = load_corpus(DEFAULT_PUBMEDQA)
    assert len(c.questions) == 1000 and len(c.passages) == 3358 and c.skipped_total == 0
    q = c.question_by_text("do mitochondria play a role in remodelling lace plant leaves during  programmed cell death?")
    assert q.answer == "yes" and q.gold_passage_ids[0] == f"{q.id}:0"
    assert sum(1 for x in c.questions if x.answer == "yes") == 552


def test_jsonl_folder_and_skips(tmp_path):
    lines = [json.dumps({"id": "a", "text": "alpha text"}), "{not json", json.dumps({"id": "a", "text": "dup"}),
             json.dumps({"id": "b", "text": "  "}), json.dumps({"id": "c", "text": "gamma", "title": "T"})]
    (tmp_path / "passages.jsonl").write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe bad\n")
    (tmp_path / "questions.jsonl").write_text(json.dumps({"id": "q1", "question": "Is alpha?", "answer": "Yes",
                                                          "gold_passage_ids": ["a"]}) + "\n")
    c = load_corpus(tmp_path)
    assert [p.id for p in c.passages] == ["a", "c"] and c.passages[1].title == "T"
    assert c.skipped == {"malformed_json": 1, "duplicate_id": 1, "empty_text": 1, "not_utf8": 1}
    assert c.questions[0].answer == "yes" and c.questions[0].gold_passage_ids == ("a",)


def test_corpus_id_changes_with_content(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"id": "a", "text": "x"}) + "\n")
    a = load_corpus(f).id
    f.write_text(json.dumps({"id": "a", "text": "y"}) + "\n")
    assert load_corpus(f).id != a


@pytest.mark.parametrize("setup, match", [
    (lambda d: None, "not found"),
    (lambda d: d.mkdir(), "no passages.jsonl"),
    (lambda d: (d.mkdir(), (d / "passages.jsonl").write_text("")), "no usable passage"),
    (lambda d: (d.mkdir(), (d / "passages.jsonl").write_text("{bad\n")), "1 lines skipped"),
])
def test_unusable_corpora_are_clear_errors(tmp_path, setup, match):
    d = tmp_path / "corpus"
    setup(d)
    with pytest.raises(CorpusError, match=match):
        load_corpus(d)


def test_bad_pubmedqa_json(tmp_path):
    f = tmp_path / "ori_pqal.json"
    f.write_text("{")
    with pytest.raises(CorpusError, match="not valid JSON"):
        load_corpus(f)
