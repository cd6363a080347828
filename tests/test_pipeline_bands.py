"""scripts/pipeline_bands.py: a profile's time band over the pipeline bench's questions from a session document
(lower = 0.5 x the fastest question's median, upper = 2 x the slowest's rounded up to 5 s). TEST DATA only."""
from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pipeline_bands.py"


def _bands():
    spec = importlib.util.spec_from_file_location("pipeline_bands", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.bands


def _verdict(time_s, runs=5):
    return {"test_id": "t", "status": "met", "time_status": "within", "time_s": time_s, "time_lower_s": 7.0,
            "time_upper_s": 30.0, "runs": runs, "missed": []}


def test_one_band_covers_the_fastest_and_the_slowest_question():
    doc = {"machine_class": "linux-x86_64-2c", "datetime": "2026-12-02T15:00:00+00:00",
           "commit": {"id": "abcdef1234567890"},
           "benches": [{"bench": "pipeline", "profile": "quick", "verdicts": [_verdict(5.2), _verdict(14.1),
                                                                               _verdict(None, 0)]},
                       {"bench": "quality", "profile": "quick", "verdicts": [_verdict(99.0)]}]}
    head, band = _bands()(doc)
    assert head.startswith("[profiles.quick.budgets.linux-x86_64-2c]  # medians 5.2-14.1 s over 2 questions, >= 5 runs each")
    assert band == "time_s = [3, 30]"
