"""A bench instance's runs, end to end: run (inprocess.py / isolated.py) -> judge (verdicts.py) -> store one record
per run (store.py), the instance's verdict (analysis/gate.py) with its last. A run timed on a busy machine (cpu.py) is
measured again, up to --research-remeasure times; in a continuous session, runs take turns (interleave.py)."""
from __future__ import annotations

import functools
import re
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .. import records
from ..analysis.gate import MET, MISSED, UNVERIFIED, InstanceVerdict, instance_verdict
from ..records import DEFAULT_RUNNER, ResultRecord, Summary, summarize
from . import interleave, store
from .context import BenchContext, profile_digest
from .cpu import CpuLoad, load_between, snapshot, wait_quiet
from .inprocess import run_in_process, top_allocators
from .isolated import run_isolated
from .request import COMPLETED, CRASHED, ERROR, FAILED, INTERRUPTED, TIMED_OUT, RunOutcome, RunRequest
from .timeouts import SignalTimer, widened
from .verdicts import BudgetSpec, Verdict, evaluate, time_message

#: Before a re-measurement: wait at most this long for other processes to leave the CPUs mostly idle.
REMEASURE_WAIT_S = 30.0
#: The item's timer while this side waits for its turn in an interleaved session (the other side's round).
TURN_WAIT_S = 3600.0


class BenchError(RuntimeError):
    """The bench could not run at all (a user error before any run started); the message names the fix."""


@dataclass
class RunPlan:
    """How a bench instance runs its request, and what its records carry besides the run (None: the session's)."""
    rounds: int | None = None
    warmup_runs: int | None = None
    isolate: bool | None = None
    gate: bool = True                   # False: stored and shown, never failing the session (ablations)
    extra: dict = field(default_factory=dict)   # the bench's own keys, stored in each record's extra
    bench: str | None = None            # stored under this bench name instead of the test's
    runner: str = DEFAULT_RUNNER        # what produced the telemetry, as stored
    instance: str | None = None         # the id every run of the instance stores


@dataclass
class Attempt:
    """One try at a round's run, and what the harness saw around it."""
    outcome: RunOutcome
    started: float                      # perf_counter() when the harness started on it (for its overhead)
    load: CpuLoad | None = None         # other processes' CPU use over it
    number: int = 1                     # 1, then each re-measurement
    waited_quiet_s: float | None = None
    again: bool = False                 # contended, and measured again: superseded

    @property
    def contended(self) -> bool:
        return self.load is not None and self.load.contended

    def facts(self, profile: str, warmup: bool, notes: list[str]) -> dict:
        """Which try of its round this was, how busy other processes kept the machine during it (noted in `notes`
        when busy), and the harness's own time around it."""
        if self.contended:
            notes.append(f"{profile}: busy machine: other processes kept {self.load.other_cores:.1f} of "
                         f"{self.load.logical} cores busy during this run: its timings are inflated and not "
                         f"comparable" + ("; measured again" if self.again else ""))
        return {"attempt": None if warmup else self.number, "waited_quiet_s": self.waited_quiet_s,
                "other_cpu_load": round(self.load.other_cores, 2) if self.load is not None else None,
                "contended": self.contended or None, "superseded": self.again or None,
                "harness_overhead_s": round_(max(0.0, time.perf_counter() - self.started - self.outcome.wall_s), 6)}


@dataclass
class Provenance:
    """What the harness stores in a run's `extra` before the bench's own keys (None fields left out)."""
    session_id: str
    runner: str
    backend: str
    isolated: bool
    gate: bool
    profile_digest: str
    profile_source: str | None
    reason_codes: list[str]
    notes: list[str]
    verdict: dict
    detected_machine_class: str | None = None   # with --research-machine-class: the class this machine has
    xdist_worker: str | None = None
    saved_as: str | None = None
    continuous: dict | None = None
    wall_s: float | None = None
    error: str | None = None
    cause: str | None = None
    timeout_via: str | None = None
    child_log: str | None = None
    child_warmup_s: float | None = None
    observed_peak_mb: float | None = None
    memory_check: dict | None = None
    memray_capture_by: str | None = None
    memray_capture: str | None = None
    memray_top: list[str] | None = None
    rounds: int | None = None
    warmup_runs: int | None = None
    instance: str | None = None
    attempt: int | None = None
    waited_quiet_s: float | None = None
    other_cpu_load: float | None = None
    contended: bool | None = None
    superseded: bool | None = None
    harness_overhead_s: float | None = None

    def as_extra(self, bench_extra: dict) -> dict:
        return {**{k: v for k, v in asdict(self).items() if v is not None or k == "profile_source"}, **bench_extra}


