import copy
import json
import time
from pathlib import Path

import pytest

from llm_research_bench.engine.pipeline import PHASES, PhaseClock, QuestionError, _check_question
from llm_research_bench.engine.telemetry import SCHEMA_PATH, SCHEMAS_DIR, redact, validation_errors
from llm_research_bench.harness.records import metric_specs

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "telemetry_quick.json").read_text())


def test_recorded_sample_is_valid():
    assert validation_errors(SAMPLE) == []


def test_every_metric_has_direction_and_null_metrics_have_reasons():
    specs = metric_specs("telemetry")
    assert all(s.get("x-better") in ("lower", "higher", "none") for s in specs.values())
    for name, v in SAMPLE["metrics"].items():
        if v is None:
            assert SAMPLE["unmeasured"].get(name), name


def test_violations_name_path_and_rule():
    bad = copy.deepcopy(SAMPLE)
    bad["metrics"]["citation_validity"] = 1.5
    del bad["metrics"]["ttft_s"]
    bad["traces"]["batches"][0]["novelty"] = "high"
    errs = validation_errors(bad)
    assert any(e.startswith("$.metrics.citation_validity: maximum") for e in errs)
    assert any(e.startswith("$.metrics: required") and "ttft_s" in e for e in errs)
    assert any(e.startswith("$.traces.batches[0].novelty: type") for e in errs)


def test_schema_path_is_in_the_schemas_folder():
    assert SCHEMA_PATH.parent == SCHEMAS_DIR and SCHEMA_PATH.is_file()
    assert SCHEMAS_DIR == Path(__file__).resolve().parents[2] / "schemas"   # the checkout's schemas/


def test_redact():
    assert redact("mail jane.doe@example.org or +1 (555) 123-4567 now") == "mail [email] or [phone] now"


def test_phase_clock_partitions_time():
    c = PhaseClock()
    t0 = time.perf_counter()
    for p in PHASES:
        c.switch(p)
        time.sleep(0.01)
    c.stop()
    assert sum(c.totals.values()) == pytest.approx(time.perf_counter() - t0, abs=0.005)
    assert all(v >= 0.009 for v in c.totals.values())


@pytest.mark.parametrize("q", ["", "   \n\t", None])
def test_empty_question_refused(q):
    with pytest.raises(QuestionError, match="empty"):
        _check_question(q)


def test_huge_question_refused():
    with pytest.raises(QuestionError, match="100,000 characters; the limit is 4,000"):
        _check_question("x" * 100_000)
