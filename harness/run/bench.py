"""A bench instance's runs, end to end: run (inprocess.py / isolated.py) -> validate against the schema -> judge
(verdicts.py) -> store one record per run (store.py) -> the instance's verdict over its runs (analysis/gate.py),
stored with its last run. No pytest here: the plugin's fixtures wrap it, and scripts (the overhead measurement)
call it directly, so both take exactly the same path.

A measured run timed while other processes held a real share of the CPUs (run/cpu.py) is measured again, after
a bounded wait for a quiet machine, up to `--research-remeasure` more times; every attempt is stored, the
contended ones flagged (extra: contended, superseded, attempt). In a `research-bench continuous` session the
side takes its turn before each run and passes it on after each measured round but the last of the instance
(run/interleave.py)."""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import records as R
from ..analysis.gate import MET, MISSED, UNVERIFIED, InstanceVerdict, instance_verdict
from ..records import ResultRecord, Summary, summarize
from . import interleave
from . import request as S
from . import store
from .context import BenchContext, profile_digest
from .cpu import load_between, snapshot, wait_quiet
from .inprocess import run_in_process
from .isolated import run_isolated
from .memray_capture import top_allocators
from .timeouts import SignalTimer, widened
from .verdicts import BudgetSpec, Verdict, evaluate, time_message

#: Before a re-measurement: wait at most this long for other processes to leave the CPUs mostly idle.
REMEASURE_WAIT_S = 30.0
#: The item's timer while this side waits for its turn in an interleaved session (the other side's round).
TURN_WAIT_S = 3600.0


class BenchError(RuntimeError):
    """The bench could not run at all (a user error before any run started); the message names the fix."""


@dataclass
class RunResult:
    """One stored run."""
    record: ResultRecord
    verdict: Verdict
    outcome: S.RunOutcome | None
    path: Path | None


@dataclass
class BenchResult:
    """All runs of one `run()` call (warm-ups and re-measured attempts included, flagged), and the instance's
    verdict over them (analysis/gate.py: the time verdict on the median of the quiet runs)."""
    profile: str | None
    budget: BudgetSpec | None
    runs: list[RunResult] = field(default_factory=list)
    unverified_policy: str = "pass"

    @property
    def measured(self) -> list[RunResult]:
        return [r for r in self.runs if not r.record.warmup]

    @property
    def verdict(self) -> InstanceVerdict | None:
        return instance_verdict([r.record for r in self.runs]) if self.runs else None

    @property
    def status(self) -> str:
        """met | missed | unverified (no run at all: missed; warm-ups only: judged on them)."""
        v = self.verdict
        return v.status if v is not None else MISSED

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
    def notes(self) -> list[str]:
        seen: list[str] = []
        for r in self.measured:
            for m in r.verdict.notes:
                if m not in seen:
                    seen.append(m)
        return seen

    @property
    def session(self) -> Any:
        """The engine's ResearchSession of the last measured in-process run (None when isolated)."""
        for r in reversed(self.measured):
            if r.outcome is not None and r.outcome.session is not None:
                return r.outcome.session
        return None

    @property
    def telemetry(self) -> dict | None:
        for r in reversed(self.measured):
            if r.record.telemetry is not None:
                return r.record.telemetry
        return None

    def metric(self, name: str) -> Summary:
        """Median and IQR of a telemetry metric over the measured rounds (a re-measured attempt counts once, by
        its re-measurement)."""
        return summarize(r.record.metric(name) for r in self.measured if not R.is_superseded(r.record))


def bench_name_of(nodeid: str) -> str:
    """'benches/test_pipeline.py::test_pipeline[quick]' -> 'pipeline' (the function's name without test_)."""
    func = nodeid.split("::")[-1].split("[")[0]
    return re.sub(r"^test_?", "", func) or func


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_")[:120]


