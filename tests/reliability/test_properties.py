"""Property tests: whatever the input, only the documented error type (or a result) comes out."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_research_bench.engine.claims import CitationResolver, ClaimStreamParser, parse_claim_line
from llm_research_bench.engine.profiles import ProfileError, _parse_profile, load_profiles
from llm_research_bench.harness.records import RECORD_VERSION, ResultRecord
from llm_research_bench.harness.run.store import append, read_store

texty = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
claimish = st.lists(st.one_of(texty, st.sampled_from(["- ", "[1]", "[2, 3]", "[99]", "[a:1]", "\n", "1. ", "[", "]"])),
                    max_size=30).map("".join)


def _resolver():
    r = CitationResolver()
    for pid in ("a:0", "a:1", "b:0"):
        r.add(pid)
    return r


@given(claimish)
def test_claim_parser_never_raises_and_validity_is_consistent(text):
    r = _resolver()
    c = parse_claim_line(text, r)
    if c is not None:
        for cit in c.citations:
            assert cit.valid == (cit.passage_id is not None and cit.passage_id in r.ids)


@given(claimish, st.lists(st.integers(1, 40), max_size=20))
def test_stream_parsing_does_not_depend_on_chunking(text, cuts):
    whole = ClaimStreamParser(_resolver())
    whole.feed(text)
    whole.close()
    chunked = ClaimStreamParser(_resolver())
    pos = 0
    for n in cuts:
        chunked.feed(text[pos:pos + n])
        pos += n
    chunked.feed(text[pos:])
    chunked.close()
    assert [(c.text, [x.passage_id for x in c.citations]) for c in whole.claims] == \
           [(c.text, [x.passage_id for x in c.citations]) for c in chunked.claims]


@given(texty)
def test_citation_resolver_total(raw):
    r = _resolver()
    c = r.resolve(raw)
    assert c.valid == (c.passage_id in r.ids)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | texty,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texty, inner, max_size=4),
                           max_leaves=12)
profile_keys = st.sampled_from(["context_window", "batch_size", "min_batch_size", "max_batch_size", "ef_search",
                                "retrieve_k", "max_tokens", "claim_tokens", "synthesis_tokens", "timeout_s",
                                "novelty_threshold", "citation_floor", "models", "budgets", "description", "bogus"])


@given(st.dictionaries(profile_keys, json_values, max_size=16) | json_values)
def test_profile_parser_raises_only_profile_error(raw):
    try:
        _parse_profile("p", raw, "f.toml")
    except ProfileError as e:
        assert "f.toml" in str(e) and "profile 'p'" in str(e)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.binary(max_size=400))
def test_profile_file_of_any_bytes(tmp_path, data):
    f = tmp_path / "p.toml"
    f.write_bytes(data)
    try:
        load_profiles(f)
    except ProfileError as e:
        assert str(f) in str(e)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.lists(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                          st.integers(-2, RECORD_VERSION + 3).map(lambda v: json.dumps({"record_version": v}).encode())),
                max_size=5))
def test_results_reader_skips_any_damage(tmp_path, blobs):
    root = tmp_path / "results"
    good = ResultRecord(test_id="t", bench="b", profile="quick", outcome="passed", target_met=True,
                        machine_fingerprint="m", machine_class="c", commit="abc")
    append(root, good)
    d = root / "m" / "abc"
    for i, b in enumerate(blobs):
        (d / f"zz-{i}.json").write_bytes(b)
    read = read_store(root)
    assert good.record_id in {r.record_id for r in read.records}
    assert len(read.records) + read.skipped.total == 1 + len(blobs)      # each file read or skipped, once
    for i, b in enumerate(blobs):       # a blob that looks like a newer record is skipped as such, never misread
        doc = _json_object(b)
        v = doc.get("record_version")
        if type(v) is int and v > RECORD_VERSION:
            assert read.skipped.files[d / f"zz-{i}.json"][0] == "newer"
    for f in root.glob("m/abc/*.json"):
        f.unlink()


def _json_object(b: bytes) -> dict:
    try:
        doc = json.loads(b.decode("utf-8"))
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
