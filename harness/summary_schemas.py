"""Loading and checking the JSON Schemas of the benches' own summaries (quality, breakdown), whose `metrics`
entries carry x-unit / x-better / x-label like the telemetry schema's."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@lru_cache(maxsize=None)
def load(name: str) -> dict:
    """schemas/<name>.schema.json as a dict."""
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def metric_specs(name: str) -> dict[str, dict]:
    return load(name)["properties"]["metrics"]["properties"]


def validation_errors(name: str, doc: dict) -> list[str]:
    from jsonschema import Draft202012Validator
    v = Draft202012Validator(load(name))
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in v.iter_errors(doc)]