@dataclass
class RunResult:
    """One judged run; `path` once stored, `instance` the instance's verdict when the run ends it."""
    record: ResultRecord
    verdict: Verdict
    outcome: RunOutcome | None
    path: Path | None = None
    instance: InstanceVerdict | None = None


@dataclass
class BenchResult:
    """All runs of one `run()` call (warm-ups and re-measured attempts flagged) and the instance's verdict: the one
    stored with its last run, computed here only when no run ended the instance (warm-ups alone)."""
    profile: str | None
    budget: BudgetSpec | None
    runs: list[RunResult] = field(default_factory=list)
    unverified_policy: str = "pass"
    verdict: InstanceVerdict | None = None

    def __post_init__(self) -> None:
        if self.verdict is None and self.runs:
            self.verdict = instance_verdict([r.record for r in self.runs])

    @property
    def measured(self) -> list[RunResult]:
        return [r for r in self.runs if not r.record.warmup]

    @property
    def status(self) -> str:
        """met | missed | unverified (no run at all: missed)."""
        return self.verdict.status if self.verdict is not None else MISSED

    @property
    def target_met(self) -> bool:
        return self.status == MET

    @property
    def fails(self) -> bool:
        """Whether this instance fails its test: missed, or unverified under --research-unverified=fail."""
        return self.status == MISSED or (self.status == UNVERIFIED and self.unverified_policy == "fail")

    @property
    def messages(self) -> list[str]:
        """Why the instance missed its target (or could not be verified): the time verdict's reason, then the
        per-run misses that count (memory, schema, quality, failures), each once."""
        v = self.verdict
        if v is None:
            return []
        t = time_message(v, self.runs[-1].record.budget, self.unverified_policy)
        out = ([t] if t else []) + v.run_reasons
        if not out and not self.measured:       # a warm-up that died leaves no measured run: say why
            out = [m for r in self.runs for m in r.verdict.messages]
        return out

    @property
    def session(self) -> Any:
        """The engine's ResearchSession of the last measured in-process run (None when isolated)."""
        return next((r.outcome.session for r in reversed(self.measured)
                     if r.outcome is not None and r.outcome.session is not None), None)

    @property
    def telemetry(self) -> dict | None:
        return next((r.record.telemetry for r in reversed(self.measured) if r.record.telemetry is not None), None)

    def metric(self, name: str) -> Summary:
        """Median and IQR of a telemetry metric over the measured rounds (a re-measured round counts once)."""
        return summarize(r.record.metric(name) for r in self.measured if not records.is_superseded(r.record))


def _status(telemetry: dict | None, outcome: RunOutcome | None) -> str:
    """The run's status; for telemetry a bench produced itself, what the telemetry says."""
    if outcome is not None:
        return outcome.status
    tel = telemetry or {}
    return TIMED_OUT if tel.get("timed_out") else COMPLETED if tel.get("success") else FAILED


def _record_outcome(status: str, target_met: bool) -> str:
    """The stored outcome: a completed run passed or failed on its verdict; other statuses are stored as they are."""
    if status == COMPLETED:
        return records.PASSED if target_met else records.FAILED
    return status if status in records.OUTCOMES else records.FAILED


