"""Compare-fail thresholds, METRIC:PCT (pure): parsing and checking against the schemas' metric specs."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..records import metric_specs
from .names import UnknownMetric, resolve

#: The gate's threshold for a metric named without one (find, regressions).
DEFAULT_PCT = 5.0


@dataclass(frozen=True)
class Threshold:
    """METRIC:PCT: fail when METRIC gets worse (per the schema's x-better) by more than PCT %."""
    metric: str
    pct: float
    better: str


#: NAME:PCT, NAME any name of analysis/names.py (a schema name, a table's label such as `mem peak`, an alias).
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
