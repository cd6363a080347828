import pytest

from llm_research_bench.harness import store
from tests.eval.testdata import history_records


@pytest.fixture
def testdata_records():
    """TEST DATA records (see tests/eval/testdata.py), not measurements."""
    return history_records()


@pytest.fixture
def testdata_results_dir(tmp_path, testdata_records):
    d = tmp_path / "results"
    for r in testdata_records:
        store.append(d, r)
    return d
