"""One run in a fresh child process (`python -m llm_research_bench.harness.run.child`), supervised.

The child warms up outside the timed run (corpus, embedder, index), enforces the run's timeout itself and
writes its result as JSON (run/child.py). The parent samples the child's process tree, kills it at a hard
deadline (or over the memory limit with `enforce_memory_mb`), and classifies a child that died without a
result: OOM kill (confirmed by the cgroup's oom_kill counter when readable), a native crash (SIGSEGV,
SIGABRT...), or an exit status with its last output.

Memory is counted for the run, not the child's start-up: the parent's peak and the memory limit
(`enforce_memory_mb`, --research-enforce-memory) apply to the process tree's RSS from the moment the child reports
that the run started (STATUS.json, written after its imports and warm-up), which is the figure the engine
reports as memory_peak_mb. The start-up peak is kept apart (`startup_peak_mb`); a child that dies before its run
starts is judged on it.

Two kinds of child job share this machinery:
    run_isolated(RunRequest)            a research run (pipeline benches with --research-isolate)
    call_isolated("module:fn", kwargs)  a measurement driver returning a JSON-able dict (breakdown benches)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .request import (CRASHED, FAILED, INTERRUPTED, TIMED_OUT, DEFAULT_RUNNER, RunOutcome, RunRequest, first_line,
                      profile_to_dict)
from .progress import FileFollower
from .timeouts import STARTUP_TIMEOUT_S, is_timeout, run_deadline, stopping_signals

CHILD_MODULE = "llm_research_bench.harness.run.child"
#: After timeout_s the child's own alarm fires; the parent sends SIGTERM this much later, then SIGKILL.
TERM_GRACE_S = 10.0
KILL_GRACE_S = 10.0
POLL_S = 0.05


class ChildFailed(RuntimeError):
    """A driver job in a child process ended without a result; the message says how it died."""


def child_request(req: RunRequest, *, warm: bool) -> dict:
    return {
        "kind": "research",
        "runner": req.runner, "question": req.question, "profile": profile_to_dict(req.profile),
        "backend": req.backend_name, "corpus": req.corpus_path, "early_exit": req.early_exit,
        "retrieval": req.retrieval, "store_text": req.store_text, "research_kwargs": req.research_kwargs,
        "timeout_s": req.effective_timeout, "memray_file": req.memray_file, "warm": warm,
        "sys_path": [p for p in sys.path if p],
    }


def _oom_kill_count() -> int | None:
    """The kernel's OOM-kill counter for this cgroup (v2 memory.events or v1 memory.oom_control)."""
    candidates = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrl, path = line.split(":", 2)
            if ctrl == "":
                candidates.append(Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events")
            elif "memory" in ctrl.split(","):
                candidates.append(Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control")
    except (OSError, ValueError):
        return None
    candidates += [Path("/sys/fs/cgroup/memory.events"), Path("/sys/fs/cgroup/memory/memory.oom_control")]
    for c in candidates:
        try:
            for line in c.read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
        except (OSError, ValueError):
            continue
    return None


def describe_exit(returncode: int, *, killed_by_harness: str | None = None, oom_before: int | None = None,
                  oom_after: int | None = None, peak_mb: float | None = None, stderr_tail: str = "") -> str:
    """Why a child ended without a result, in words."""
    if killed_by_harness:
        return killed_by_harness
    peak = f"; peak process-tree RSS seen: {peak_mb:.0f} MB" if peak_mb else ""
    tail = f"; last output: {stderr_tail}" if stderr_tail else ""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGKILL":
            if oom_before is not None and oom_after is not None and oom_after > oom_before:
                return f"killed by the kernel's OOM killer (cgroup oom_kill count {oom_before} -> {oom_after}){peak}"
            return f"killed by SIGKILL, not sent by the harness: most likely an out-of-memory kill{peak}"
        if name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"):
            return f"crashed with {name} (a fault in native code, e.g. the model runtime){peak}{tail}"
        return f"ended by {name}{peak}{tail}"
    return f"child exited with status {returncode} before reporting a result{peak}{tail}"


def _tail(path: Path, lines: int = 3, limit: int = 400) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())[-limit:]


def _kill_tree(proc: subprocess.Popen, sig: int) -> None:
    import psutil
    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        kids = []
    for p in [*kids]:
        try:
            p.send_signal(sig)
        except psutil.Error:
            pass
    try:
        proc.send_signal(sig)
    except OSError:
        pass



@dataclass
class Supervised:
    """What the parent saw of one child."""
    returncode: int
    result: dict | None
    status_info: dict
    peak_mb: float | None
    killed_by: str | None
    termed: bool
    started_at: float | None
    wall_total_s: float
    cause: str | None = None
    log: str | None = None
    exception: BaseException | None = None
    workdir: Path | None = None
    extra: dict = field(default_factory=dict)


def supervise(doc: dict, *, timeout_s: float, workdir: str | os.PathLike | None = None,
              enforce_memory_mb: float | None = None, startup_timeout_s: float = STARTUP_TIMEOUT_S,
              term_grace_s: float = TERM_GRACE_S, kill_grace_s: float = KILL_GRACE_S,
              extra_pids: list[int] | None = None, env: dict[str, str] | None = None,
              on_progress: Callable[[dict], None] | None = None) -> Supervised:
    """Start the child on `doc`, sample its process tree until it ends, enforce the deadlines, and read what it
    wrote (its live progress goes to `on_progress` as it comes). The exchange folder is removed afterwards,
    except a crashed child's output log."""
    from llm_research_bench.engine.memory import ProcessTree

    tmp = Path(tempfile.mkdtemp(prefix="research-bench-", dir=workdir))
    req_f, res_f, st_f, err_f = tmp / "request.json", tmp / "result.json", tmp / "status.json", tmp / "output.log"
    follower = None
    if on_progress is not None:
        doc = {**doc, "progress_file": str(tmp / "progress.jsonl")}
        follower = FileFollower(tmp / "progress.jsonl", on_progress)
    req_f.write_text(json.dumps(doc, default=str))
    oom_before = _oom_kill_count()
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p]
                                              + [child_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with open(err_f, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", CHILD_MODULE, str(req_f), str(res_f), str(st_f)],
                                stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT, env=child_env)
    tree = ProcessTree(root_pid=proc.pid, extra_pids=extra_pids)
    t_spawn = time.perf_counter()
    started_at: float | None = None
    peak = 0                    # the run's peak (from the run's start): what the memory limit is held to
    startup_peak = 0            # imports and warm-up, before the run started: reported, never held to the limit
    killed_by: str | None = None
    termed = False
    exc: BaseException | None = None
    # The parent's own deadline covers start-up and the run; the child enforces timeout_s itself.
    try:
        with stopping_signals(), run_deadline(startup_timeout_s + timeout_s + term_grace_s + kill_grace_s + 30,
                                                   own=False):
            while proc.poll() is None:
                now = time.perf_counter()
                try:
                    rss = tree.rss_bytes()
                except Exception:
                    rss = 0
                if started_at is None and st_f.exists():
                    started_at = now
                if started_at is None:
                    startup_peak = max(startup_peak, rss)
                else:
                    peak = max(peak, rss)
                if (enforce_memory_mb and started_at is not None and rss / 2**20 > enforce_memory_mb
                        and killed_by is None):
                    killed_by = (f"killed by the harness: process-tree RSS {rss / 2**20:.0f} MB during the run "
                                 f"exceeded the {enforce_memory_mb:g} MB limit (--research-enforce-memory counts "
                                 f"the run's process-tree RSS from the run's start, as memory_peak_mb; start-up "
                                 f"and warm-up peaked at {startup_peak / 2**20:.0f} MB, not counted)")
                    _kill_tree(proc, signal.SIGKILL)
                elif started_at is None and now - t_spawn > startup_timeout_s and killed_by is None:
                    killed_by = f"killed by the harness: the child did not start the run within {startup_timeout_s:g} s"
                    _kill_tree(proc, signal.SIGKILL)
                elif started_at is not None and timeout_s:
                    over = now - started_at - timeout_s
                    if over > term_grace_s and not termed:
                        termed = True
                        _kill_tree(proc, signal.SIGTERM)
                    elif over > term_grace_s + kill_grace_s and killed_by is None:
                        killed_by = (f"killed by the harness: no result {term_grace_s + kill_grace_s:g} s after the "
                                     f"{timeout_s:g} s timeout (stuck in native code?)")
                        _kill_tree(proc, signal.SIGKILL)
                if follower is not None:
                    follower.poll()
                time.sleep(POLL_S)
        if follower is not None:
            follower.poll()                # what the child wrote after the last poll
    except BaseException as e:   # a timeout in the parent, Ctrl-C: stop the child, keep what it wrote
        exc = e
        _kill_tree(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=term_grace_s)
        except subprocess.TimeoutExpired:
            _kill_tree(proc, signal.SIGKILL)
            proc.wait()
    rc = proc.wait()
    if started_at is None:      # it died (or was stopped) before its run started: start-up is all there is
        peak = max(peak, startup_peak)
    peak_mb = peak / 2**20 if peak else None
    result = None
    if res_f.exists():
        try:
            result = json.loads(res_f.read_text())
        except (OSError, ValueError):
            result = None
    status_info: dict = {}
    try:
        status_info = json.loads(st_f.read_text()) if st_f.exists() else {}
    except (OSError, ValueError):
        pass
    sup = Supervised(rc, result, status_info, peak_mb, killed_by, termed, started_at,
                     time.perf_counter() - t_spawn, exception=exc, workdir=tmp)
    sup.extra["startup_peak_mb"] = round(startup_peak / 2**20, 1) if startup_peak else None
    if enforce_memory_mb:
        sup.extra["memory_check"] = {"limit_mb": enforce_memory_mb, "counted": "process-tree RSS from the run's start "
                                     "(as memory_peak_mb); start-up and warm-up not counted",
                                     "run_started": started_at is not None,
                                     "startup_peak_mb": sup.extra["startup_peak_mb"]}
    if result is None or killed_by is not None:
        sup.cause = describe_exit(rc, killed_by_harness=killed_by, oom_before=oom_before,
                                  oom_after=_oom_kill_count(), peak_mb=peak_mb, stderr_tail=_tail(err_f))
        sup.log = str(err_f)
    _cleanup(tmp, keep=sup.cause is not None)
    return sup


def run_isolated(req: RunRequest, *, workdir: str | os.PathLike | None = None, warm: bool | None = None,
                 enforce_memory_mb: float | None = None, startup_timeout_s: float = STARTUP_TIMEOUT_S,
                 term_grace_s: float = TERM_GRACE_S, kill_grace_s: float = KILL_GRACE_S,
                 extra_pids: list[int] | None = None) -> RunOutcome:
    """Run `req` in a fresh child and wait for it, sampling its process tree."""
    warm = (req.runner == DEFAULT_RUNNER and req.retrieval) if warm is None else warm
    timeout = req.effective_timeout
    sup = supervise(child_request(req, warm=warm), timeout_s=timeout, workdir=workdir,
                    enforce_memory_mb=enforce_memory_mb, startup_timeout_s=startup_timeout_s,
                    term_grace_s=term_grace_s, kill_grace_s=kill_grace_s, extra_pids=extra_pids,
                    on_progress=req.on_progress)
    out = RunOutcome(CRASHED, None, isolated=True, observed_peak_mb=sup.peak_mb,
                     child_warmup_s=sup.status_info.get("warmup_s"), memray_file=req.memray_file,
                     exception=sup.exception, memory_check=sup.extra.get("memory_check"))
    if sup.result is not None and sup.killed_by is None:
        out.status = sup.result.get("status", FAILED)
        out.telemetry = sup.result.get("telemetry")
        out.error = sup.result.get("error")
        out.wall_s = float(sup.result.get("wall_s") or 0.0)
        out.timeout_via = "child" if out.status == TIMED_OUT else None
    else:
        out.cause = out.error = sup.cause
        out.child_log = sup.log
        out.wall_s = (time.perf_counter() - sup.started_at) if sup.started_at else sup.wall_total_s
        if sup.result is not None:         # killed after it wrote something (e.g. over memory at the very end)
            out.telemetry = sup.result.get("telemetry")
    if sup.exception is not None:
        out.status = TIMED_OUT if is_timeout(sup.exception) else INTERRUPTED
        out.error = first_line(sup.exception)
    elif sup.termed and out.status == INTERRUPTED:     # our SIGTERM at the deadline: the child's alarm did not fire
        out.status = TIMED_OUT
        out.error = f"no result within {timeout:g} s (+{term_grace_s:g} s grace): stopped with SIGTERM"
    return out


def call_isolated(target: str, kwargs: dict | None = None, *, timeout_s: float = 900.0,
                  env: dict[str, str] | None = None, workdir: str | os.PathLike | None = None) -> dict:
    """Call `target` ("module:function", returning a JSON-able dict) with `kwargs` in a fresh child process and
    return its result; the child's lifetime peak RSS is its own. Raises ChildFailed (how it died) or
    re-raises the child's exception as a ChildFailed with its message; a timeout or Ctrl-C in the parent
    stops the child and propagates."""
    doc = {"kind": "call", "target": target, "kwargs": kwargs or {}, "timeout_s": timeout_s,
           "sys_path": [p for p in sys.path if p]}
    sup = supervise(doc, timeout_s=timeout_s, workdir=workdir, env=env, startup_timeout_s=timeout_s)
    if sup.exception is not None:
        raise sup.exception
    if sup.result is None or sup.killed_by is not None:
        raise ChildFailed(f"{target}: {sup.cause}")
    if sup.result.get("status") != "completed":
        raise ChildFailed(f"{target} failed in the child: {sup.result.get('error')}")
    return sup.result["value"]


def _cleanup(tmp: Path, *, keep: bool) -> None:
    """Remove the exchange folder; a crashed child's output log is kept next to it for inspection."""
    for f in tmp.iterdir():
        if keep and f.name == "output.log":
            continue
        try:
            f.unlink()
        except OSError:
            pass
    if not keep:
        try:
            tmp.rmdir()
        except OSError:
            pass
