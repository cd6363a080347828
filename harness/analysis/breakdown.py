"""The performance breakdown, pure: phase shares, the native time split, prompt cache use and growth fits over
measured telemetry (run/scaling.py measures; schemas/breakdown.schema.json names the metrics)."""
from __future__ import annotations

import math
from typing import Sequence


def phase_shares(telemetry: dict) -> dict[str, float]:
    """'phase_share_<phase>' -> share of execution_time_s spent in that phase."""
    total = telemetry["metrics"]["execution_time_s"]
    if not total:
        return {}
    return {f"phase_share_{k.removesuffix('_s')}": v / total for k, v in telemetry["phases"].items()}


def native_split(telemetry: dict) -> dict[str, float | None]:
    """Where generation time went, by the backend's own counters over the calls: prompt evaluation, decoding and the
    rest (sampling, detokenising, the streaming loop), in seconds and as shares of the run's wall time."""
    calls = telemetry["traces"]["calls"]
    total = telemetry["metrics"]["execution_time_s"] or 0.0
    pe, dec, gen = (sum(c.get(k) or 0.0 for c in calls) for k in ("native_prompt_eval_s", "native_decode_s", "e2e_s"))
    other = max(0.0, gen - pe - dec)
    return {"prompt_eval_s": pe, "decode_s": dec, "generation_wall_s": gen, "generation_other_s": other,
            "prompt_eval_share": pe / total if total else None, "decode_share": dec / total if total else None,
            "generation_other_share": other / total if total else None}


def prompt_cache_hit_share(telemetry: dict) -> float | None:
    """Share of the prompt tokens sent that the backend did not evaluate (served from the KV prefix cache)."""
    m = telemetry["metrics"]
    total = m.get("prompt_tokens_total") or 0
    return 1.0 - m["prompt_tokens_evaluated"] / total if total else None


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares (slope, intercept); None with fewer than two distinct x."""
    if len(set(xs)) < 2:
        return None
    from scipy.stats import linregress
    fit = linregress(xs, ys)
    return float(fit.slope), float(fit.intercept)


def loglog_exponent(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """b in y ~ x^b (least squares on logs): 1 = linear growth, 0 = flat. None if any value is <= 0."""
    if any(v <= 0 for v in [*xs, *ys]):
        return None
    fit = linear_fit([math.log(x) for x in xs], [math.log(y) for y in ys])
    return fit[0] if fit else None


def growth_summary(points: Sequence[dict], x: str, ys: Sequence[str]) -> dict[str, dict]:
    """Per y: the slope per 1,000 units of x, the log-log exponent, and the largest-x value / the smallest-x one."""
    pts = sorted((p for p in points if p.get(x) is not None), key=lambda p: p[x])
    out = {}
    for y in ys:
        pp = [p for p in pts if isinstance(p.get(y), (int, float))]
        xs, vs = [p[x] for p in pp], [p[y] for p in pp]
        fit = linear_fit(xs, vs)
        out[y] = {"per_1k": fit[0] * 1000 if fit else None, "exponent": loglog_exponent(xs, vs),
                  "ratio_max_min": (vs[-1] / vs[0]) if len(vs) >= 2 and vs[0] else None}
    return out
