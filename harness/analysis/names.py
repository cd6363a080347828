"""Metric names and thresholds (pure): a metric is named by its schema name, its x-label (`time`, `mem peak`) or a
summary column heading (ALIASES); every option that takes a metric resolves it here. METRIC:PCT thresholds."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..records import metric_specs

#: The headline metrics, in the order tables show them: time, first token, per-token time, decode speed, memory,
#: citations. The default of `research-bench compare` and `--metrics headline`.
HEADLINE = ("execution_time_s", "ttft_s", "tpot_s", "tokens_per_second", "memory_peak_mb",
            "citation_validity", "grounded_citation_rate")

#: The session summary's column headings (harness/report/table.py) that name one metric, as names too.
ALIASES = {"time": "execution_time_s", "memory": "memory_peak_mb", "mem": "memory_peak_mb",
           "tok/s": "tokens_per_second", "cit.": "citation_validity", "grounded": "grounded_citation_rate"}


class UnknownMetric(ValueError):
    """A name no schema, label or alias knows; the message lists the valid names."""


def _key(name: str) -> str:
    return " ".join(name.strip().lower().split())


def vocabulary(specs: dict[str, dict]) -> dict[str, str]:
    """Every accepted name (lower case, single spaces) -> the schema's metric name."""
    out = {_key(a): m for a, m in ALIASES.items() if m in specs}
    out.update({_key(s["x-label"]): n for n, s in specs.items() if s.get("x-label")})
    out.update({_key(n): n for n in specs})
    return out


def valid_names(specs: dict[str, dict], *, directed: bool = False) -> str:
    """'time (execution_time_s), TTFT (ttft_s), ...'; directed: only metrics with a better direction."""
    return ", ".join(f"{s['x-label']} ({n})" if s.get("x-label") not in (None, n) else n for n, s in specs.items()
                     if not directed or s.get("x-better") in ("lower", "higher"))


def resolve(name: str, specs: dict[str, dict] | None = None, *, directed: bool = False) -> str:
    """A metric's schema name from any of its names; UnknownMetric (listing the valid ones) for an unknown one."""
    specs = specs if specs is not None else metric_specs("telemetry")
    words = vocabulary(specs)
    found = words.get(_key(name))
    if found is None:
        near = list(dict.fromkeys(m for w, m in words.items() if _key(name) in w or (w in _key(name) and len(w) > 3)))
        hint = f" (did you mean {', '.join(near[:3])}?)" if near else ""
        raise UnknownMetric(f"unknown metric '{name.strip()}'{hint}; valid names: "
                            f"{valid_names(specs, directed=directed)}")
    return found


def resolve_all(names: Sequence[str], specs: dict[str, dict] | None = None) -> list[str]:
    return list(dict.fromkeys(resolve(n, specs) for n in names))


#: The gate's threshold for a metric named without one (find, regressions).
DEFAULT_PCT = 5.0


@dataclass(frozen=True)
class Threshold:
    """METRIC:PCT: fail when METRIC gets worse (per the schema's x-better) by more than PCT %."""
    metric: str
    pct: float
    better: str


#: NAME:PCT, NAME any name `resolve` knows.
_SPEC = re.compile(r"^\s*([^:]*[^:\s])\s*:\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*$")


def parse_threshold(spec: str, specs: dict[str, dict] | None = None) -> Threshold:
    """'execution_time_s:10%' (or 'time:10%') -> Threshold. Raises ValueError with one clear message for a bad spec."""
    specs = specs if specs is not None else metric_specs("telemetry")
    m = _SPEC.match(spec or "")
    if not m:
        raise ValueError(f"'{spec}': expected METRIC:PCT, e.g. execution_time_s:10% or tokens_per_second:5%")
    try:
        name, pct = resolve(m.group(1), specs, directed=True), float(m.group(2))
    except UnknownMetric as e:
        raise ValueError(f"'{spec}': {e}") from None
    better = specs[name].get("x-better", "none")
    if better not in ("lower", "higher"):
        raise ValueError(f"'{spec}': metric '{name}' has no better direction in the schema "
                         f"(x-better: {better}), so it cannot regress")
    if pct <= 0:
        raise ValueError(f"'{spec}': the threshold must be above 0 %")
    return Threshold(name, pct, better)
