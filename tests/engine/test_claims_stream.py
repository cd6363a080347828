import pytest

from llm_research_bench.engine.claims import CitationResolver, ClaimStreamParser, citation_counts, parse_claim_line
from llm_research_bench.engine.stream import CallTiming, StreamMeter, itl_percentiles, percentile, tpot
from llm_research_bench.engine.synthesis import parse_decision


def resolver(n=3):
    r = CitationResolver()
    for i in range(n):
        r.add(f"100:{i}")
    return r


def test_claim_line_with_valid_invalid_and_raw_id_citations():
    r = resolver(3)
    c = parse_claim_line("- Mitochondria move to the nucleus [2][7] [100:0]", r)
    assert c.text == "Mitochondria move to the nucleus."
    assert [(x.raw, x.passage_id, x.valid) for x in c.citations] == [
        ("2", "100:1", True), ("7", None, False), ("100:0", "100:0", True)]
    assert c.valid_sources == ["100:1", "100:0"]


def test_list_citation_and_bullets():
    c = parse_claim_line("2. Claim: smoking raises stroke risk [1, 3]", resolver())
    assert [x.passage_id for x in c.citations] == ["100:0", "100:2"]
    assert c.text.startswith("smoking")


def test_short_or_empty_lines_are_not_claims():
    r = resolver()
    assert parse_claim_line("", r) is None
    assert parse_claim_line("- [1]", r) is None
    assert parse_claim_line("Ok.", r) is None


def test_uncited_claim_is_kept_and_counted():
    c = parse_claim_line("- The study enrolled many patients", resolver())
    assert c is not None and c.citations == []


def test_stream_parser_handles_split_chunks_and_repeats():
    seen = set()
    p = ClaimStreamParser(resolver(), seen=seen)
    got = []
    for chunk in ["- Alpha beta gam", "ma delta [1]\n- Eps", "ilon zeta eta [9]\n", "- Alpha beta gamma delta [1]\n"]:
        got += p.feed(chunk)
    got += p.close()
    assert [c.text for c in got] == ["Alpha beta gamma delta.", "Epsilon zeta eta."]
    assert p.repeats == 1
    assert citation_counts(got) == (2, 1, 1)
    p2 = ClaimStreamParser(resolver(), seen=seen)      # later batch, same run: repeats are not new claims
    p2.feed("- alpha beta gamma delta [2]\n")
    assert p2.claims == [] and p2.repeats == 1


def test_percentile_matches_numpy_linear():
    np = pytest.importorskip("numpy")
    xs = [0.3, 0.1, 0.2, 0.9, 0.5]
    for q in (0, 50, 90, 99, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile([], 50) is None


def test_stream_meter_ttft_itl_tpot_with_fake_clock():
    ticks = iter([0.0, 1.0, 1.1, 1.3, 1.3])   # sent, 3 chunks, end
    meter = StreamMeter(clock=lambda: next(ticks))
    out = list(meter.measure(["a", "", "b", "c"]))
    assert out == ["a", "", "b", "c"]
    call = meter.calls[0]
    assert call.ttft_s == 1.0 and call.e2e_s == pytest.approx(1.3)
    assert meter.chunks == 3
    assert itl_percentiles(meter.calls)["itl_p50_s"] == pytest.approx(0.15)
    # (e2e - ttft) / (tokens - 1) = 0.3 / 3 with 4 tokens
    assert tpot(meter.calls, [4]) == pytest.approx(0.1)
    assert tpot([CallTiming(0.0)], [5]) is None


@pytest.mark.parametrize("text, want", [
    ("Answer: yes\nBecause [1]", "yes"), ("Answer: **No**, it does not", "no"), ("answer - maybe.", "maybe"),
    ("Maybe; the data are mixed", "maybe"), ("I cannot say", None), ("", None)])
def test_parse_decision(text, want):
    assert parse_decision(text) == want
