"""Budgets and verdicts (pure): one run's telemetry + its profile's budget -> target met or not, with the reasons:
time, memory, schema-valid telemetry, the quality floor (claims, citation validity, grounded citations where the
profile sets a floor) and success. Faster than the lower bound is *under budget*: a note, never a failure."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable

from ..analysis.gate import judge_time, over_budget
from ..records import (CITATIONS_BELOW_FLOOR, GROUNDED_BELOW_FLOOR, MEMORY_OVER, NO_CITATIONS, NO_CLAIMS, NO_TELEMETRY,
                       RUN_CRASHED, RUN_FAILED, RUN_TIMED_OUT, SCHEMA_INVALID, TIME_OVER, is_number)
from ..units import limit as fmt_limit, pct as fmt_pct, pct_over, seconds as fmt_s


@dataclass(frozen=True)
class BudgetSpec:
    """The budget one run is held to: the profile's figures for a machine class, time scaled by the budget scale."""
    profile: str
    machine_class: str
    time_lower_s: float
    time_upper_s: float
    memory_mb: float
    scale: float = 1.0
    reference_fallback: bool = False     # the machine class had no entry: the reference class's figures apply
    citation_floor: float = 0.0
    timeout_s: float | None = None
    grounded_floor: float = 0.0          # 0: the grounded-citation rate is stored, not gated

    @classmethod
    def from_profile(cls, profile: Any, machine_class: str, scale: float = 1.0) -> "BudgetSpec":
        """`scale` multiplies the time band, not the memory limit: a slower machine needs more time, not memory."""
        b = profile.budget_for(machine_class)
        return cls(profile=profile.name, machine_class=b.machine_class, time_lower_s=b.time_lower_s * scale,
                   time_upper_s=b.time_upper_s * scale, memory_mb=b.memory_mb, scale=scale,
                   reference_fallback=b.is_reference_fallback, citation_floor=profile.citation_floor,
                   timeout_s=profile.timeout_s * max(1.0, scale), grounded_floor=profile.grounded_floor)

    def where(self) -> str:
        """'[linux-x86_64-2c, scaled x0.5]': which figures these are."""
        parts = [self.machine_class, "no budget for this class: reference figures" if self.reference_fallback else "",
                 f"scaled x{self.scale:g}" if self.scale != 1.0 else ""]
        return "[" + ", ".join(p for p in parts if p) + "]"


@dataclass
class Verdict:
    """The judgement of one run. `reasons`: why the target was missed, code -> message (empty when met)."""
    target_met: bool = False
    reasons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)       # shown, never failing (under budget, fallbacks)
    time_status: str = "unknown"        # within | over | under | incomplete (did not run to the end) | unknown
    memory_peak_mb: float | None = None
    memory_status: str = "unknown"      # within | over | unknown
    memory_source: str | None = None    # telemetry | harness (parent-side sampler of an isolated run)
    quality_ok: bool | None = None
    success: bool | None = None

    @property
    def messages(self) -> list[str]:
        return list(self.reasons.values())

    @property
    def codes(self) -> list[str]:
        return list(self.reasons)

    def summary(self) -> dict:
        """As stored in a record's extra['verdict']."""
        return {k: getattr(self, k) for k in ("time_status", "memory_status", "memory_peak_mb", "memory_source",
                                              "quality_ok")}


def _num(x: Any) -> float | None:
    return float(x) if is_number(x) else None


def evaluate(telemetry: dict | None, budget: BudgetSpec, *, schema_errors: list[str] | None = None,
             run_error: str | None = None, timed_out: bool = False, crash_cause: str | None = None,
             observed_peak_mb: float | None = None,
             memray_top: list[str] | Callable[[], list[str]] | None = None) -> Verdict:
    """Judge one run (telemetry None: it died before producing one). `memray_top`: the top allocators of a memray
    capture, or a function giving them, called only on a memory failure."""
    v = Verdict()
    metrics = (telemetry or {}).get("metrics") or {}
    stopped = timed_out or bool((telemetry or {}).get("timed_out"))
    _ran(v, telemetry, budget, run_error, stopped, crash_cause)
    if schema_errors and telemetry is not None:
        errs = schema_errors
        shown = "; ".join(errs[:5]) + (f"; ... ({len(errs) - 5} more)" if len(errs) > 5 else "")
        v.reasons[SCHEMA_INVALID] = f"{budget.profile}: telemetry breaks schemas/telemetry.schema.json: {shown}"
    _time(v, _num(metrics.get("execution_time_s")), budget, stopped)
    _memory(v, _num(metrics.get("memory_peak_mb")), budget, observed_peak_mb, memray_top)
    if telemetry is not None and v.success:
        _quality(v, metrics, budget)
    if budget.reference_fallback:
        v.notes.append(f"{budget.profile}: no budget for machine class '{budget.machine_class}' in the profile: "
                       f"held to the reference class's figures")
    v.target_met = not v.reasons
    return v