def round_(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


class InstanceRunner:
    """Runs, judges and stores the runs of one bench instance (one test id), and gives its verdict."""

    def __init__(self, ctx: BenchContext, test_id: str, *, bench: str | None = None,
                 memray_external: dict | None = None):
        self.ctx = ctx
        self.test_id = test_id
        func = test_id.split("::")[-1].split("[")[0]    # 'benches/test_pipeline.py::test_pipeline[quick]' -> 'pipeline'
        self.bench = bench or re.sub(r"^test_?", "", func) or func
        #: pytest-memray's capture of this test ({"by", "capture", "dir"}): in-process runs use it (one tracker only).
        self.memray_external = memray_external

    # -- judging and storing ----------------------------------------------------------------------------------
    def judge(self, telemetry: dict | None, *, profile: Any, plan: RunPlan, outcome: RunOutcome | None = None,
              round: int = 0, warmup: bool = False, attempt: Attempt | None = None) -> RunResult:
        """Validate and judge one run into its record, not yet stored. `outcome`: what happened to the run (None
        for telemetry a bench produced itself); `attempt`: which try of its round it was."""
        from llm_research_bench.engine.telemetry import validation_errors

        prof = self.ctx.profile(profile)
        budget = self.ctx.budget(prof)
        status = _status(telemetry, outcome)
        schema_errors = validation_errors(telemetry) if telemetry is not None else []
        capture = outcome.memray_file if outcome else None
        top = functools.cache(lambda: top_allocators(capture)) if capture and Path(capture).exists() else None
        verdict = evaluate(telemetry, budget, schema_errors=schema_errors,
                           run_error=outcome.error if outcome and status != COMPLETED else None,
                           timed_out=status == TIMED_OUT,
                           crash_cause=outcome.cause if outcome and status == CRASHED else None,
                           observed_peak_mb=outcome.observed_peak_mb if outcome else None, memray_top=top)
        prov = self._provenance(prof, verdict, telemetry, outcome, plan)
        if top and verdict.memory_status == "over":
            prov.memray_top = top() or None
        if attempt is not None:
            prov = replace(prov, **attempt.facts(prof.name, warmup, prov.notes))
        git = self.ctx.git
        rec = ResultRecord(
            test_id=self.test_id, bench=self.bench, profile=prof.name,
            outcome=_record_outcome(status, verdict.target_met), target_met=verdict.target_met,
            machine_fingerprint=self.ctx.machine.fingerprint, machine_class=budget.machine_class, commit=git.commit,
            dirty=git.dirty, branch=git.branch, plugin_version=self.ctx.plugin_version, reasons=verdict.messages,
            round=round, warmup=warmup, telemetry=telemetry,
            schema_valid=(not schema_errors) if telemetry is not None else None, schema_errors=schema_errors,
            budget=asdict(budget), extra=prov.as_extra(plan.extra))
        return RunResult(rec, verdict, outcome)

    def _provenance(self, prof: Any, verdict: Verdict, telemetry: dict | None, outcome: RunOutcome | None,
                    plan: RunPlan) -> Provenance:
        ctx, o, side = self.ctx, self.ctx.options, interleave.current()
        p = Provenance(
            session_id=ctx.session_id, runner=plan.runner, backend=(telemetry or {}).get("backend") or o.backend,
            isolated=bool(outcome and outcome.isolated), gate=plan.gate, profile_digest=profile_digest(prof),
            profile_source=getattr(prof, "source", None), reason_codes=verdict.codes, notes=list(verdict.notes),
            verdict=verdict.summary(), detected_machine_class=ctx.detected_machine_class if o.machine_class else None,
            xdist_worker=ctx.worker or None, saved_as=o.save or None,
            continuous=side.record_extra() if side is not None else None,
            rounds=plan.rounds, warmup_runs=plan.warmup_runs, instance=plan.instance)
        if outcome is not None:
            p = replace(p, **{"wall_s": round_(outcome.wall_s), "child_warmup_s": round_(outcome.child_warmup_s),
                  "observed_peak_mb": round_(outcome.observed_peak_mb, 1), "memory_check": outcome.memory_check,
                  **{k: getattr(outcome, k) or None for k in ("error", "cause", "timeout_via", "child_log")}})
        external = self.memray_external if not (outcome and outcome.isolated) else None
        if outcome is not None and outcome.memray_file:
            p.memray_capture = str(outcome.memray_file)
            p.notes.append(f"{prof.name}: memray capture on: this run's timings are inflated by allocation tracing")
        elif external:
            p.memray_capture_by, p.memray_capture = external["by"], external.get("capture") or external.get("dir")
            p.notes.append(f"{prof.name}: {external['by']} traces this test's allocations (capture "
                           f"{p.memray_capture}): this run's timings are inflated by allocation tracing; the "
                           f"harness used that capture rather than start a second memray tracker")
        return p

    def save(self, rr: RunResult, instance: list[ResultRecord] | None = None) -> RunResult:
        """Append `rr`'s record to the results store. `instance`: the run ends its instance, whose earlier records
        these are; the instance's verdict is stored with it and kept in `rr.instance`."""
        if instance is not None:
            rr.instance = instance_verdict([*instance, rr.record])
            rr.record.extra["instance_verdict"] = {**rr.instance.as_stored(),
                                                   "unverified_policy": self.ctx.options.unverified}
        saved = store.append_or_fallback(self.ctx.options.results_dir, rr.record)
        rr.path = saved.path
        self.ctx.records.append(rr.record)
        if saved.error:
            self.ctx.unsaved.append(saved.line)
        else:
            self.ctx.record_paths.append(rr.path)
        return rr

    # -- running ----------------------------------------------------------------------------------------------
    def memray_path(self, round: int) -> str:
        c = (self.ctx.git.commit or "nocommit")[:12]
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.test_id).strip("_")[:120]
        return str(self.ctx.options.results_dir / "memray" / self.ctx.machine.fingerprint / c
                   / f"{safe}-r{round}-{stamp}-{self.ctx.session_id}.bin")

    def run(self, req: RunRequest, plan: RunPlan | None = None, *, timer: SignalTimer | None = None,
            progress: Callable[[int, int, bool], Any] | None = None) -> BenchResult:
        """Run `req`: the plan's warm-ups, then its measured rounds, each run judged and stored; interrupts are
        re-raised once recorded. `progress(i, n, warmup)`: the live-progress sink of a round's run, or None."""
        o, plan = self.ctx.options, plan or RunPlan()
        plan = replace(plan, runner=req.runner, instance=uuid.uuid4().hex[:16],     # the session's where None
                       **{k: getattr(o, k) for k in ("rounds", "warmup_runs", "isolate") if getattr(plan, k) is None})
        if plan.isolate and req.corpus is not None and req.corpus_path is None:
            raise BenchError("an isolated run loads its corpus from a path: pass corpus=<path>, not a Corpus")
        req.profile = self.ctx.profile(req.profile)
        runs: list[RunResult] = []
        for i in range(plan.warmup_runs + plan.rounds):
            warm = i < plan.warmup_runs
            req.on_progress = progress(i if warm else i - plan.warmup_runs, plan.warmup_runs if warm else plan.rounds,
                                       warm) if progress else None
            if self._round(req, plan, i, runs, timer):
                break
        return BenchResult(req.profile.name, self.ctx.budget(req.profile), runs, o.unverified,
                           runs[-1].instance if runs else None)

    def _round(self, req: RunRequest, plan: RunPlan, i: int, runs: list[RunResult],
               timer: SignalTimer | None) -> bool:
        """Round `i`'s run, measured again while contended (up to --research-remeasure times), each attempt stored
        in `runs`. True when the instance stops here: a timeout or crash not measured again (the rest would too)."""
        warm, last = i < plan.warmup_runs, i == plan.warmup_runs + plan.rounds - 1
        number = 1
        while True:
            att = self._attempt(req, plan, i, timer, number)
            out = att.outcome
            if out.status == ERROR and out.telemetry is None:
                raise out.exception or BenchError(f"the run could not start: {out.error}")
            att.again = (not warm and att.contended and number <= self.ctx.options.remeasure
                         and out.status in (COMPLETED, TIMED_OUT))
            # A warm-up that timed out on a busy machine warmed up all the same: the measured rounds will tell.
            stop = (out.status in (TIMED_OUT, CRASHED, INTERRUPTED) and not att.again
                    and not (warm and att.contended and out.status == TIMED_OUT))
            ends = not warm and not att.again and (last or stop)
            rr = self.save(self.judge(out.telemetry, profile=req.profile, outcome=out, round=i, warmup=warm,
                                      plan=plan, attempt=att), [r.record for r in runs] if ends else None)
            runs.append(rr)
            _tell(req, att, rr, self.ctx.options.remeasure + 1)
            if not (att.again or warm or ends):
                # The other side's turn. After the instance's last round this side keeps the turn (its next bench,
                # or its session's end, must not overlap the other side's runs) until its session ends.
                interleave.pass_turn()
            if out.status == INTERRUPTED and out.exception is not None:
                raise out.exception
            if not att.again:
                return stop
            number += 1

    def _attempt(self, req: RunRequest, plan: RunPlan, i: int, timer: SignalTimer | None, number: int) -> Attempt:
        """One try at round `i`'s run on this side's turn (a re-measurement after a bounded wait for quiet)."""
        waited = None
        with widened(timer, TURN_WAIT_S):
            interleave.take_turn()
            if number > 1:
                waited = wait_quiet(max_wait_s=REMEASURE_WAIT_S)["waited_s"]
        o = self.ctx.options
        req.memray_file = self.memray_path(i) if o.memray and (plan.isolate or not self.memray_external) else None
        started = time.perf_counter()
        cpu0 = snapshot()
        if plan.isolate:
            from llm_research_bench.engine.memory import find_ollama_server_pids
            limit = self.ctx.budget(req.profile).memory_mb if o.enforce_memory else None
            # A local model server's processes count in the run's memory.
            server = find_ollama_server_pids() if req.backend == "ollama" else None
            outcome = run_isolated(req, enforce_memory_mb=limit, extra_pids=server)
        else:
            outcome = run_in_process(req, timer=timer)
        return Attempt(outcome, started, load_between(cpu0, snapshot()), number, waited)


def _tell(req: RunRequest, att: Attempt, rr: RunResult, tries: int) -> None:
    """The attempt's verdict to the live progress, and, when it is measured again, the next attempt's start: its
    number of `tries`, how busy the machine was, and the wait for quiet before it."""
    if req.on_progress is None:
        return
    cores = round(att.load.other_cores, 2) if att.load is not None else None
    req.on_progress({"event": "verdict", "status": att.outcome.status, "target_met": rr.record.target_met,
                     "execution_time_s": rr.record.metric("execution_time_s"), "messages": rr.verdict.messages,
                     "decode_tps": rr.record.metric("tokens_per_second"),
                     "contended": att.contended, "again": att.again, "other_cores": cores})
    if att.again:
        req.on_progress({"event": "attempt", "number": att.number + 1, "of": tries, "other_cores": cores,
                         "wait_s": REMEASURE_WAIT_S})

