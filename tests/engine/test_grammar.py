"""The output formats (engine.grammar): GBNF that llama.cpp accepts, citations limited to the labels in context,
extractive alternatives copied from the passages, and the JSON Schema twin rendered back to the parser's text."""
import pytest

from llm_research_bench.engine.claims import CitationResolver, ClaimStreamParser
from llm_research_bench.engine.grammar import (MIN_SPAN_WORDS, answer_format, claims_format, parse_json_output,
                                               sentences)

PASSAGE = ("pytest-timeout aborts tests that run longer than a given number of seconds. It uses a signal [2] or a "
           "thread to stop the test. Short one. The timeout can be set per test with a marker in the test file.")


def _compiles(gbnf: str) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    g = llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
    assert g is not None


def test_abstractive_claims_may_cite_only_the_labels_in_context():
    f = claims_format([4, 3, 4], 3)
    _compiles(f.gbnf)
    assert 'label ::= "3" | "4"\n' in f.gbnf
    assert "{0,2}" in f.gbnf                                           # at most three claims
    assert f.json_schema["properties"]["claims"]["items"]["properties"]["passage"]["enum"] == [3, 4]
    assert f.labels == (3, 4)


def test_extractive_claims_are_sentences_of_the_passage_they_cite():
    f = claims_format([1, 2], 2, "extractive", {1: PASSAGE, 2: "Too short."})
    _compiles(f.gbnf)
    assert 'claim ::= p1 " [1]"\n' in f.gbnf                           # label 2 offers no sentence: not citable
    assert '"pytest-timeout aborts tests that run longer"' in f.gbnf
    assert "[2]" not in f.gbnf.split("p1 ::=")[1]                      # brackets in a passage become parentheses
    assert f.json_schema["properties"]["claims"]["items"]["anyOf"][0]["properties"]["passage"] == {"const": 1}


def test_a_passage_is_offered_as_its_sentences_and_their_leading_spans():
    got = sentences(PASSAGE)
    assert got[0] == "pytest-timeout aborts tests that run longer than a given number of seconds"
    assert got[1] == "It uses a signal (2) or a thread to stop the test"
    assert all(len(s.split()) >= MIN_SPAN_WORDS for s in got) and "Short one" not in got


def test_extractive_mode_without_any_sentence_falls_back_to_abstractive():
    f = claims_format([1], 2, "extractive", {1: "Too short."})
    assert "text ::=" in f.gbnf


def test_a_grammar_needs_labels_and_a_known_mode():
    with pytest.raises(ValueError, match="at least one passage label"):
        claims_format([], 2)
    with pytest.raises(ValueError, match="claim mode 'quoted'"):
        claims_format([1], 2, "quoted")
    with pytest.raises(ValueError, match="needs the passages"):
        claims_format([1], 2, "extractive")


def test_answer_formats_open_and_polar():
    open_ = answer_format([1, 2], polar=False)
    polar = answer_format([1, 2], polar=True)
    _compiles(open_.gbnf)
    _compiles(polar.gbnf)
    assert "sentence{2,4}" in open_.gbnf and '(" yes" | " no" | " maybe")' in polar.gbnf
    assert polar.json_schema["required"] == ["decision", "sentences"]


def test_json_output_renders_to_text_the_parser_reads_with_every_citation_valid():
    f = claims_format([1, 2], 3)
    text = parse_json_output(f, '{"claims": [{"text": "First claim text", "passage": 2}, '
                                '{"text": "Second claim text", "passage": 1}]}')
    r = CitationResolver()
    r.add("a")
    r.add("b")
    p = ClaimStreamParser(r, require_citation=True)
    claims = p.feed("- " + text) + p.close()
    assert [c.valid_sources for c in claims] == [["b"], ["a"]] and p.rejected == 0
    ans = answer_format([1], polar=True)
    assert parse_json_output(ans, '{"decision": "no", "sentences": [{"text": "It does not.", "passage": 1}]}') \
        == " no. It does not [1]."
    assert parse_json_output(f, "not json") == ""


def test_a_claim_line_cut_before_its_citation_is_rejected_and_counted():
    r = CitationResolver()
    r.add("a")
    p = ClaimStreamParser(r, require_citation=True)
    got = p.feed("- A complete claim about things [1]\n- A claim cut off before its cit") + p.close()
    assert len(got) == 1 and p.rejected == 1