class BenchCore:
    """Runs and records for one bench instance (one test id)."""

    def __init__(self, ctx: BenchContext, test_id: str, *, bench: str | None = None,
                 memray_external: dict | None = None):
        self.ctx = ctx
        self.test_id = test_id
        self.bench = bench or bench_name_of(test_id)
        #: Another memray tracker covers this test in this process (pytest-memray: {"by", "capture", "dir"}):
        #: in-process runs use its capture instead of starting a second tracker (memray allows one at a time).
        self.memray_external = memray_external

    # -- recording ---------------------------------------------------------------------------------------
    def judge_and_store(self, telemetry: dict | None, *, profile: Any, outcome: S.RunOutcome | None = None,
                        round: int = 0, warmup: bool = False, extra: dict | None = None, gate: bool = True,
                        bench: str | None = None, started: float | None = None,
                        instance_runs: list[ResultRecord] | None = None) -> RunResult:
        """Validate, judge and append one record. `outcome` is what session.py saw (None for telemetry a bench
        produced itself). `started`: perf_counter() when the harness started on this run (for its overhead).
        `instance_runs`: this run ends its instance; the records of the instance's earlier runs, so that the
        instance's verdict (analysis/gate.py) is stored with this one."""
        from llm_research_bench.engine.telemetry import validation_errors

        prof = self.ctx.profile(profile)
        budget = self.ctx.budget(prof)
        status = outcome.status if outcome else (S.COMPLETED if (telemetry or {}).get("success") else S.FAILED)
        if outcome is None and (telemetry or {}).get("timed_out"):
            status = S.TIMED_OUT
        schema_errors = validation_errors(telemetry) if telemetry is not None else []
        kw = dict(schema_errors=schema_errors,
                  run_error=outcome.error if outcome and status not in (S.COMPLETED,) else None,
                  timed_out=status == S.TIMED_OUT,
                  crash_cause=outcome.cause if outcome and status == S.CRASHED else None,
                  observed_peak_mb=outcome.observed_peak_mb if outcome else None)
        verdict = evaluate(telemetry, budget, **kw)
        memray_file = outcome.memray_file if outcome else None
        memray_top = None
        if memray_file and verdict.memory_status == "over" and Path(memray_file).exists():
            memray_top = top_allocators(memray_file)
            verdict = evaluate(telemetry, budget, memray_top=memray_top, **kw)
        outcome_name = {S.COMPLETED: R.PASSED if verdict.target_met else R.FAILED, S.FAILED: R.FAILED,
                        S.TIMED_OUT: R.TIMED_OUT, S.INTERRUPTED: R.INTERRUPTED, S.CRASHED: R.CRASHED,
                        S.ERROR: R.ERROR}.get(status, R.FAILED)
        ext: dict[str, Any] = {
            "session_id": self.ctx.session_id,
            "runner": S.DEFAULT_RUNNER,
            "backend": (telemetry or {}).get("backend") or self.ctx.options.backend,
            "isolated": bool(outcome and outcome.isolated),
            "gate": gate,
            "profile_digest": profile_digest(prof),
            "profile_source": getattr(prof, "source", None),
            "reason_codes": verdict.codes,
            "notes": verdict.notes,
            "verdict": {"time_status": verdict.time_status, "memory_status": verdict.memory_status,
                        "memory_peak_mb": verdict.memory_peak_mb, "memory_source": verdict.memory_source,
                        "quality_ok": verdict.quality_ok},
        }
        if self.ctx.options.machine_class:      # budgets came from --research-machine-class: keep what was detected
            ext["detected_machine_class"] = self.ctx.detected_machine_class
        if self.ctx.worker:
            ext["xdist_worker"] = self.ctx.worker
        if self.ctx.options.save:
            ext["saved_as"] = self.ctx.options.save
        side = interleave.current()
        if side is not None:
            ext["continuous"] = side.record_extra()
        if outcome is not None:
            ext["wall_s"] = round_(outcome.wall_s)
            for k in ("error", "cause", "timeout_via", "child_log"):
                if getattr(outcome, k):
                    ext[k] = getattr(outcome, k)
            if outcome.child_warmup_s is not None:
                ext["child_warmup_s"] = round_(outcome.child_warmup_s)
            if outcome.observed_peak_mb is not None:
                ext["observed_peak_mb"] = round_(outcome.observed_peak_mb, 1)
            if outcome.memory_check is not None:
                ext["memory_check"] = outcome.memory_check
        external = self.memray_external if not (outcome and outcome.isolated) else None
        if memray_file:
            ext["memray_capture"] = str(memray_file)
        elif external:
            ext["memray_capture_by"] = external["by"]
            ext["memray_capture"] = external.get("capture") or external.get("dir")
        if memray_top:
            ext["memray_top"] = memray_top
        ext.update(extra or {})
        if memray_file:
            ext["notes"] = [*ext["notes"], f"{prof.name}: memray capture on: this run's timings are inflated by "
                                           f"allocation tracing"]
        elif external:
            ext["notes"] = [*ext["notes"], f"{prof.name}: {external['by']} traces this test's allocations (capture "
                                           f"{ext['memray_capture']}): this run's timings are inflated by "
                                           f"allocation tracing; the harness used that capture rather than start a "
                                           f"second memray tracker"]
        if ext.get("contention_note"):
            ext["notes"] = [*ext["notes"], f"{prof.name}: {ext.pop('contention_note')}"]
        if started is not None and outcome is not None:
            ext["harness_overhead_s"] = round_(max(0.0, time.perf_counter() - started - outcome.wall_s), 6)
        git = self.ctx.git
        rec = ResultRecord(
            test_id=self.test_id, bench=bench or self.bench, profile=prof.name, outcome=outcome_name,
            target_met=verdict.target_met, machine_fingerprint=self.ctx.machine.fingerprint,
            machine_class=budget.machine_class, commit=git.commit, dirty=git.dirty, branch=git.branch,
            plugin_version=self.ctx.plugin_version, reasons=verdict.messages, round=round, warmup=warmup,
            telemetry=telemetry, schema_valid=(not schema_errors) if telemetry is not None else None,
            schema_errors=schema_errors, budget=budget.as_dict(), extra=ext)
        if instance_runs is not None:
            rec.extra["instance_verdict"] = {**instance_verdict([*instance_runs, rec]).as_stored(),
                                             "unverified_policy": self.ctx.options.unverified}
        path = store.append(self.ctx.options.results_dir, rec)
        self.ctx.records.append(rec)
        self.ctx.record_paths.append(path)
        return RunResult(rec, verdict, outcome, path)

    # -- running -------------------------------------------------------------------------------------------
    def memray_path(self, round: int) -> str:
        c = (self.ctx.git.commit or "nocommit")[:12]
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return str(self.ctx.options.results_dir / "memray" / self.ctx.machine.fingerprint / c
                   / f"{_safe(self.test_id)}-r{round}-{stamp}-{self.ctx.session_id}.bin")

    def run(self, req: S.RunRequest, *, rounds: int | None = None, warmup_runs: int | None = None,
            isolate: bool | None = None, extra: dict | None = None, gate: bool = True,
            runner_label: str | None = None, timer: SignalTimer | None = None,
            progress: Callable[[int, int, bool], Any] | None = None) -> BenchResult:
        """Run `req` warm-up + measured rounds, recording each (a contended measured run is measured again, up to
        --research-remeasure times). Stops at a timeout or crash that is not re-measured (the rest would go the
        same way) and re-raises interrupts after recording them. `progress(i, n, warmup)` gives the live-progress
        sink of a round's run (run/progress.py), or None."""
        o = self.ctx.options
        rounds = o.rounds if rounds is None else rounds
        warmup_runs = o.warmup_runs if warmup_runs is None else warmup_runs
        isolate = o.isolate if isolate is None else isolate
        if isolate and req.corpus is not None and req.corpus_path is None:
            raise BenchError("an isolated run loads its corpus from a path: pass corpus=<path>, not a Corpus")
        prof = self.ctx.profile(req.profile)
        req.profile = prof
        budget = self.ctx.budget(prof)
        result = BenchResult(prof.name, budget, unverified_policy=o.unverified)
        base_extra = {"rounds": rounds, "warmup_runs": warmup_runs, "instance": uuid.uuid4().hex[:16],
                      **(extra or {})}
        if req.runner != S.DEFAULT_RUNNER:
            base_extra["runner"] = runner_label or req.runner
        last = warmup_runs + rounds - 1
        for i in range(warmup_runs + rounds):
            warm = i < warmup_runs
            sink = progress(i if warm else i - warmup_runs, warmup_runs if warm else rounds, warm) if progress else None
            req.on_progress = sink
            attempt = 1
            while True:
                with widened(timer, TURN_WAIT_S):
                    interleave.take_turn()
                    if attempt > 1:
                        quiet = wait_quiet(max_wait_s=REMEASURE_WAIT_S)
                outcome, load, started = self._attempt(req, budget, isolate, timer, i)
                if outcome.status == S.ERROR and outcome.telemetry is None:
                    if outcome.exception is not None:
                        raise outcome.exception
                    raise BenchError(f"the run could not start: {outcome.error}")
                contended = load is not None and load.contended
                again = (not warm and contended and attempt <= o.remeasure
                         and outcome.status in (S.COMPLETED, S.TIMED_OUT))
                # A timeout ends the instance (the next runs would time out too) unless it is re-measured, or it
                # was a warm-up on a busy machine (it warmed up all the same; the measured rounds will tell).
                stop = (outcome.status in (S.TIMED_OUT, S.CRASHED, S.INTERRUPTED) and not again
                        and not (warm and contended and outcome.status == S.TIMED_OUT))
                run_extra = dict(base_extra)
                if not warm:
                    run_extra["attempt"] = attempt
                if attempt > 1:
                    run_extra["waited_quiet_s"] = quiet["waited_s"]
                if load is not None:
                    run_extra["other_cpu_load"] = round(load.other_cores, 2)
                    if contended:
                        run_extra["contended"] = True
                        run_extra["contention_note"] = (
                            f"busy machine: other processes kept {load.other_cores:.1f} of {load.logical} cores "
                            f"busy during this run: its timings are inflated and not comparable"
                            + ("; measured again" if again else ""))
                if again:
                    run_extra["superseded"] = True
                ends = not warm and not again and (i == last or stop)
                rr = self.judge_and_store(outcome.telemetry, profile=prof, outcome=outcome, round=i, warmup=warm,
                                          extra=run_extra, gate=gate, started=started,
                                          instance_runs=[r.record for r in result.runs] if ends else None)
                result.runs.append(rr)
                if sink is not None:
                    sink({"event": "verdict", "status": outcome.status, "target_met": rr.record.target_met,
                          "execution_time_s": rr.record.metric("execution_time_s"), "messages": rr.verdict.messages})
                if not again and not warm and not ends:
                    # A measured round is over: the other side's turn. After its last one this side keeps the
                    # turn (its next bench, or its session's end, must not overlap the other side's runs); the
                    # coordinator passes it on when this session ends.
                    interleave.pass_turn()
                if outcome.status == S.INTERRUPTED and outcome.exception is not None:
                    raise outcome.exception
                if not again:
                    break
                attempt += 1
            if stop:
                break
        return result

    def _attempt(self, req: S.RunRequest, budget: BudgetSpec, isolate: bool, timer: SignalTimer | None,
                 i: int) -> tuple[S.RunOutcome, Any, float]:
        """One run, in this process or in a child: its outcome, the other processes' CPU load over it, and
        perf_counter() when the harness started on it."""
        o = self.ctx.options
        req.memray_file = self.memray_path(i) if o.memray and (isolate or not self.memray_external) else None
        started = time.perf_counter()
        cpu0 = snapshot()
        if isolate:
            extra_pids = None
            if req.backend == "ollama":
                from llm_research_bench.engine.memory import find_ollama_server_pids
                extra_pids = find_ollama_server_pids()
            enforce = budget.memory_mb if o.enforce_memory else None
            outcome = run_isolated(req, enforce_memory_mb=enforce, extra_pids=extra_pids)
        else:
            outcome = run_in_process(req, timer=timer)
        return outcome, load_between(cpu0, snapshot()), started


def round_(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)