def _ran(v: Verdict, telemetry: dict | None, budget: BudgetSpec, run_error: str | None, stopped: bool,
         crash_cause: str | None) -> None:
    p = budget.profile
    if crash_cause:
        v.reasons[RUN_CRASHED] = f"{p}: run crashed: {crash_cause}"
    if stopped:
        limit = f" (profile timeout {fmt_limit(budget.timeout_s)} s)" if budget.timeout_s else ""
        v.reasons[RUN_TIMED_OUT] = f"{p}: timed out{limit}"
    v.success = telemetry is not None and bool(telemetry.get("success")) and not run_error
    if telemetry is None and not crash_cause and not stopped:
        v.reasons[NO_TELEMETRY] = f"{p}: the run produced no telemetry" + (f" ({run_error})" if run_error else "")
    elif telemetry is not None and not v.success and not stopped:
        why = run_error or "; ".join(telemetry.get("errors") or []) or "success is false"
        v.reasons[RUN_FAILED] = f"{p}: run failed: {why}"


def _time(v: Verdict, t: float | None, budget: BudgetSpec, stopped: bool) -> None:
    """The run's time by the one time rule (analysis.gate.judge_time); a run that stopped early is incomplete."""
    if t is None:
        return
    v.time_status = judge_time(t, budget.time_lower_s, budget.time_upper_s)
    if v.time_status == "over":
        v.reasons[TIME_OVER] = f"{over_budget(budget.profile, t, budget.time_upper_s)} {budget.where()}"
    elif not v.success or stopped:
        v.time_status = "incomplete"        # neither within nor under budget
    elif v.time_status == "under":
        low = budget.time_lower_s
        v.notes.append(f"{budget.profile}: {fmt_s(t)} s < {fmt_limit(low)} s lower bound: under budget by "
                       f"{(low - t) / low * 100 if low else 0:.0f} % (recorded, not failed; the budget may be "
                       f"stale) {budget.where()}")


def _memory(v: Verdict, peak: float | None, budget: BudgetSpec, observed_peak_mb: float | None,
            memray_top: list[str] | Callable[[], list[str]] | None) -> None:
    v.memory_source = "telemetry" if peak is not None else None
    if observed_peak_mb is not None and (peak is None or observed_peak_mb > peak):
        # An isolated run's parent saw more (or the child died before reporting): the larger figure counts.
        peak, v.memory_source = float(observed_peak_mb), "harness"
    v.memory_peak_mb = peak
    if peak is None or peak <= budget.memory_mb:
        v.memory_status = "unknown" if peak is None else "within"
        return
    v.memory_status = "over"
    msg = (f"{budget.profile}: memory peak {peak:.0f} MB > {fmt_limit(budget.memory_mb)} MB limit "
           f"({fmt_pct(pct_over(peak, budget.memory_mb))}) {budget.where()}")
    top = memray_top() if callable(memray_top) else memray_top
    if top:
        msg += "\n  top allocators at the high-water mark (memray):\n" + "\n".join(f"    {line}" for line in top)
    else:
        msg += " (run with --research-memray to see the top allocators)"
    v.reasons[MEMORY_OVER] = msg


def _quality(v: Verdict, metrics: dict, budget: BudgetSpec) -> None:
    p, floor, validity = budget.profile, budget.citation_floor, _num(metrics.get("citation_validity"))
    grounded, grounded_floor = _num(metrics.get("grounded_citation_rate")), budget.grounded_floor
    v.quality_ok = False
    if not metrics.get("claims"):
        v.reasons[NO_CLAIMS] = f"{p}: no claim produced (quality floor: at least one claim)"
    elif validity is None:
        v.reasons[NO_CITATIONS] = f"{p}: no claim cites a passage (quality floor: citation validity >= {floor:.2f})"
    elif validity < floor:
        v.reasons[CITATIONS_BELOW_FLOOR] = f"{p}: citation validity {validity:.2f} < floor {floor:.2f}"
    elif grounded is not None and grounded_floor > 0 and grounded < grounded_floor:
        v.reasons[GROUNDED_BELOW_FLOOR] = (f"{p}: grounded citations {grounded:.2f} < floor {grounded_floor:.2f} "
                                           f"(the profile's grounded_floor: cited passages that do not support the "
                                           f"claim)")
    else:
        v.quality_ok = True


def time_message(v: Any, budget: dict | None, unverified_policy: str = "pass") -> str | None:
    """An instance's time verdict (analysis.gate.InstanceVerdict) in words when it missed its stored budget or could
    not be verified, else None: 'quick: 52.3 s > 45 s budget (+16 %) (median of 3 quiet runs) [linux-x86_64-2c]'."""
    if v.time_status not in ("over", "unverified") or v.time_s is None or v.time_upper_s is None:
        return None
    spec = BudgetSpec(**{f.name: budget[f.name] for f in fields(BudgetSpec) if f.name in budget}) if budget else None
    where = f" {spec.where()}" if spec else ""
    p, t, up = v.profile, v.time_s, v.time_upper_s
    head = over_budget(p, t, up)
    if v.time_status == "over":
        return head + (f" (median of {v.time_runs} quiet runs)" if v.time_runs > 1 else "") + where
    if t <= up:
        head = f"{p}: timed out ({fmt_s(t)} s; budget {fmt_limit(up)} s)"
    load = f": other processes kept up to {v.other_cores:.1f} cores busy" if v.other_cores is not None else ""
    again = f"; {v.remeasured} re-measured" if v.remeasured else ""
    runs = f"median of {v.time_runs} runs, every one" if v.time_runs > 1 else "the run"
    verdict = ("failed (--research-unverified=fail)" if unverified_policy == "fail"
               else "not failed (--research-unverified=pass)")
    return f"{p}: UNVERIFIED: {head[len(p) + 2:]} ({runs} timed on a busy machine{load}{again}): {verdict}{where}"
