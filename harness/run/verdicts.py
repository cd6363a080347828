"""Budgets and verdicts (pure): one run's telemetry + its profile's budget -> target met or not, with the reasons.

target_met = within the time budget AND within the memory limit AND schema-valid telemetry AND the quality
floor (at least one claim; citation validity >= the profile's citation_floor and, where the profile sets a
grounded_floor above 0 and the telemetry has it (schema 1.1), the grounded-citation rate >= grounded_floor)
AND the run succeeded. The shipped profiles set grounded_floor 0: the embedded stand-in model grounds too few
citations, too unevenly, for a gate (README, "Measured"); the rate is stored and compared like any metric.
A run faster than the budget's lower bound is *under budget*: shown and stored as a note, never a failure.

No I/O, no pytest: the plugin, the CLI and the tests call `evaluate` with whatever telemetry they have.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..records import (CITATIONS_BELOW_FLOOR, GROUNDED_BELOW_FLOOR, MEMORY_OVER, NO_CITATIONS, NO_CLAIMS, NO_TELEMETRY, RUN_CRASHED,
                       RUN_FAILED, RUN_TIMED_OUT, SCHEMA_INVALID, TIME_OVER, is_number)
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
        """`profile` is an engine.profiles.Profile. `scale` multiplies the time band (not the memory limit:
        a slower machine needs more time, not more memory)."""
        b = profile.budget_for(machine_class)
        return cls(profile=profile.name, machine_class=b.machine_class, time_lower_s=b.time_lower_s * scale,
                   time_upper_s=b.time_upper_s * scale, memory_mb=b.memory_mb, scale=scale,
                   reference_fallback=b.is_reference_fallback, citation_floor=profile.citation_floor,
                   timeout_s=profile.timeout_s * max(1.0, scale),
                   grounded_floor=profile.grounded_floor)

    def as_dict(self) -> dict:
        """As stored in ResultRecord.budget."""
        return asdict(self)

    def where(self) -> str:
        """'[linux-x86_64-2c, scaled x0.5]' — which figures these are."""
        parts = [self.machine_class]
        if self.reference_fallback:
            parts.append("no budget for this class: reference figures")
        if self.scale != 1.0:
            parts.append(f"scaled x{self.scale:g}")
        return "[" + ", ".join(parts) + "]"


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass
class Verdict:
    """The judgement of one run. `reasons` say why the target was missed (empty when met)."""
    target_met: bool
    reasons: list[Reason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)       # shown, never failing (under budget, fallbacks)
    time_s: float | None = None
    time_status: str = "unknown"        # within | over | under | incomplete (did not run to the end) | unknown
    memory_peak_mb: float | None = None
    memory_status: str = "unknown"      # within | over | unknown
    memory_source: str | None = None    # telemetry | harness (parent-side sampler of an isolated run)
    schema_valid: bool | None = None
    quality_ok: bool | None = None
    success: bool | None = None

    @property
    def messages(self) -> list[str]:
        return [r.message for r in self.reasons]

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]


def _num(x: Any) -> float | None:
    return float(x) if is_number(x) else None


def evaluate(telemetry: dict | None, budget: BudgetSpec, *, schema_errors: list[str] | None = None,
             run_error: str | None = None, timed_out: bool = False, crash_cause: str | None = None,
             observed_peak_mb: float | None = None, memray_top: list[str] | None = None) -> Verdict:
    """Judge one run.

    telemetry: the engine's document (None when the run died before producing one).
    schema_errors: engine.telemetry.validation_errors(telemetry) ('JSON path: rule (message)').
    run_error / timed_out / crash_cause: what the harness saw happen to the run.
    observed_peak_mb: the harness's own process-tree peak (isolated runs), used when telemetry has none.
    memray_top: top allocators of a memray capture, appended to a memory failure's message.
    """
    p = budget.profile
    reasons: list[Reason] = []
    notes: list[str] = []
    metrics = (telemetry or {}).get("metrics") or {}
    v = Verdict(target_met=False)

    # -- did it run? ---------------------------------------------------------------------------------------
    if crash_cause:
        reasons.append(Reason(RUN_CRASHED, f"{p}: run crashed: {crash_cause}"))
    if timed_out or bool((telemetry or {}).get("timed_out")):
        limit = f" (profile timeout {fmt_limit(budget.timeout_s)} s)" if budget.timeout_s else ""
        reasons.append(Reason(RUN_TIMED_OUT, f"{p}: timed out{limit}"))
    if telemetry is None:
        if not crash_cause and not timed_out:
            reasons.append(Reason(NO_TELEMETRY, f"{p}: the run produced no telemetry"
                                               + (f" ({run_error})" if run_error else "")))
        v.success = False
    else:
        v.success = bool(telemetry.get("success")) and not run_error
        if not v.success and not timed_out and not (telemetry or {}).get("timed_out"):
            why = run_error or "; ".join(telemetry.get("errors") or []) or "success is false"
            reasons.append(Reason(RUN_FAILED, f"{p}: run failed: {why}"))

    # -- schema ------------------------------------------------------------------------------------------------
    if telemetry is not None:
        errs = list(schema_errors or [])
        v.schema_valid = not errs
        if errs:
            shown = "; ".join(errs[:5]) + (f"; ... ({len(errs) - 5} more)" if len(errs) > 5 else "")
            reasons.append(Reason(SCHEMA_INVALID, f"{p}: telemetry breaks schemas/telemetry.schema.json: {shown}"))

    # -- time --------------------------------------------------------------------------------------------------
    t = _num(metrics.get("execution_time_s"))
    v.time_s = t
    if t is not None:
        if t > budget.time_upper_s:
            v.time_status = "over"
            reasons.append(Reason(TIME_OVER, f"{p}: {fmt_s(t)} s > {fmt_limit(budget.time_upper_s)} s budget "
                                             f"({fmt_pct(pct_over(t, budget.time_upper_s))}) {budget.where()}"))
        elif not v.success or timed_out or (telemetry or {}).get("timed_out"):
            v.time_status = "incomplete"      # it stopped early: neither within nor under budget
        elif t < budget.time_lower_s:
            v.time_status = "under"
            under = (budget.time_lower_s - t) / budget.time_lower_s * 100 if budget.time_lower_s else 0
            notes.append(f"{p}: {fmt_s(t)} s < {fmt_limit(budget.time_lower_s)} s lower bound: under budget by "
                         f"{under:.0f} % (recorded, not failed; the budget may be stale) {budget.where()}")
        else:
            v.time_status = "within"

    # -- memory ------------------------------------------------------------------------------------------------
    peak = _num(metrics.get("memory_peak_mb"))
    v.memory_source = "telemetry" if peak is not None else None
    if observed_peak_mb is not None and (peak is None or observed_peak_mb > peak):
        # An isolated run's parent saw more (or the child died before reporting): the larger figure counts.
        peak, v.memory_source = float(observed_peak_mb), "harness"
    v.memory_peak_mb = peak
    if peak is not None:
        if peak > budget.memory_mb:
            v.memory_status = "over"
            msg = (f"{p}: memory peak {peak:.0f} MB > {fmt_limit(budget.memory_mb)} MB limit "
                   f"({fmt_pct(pct_over(peak, budget.memory_mb))}) {budget.where()}")
            if memray_top:
                msg += "\n  top allocators at the high-water mark (memray):\n" + "\n".join(
                    f"    {line}" for line in memray_top)
            else:
                msg += " (run with --research-memray to see the top allocators)"
            reasons.append(Reason(MEMORY_OVER, msg))
        else:
            v.memory_status = "within"

    # -- quality floor ---------------------------------------------------------------------------------------
    if telemetry is not None and v.success:
        claims = metrics.get("claims")
        validity = _num(metrics.get("citation_validity"))
        ok = True
        if not claims:
            ok = False
            reasons.append(Reason(NO_CLAIMS, f"{p}: no claim produced (quality floor: at least one claim)"))
        elif validity is None:
            ok = False
            reasons.append(Reason(NO_CITATIONS, f"{p}: no claim cites a passage (quality floor: citation "
                                                f"validity >= {budget.citation_floor:.2f})"))
        elif validity < budget.citation_floor:
            ok = False
            reasons.append(Reason(CITATIONS_BELOW_FLOOR, f"{p}: citation validity {validity:.2f} < floor "
                                                         f"{budget.citation_floor:.2f}"))
        elif (grounded := _num(metrics.get("grounded_citation_rate"))) is not None \
                and budget.grounded_floor > 0 and grounded < budget.grounded_floor:
            ok = False
            reasons.append(Reason(GROUNDED_BELOW_FLOOR, f"{p}: grounded citations {grounded:.2f} < floor "
                                                        f"{budget.grounded_floor:.2f} (the profile's grounded_floor: "
                                                        f"cited passages that do not support the claim)"))
        v.quality_ok = ok

    if budget.reference_fallback:
        notes.append(f"{p}: no budget for machine class '{budget.machine_class}' in the profile: held to the "
                     f"reference class's figures")
    v.reasons, v.notes = reasons, notes
    v.target_met = not reasons
    return v


def time_message(v: Any, budget: "BudgetSpec | dict | None", unverified_policy: str = "pass") -> str | None:
    """The time verdict of a bench instance (analysis.gate.InstanceVerdict) in words, when it missed the budget
    or could not be verified; None otherwise.

    'quick: 52.3 s > 45 s budget (+16 %) (median of 3 quiet runs) [linux-x86_64-2c]'
    'quick: UNVERIFIED: 52.3 s > 45 s budget (+16 %) (median of 3 runs, every one timed on a busy machine: other
     processes kept up to 1.2 cores busy; 2 re-measured): not failed (--research-unverified=pass) [...]'"""
    if v.time_status not in ("over", "unverified") or v.time_s is None or v.time_upper_s is None:
        return None
    if isinstance(budget, dict):
        budget = BudgetSpec(**{k: budget[k] for k in BudgetSpec.__dataclass_fields__ if k in budget})
    where = f" {budget.where()}" if isinstance(budget, BudgetSpec) else ""
    p, t, up = v.profile, v.time_s, v.time_upper_s
    head = f"{p}: {fmt_s(t)} s > {fmt_limit(up)} s budget ({fmt_pct(pct_over(t, up))})"
    if v.time_status == "over":
        basis = f" (median of {v.time_runs} quiet runs)" if v.time_runs > 1 else ""
        return head + basis + where
    if t <= up:
        head = f"{p}: timed out ({fmt_s(t)} s; budget {fmt_limit(up)} s)"
    load = f": other processes kept up to {v.other_cores:.1f} cores busy" if v.other_cores is not None else ""
    again = f"; {v.remeasured} re-measured" if v.remeasured else ""
    runs = f"median of {v.time_runs} runs, every one" if v.time_runs > 1 else "the run"
    verdict = ("failed (--research-unverified=fail)" if unverified_policy == "fail"
               else "not failed (--research-unverified=pass)")
    return f"{p}: UNVERIFIED: {head[len(p) + 2:]} ({runs} timed on a busy machine{load}{again}): {verdict}{where}"
