"""One run in a fresh child process, supervised: run_isolated(RunRequest) for a research run, call_isolated("module:fn",
kwargs) for a measurement driver. The parent samples the child's process tree (start-up's peak kept apart from the
run's), kills it at a hard deadline or over the memory limit (--research-enforce-memory), and says how a child that
left no result died (OOM kill, native crash, exit). The child is this module's `child_main`."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import psutil

from llm_research_bench.engine.atomic import write_json
from llm_research_bench.engine.deadline import RunTimeout, stopping_signals

from .inprocess import run_in_process
from .request import (COMPLETED, CRASHED, DEFAULT_RUNNER, FAILED, INTERRUPTED, TIMED_OUT, RunOutcome, RunRequest,
                      first_line, resolve_runner)
from .timeouts import STARTUP_TIMEOUT_S
from .warmup import warm_up

#: `python -m CHILD_MODULE REQUEST.json RESULT.json STATUS.json` runs the child.
CHILD_MODULE = "llm_research_bench.harness.run.isolated"
#: After timeout_s the child's own alarm fires; the parent sends SIGTERM this much later, then SIGKILL.
TERM_GRACE_S = 10.0
KILL_GRACE_S = 10.0
POLL_S = 0.05
#: The child writes answer-chunk counts to its progress file at most this often.
PROGRESS_EVERY_S = 0.5
MB = 2**20


class ChildFailed(RuntimeError):
    """A driver job in a child process ended without a result; the message says how it died."""


def _oom_kill_count() -> int | None:
    """The kernel's OOM-kill counter for this cgroup (v2 memory.events or v1 memory.oom_control)."""
    files = []
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrl, path = line.split(":", 2)
            if ctrl == "":
                files.append(Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events")
            elif "memory" in ctrl.split(","):
                files.append(Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control")
    for f in [*files, Path("/sys/fs/cgroup/memory.events"), Path("/sys/fs/cgroup/memory/memory.oom_control")]:
        with contextlib.suppress(OSError, ValueError):
            for line in f.read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
    return None


def _tail(path: Path, lines: int = 3, limit: int = 400) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())[-limit:]


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _kill_tree(proc: subprocess.Popen, sig: int) -> None:
    try:
        procs = [*psutil.Process(proc.pid).children(recursive=True), proc]
    except psutil.Error:
        procs = [proc]
    for p in procs:
        with contextlib.suppress(psutil.Error, OSError):
            p.send_signal(sig)


class Supervised:
    """One child under the parent's watch: its process tree's peaks, the deadlines and memory limit it is held to
    and, once it ended, what it left: `result`, or `cause` (how it died without one, or why the harness killed it)."""

    def __init__(self, proc: subprocess.Popen, tree: Any, files: dict[str, Path], *, timeout_s: float,
                 startup_timeout_s: float, enforce_memory_mb: float | None,
                 on_progress: Callable[[dict], None] | None):
        self.proc, self.tree, self.files, self.on_progress = proc, tree, files, on_progress
        self.timeout_s, self.startup_timeout_s, self.limit_mb = timeout_s, startup_timeout_s, enforce_memory_mb
        self._progress_at = 0       # how far the child's progress file was read
        self.t_spawn = time.perf_counter()
        self.started_at: float | None = None
        self.peak = 0               # from the run's start: what the memory limit is held to
        self.startup_peak = 0       # imports and warm-up: reported, never held to the limit
        self.killed_by: str | None = None
        self.termed = False
        self.result: dict | None = None
        self.cause: str | None = None
        self.warmup_s: float | None = None
        self.memory_check: dict | None = None       # how the memory limit counted, when there is one
        self.exception: BaseException | None = None  # a timeout in the parent, Ctrl-C: re-raised by the caller

    @property
    def peak_mb(self) -> float | None:
        """The run's peak; start-up's when the child died (or was stopped) before its run started."""
        peak = self.peak if self.started_at is not None else max(self.peak, self.startup_peak)
        return peak / MB if peak else None

    def sample(self) -> None:
        now, rss = time.perf_counter(), self.tree.rss_bytes()
        if self.started_at is None and self.files["status"].exists():
            self.started_at = now
        if self.started_at is None:
            self.startup_peak = max(self.startup_peak, rss)
        else:
            self.peak = max(self.peak, rss)
        if self.killed_by is None:
            self._enforce(now, rss)

    def _kill(self, why: str) -> None:
        self.killed_by = f"killed by the harness: {why}"
        _kill_tree(self.proc, signal.SIGKILL)

    def _enforce(self, now: float, rss: int) -> None:
        started, limit = self.started_at, self.limit_mb
        if started is None:
            if now - self.t_spawn > self.startup_timeout_s:
                self._kill(f"the child did not start the run within {self.startup_timeout_s:g} s")
        elif limit and rss / MB > limit:
            self._kill(f"process-tree RSS {rss / MB:.0f} MB during the run exceeded the {limit:g} MB limit "
                       f"(--research-enforce-memory counts the run's process-tree RSS from the run's start, as "
                       f"memory_peak_mb; start-up and warm-up peaked at {self.startup_peak / MB:.0f} MB, not "
                       f"counted)")
        elif self.timeout_s and now - started - self.timeout_s > TERM_GRACE_S:
            if not self.termed:
                self.termed = True
                _kill_tree(self.proc, signal.SIGTERM)
            elif now - started - self.timeout_s > TERM_GRACE_S + KILL_GRACE_S:
                self._kill(f"no result {TERM_GRACE_S + KILL_GRACE_S:g} s after the {self.timeout_s:g} s timeout "
                           f"(stuck in native code?)")

    def follow(self) -> None:
        """The progress dicts the child wrote since the last call, to `on_progress`."""
        if self.on_progress is None:
            return
        try:
            with open(self.files["progress"], "rb") as fh:
                fh.seek(self._progress_at)
                chunk = fh.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1
        self._progress_at += end
        for line in chunk[:end].splitlines():
            with contextlib.suppress(Exception):    # a torn line or a display problem never stops the run
                self.on_progress(json.loads(line))

    def wait(self) -> None:
        """Sample the child until it ends; a timeout in the parent or Ctrl-C stops it and is kept in `exception`."""
        try:
            with stopping_signals():
                while self.proc.poll() is None:
                    self.sample()
                    self.follow()
                    time.sleep(POLL_S)
            self.follow()                      # what the child wrote after the last poll
        except BaseException as e:   # stop the child, keep what it wrote
            self.exception = e
            _kill_tree(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill_tree(self.proc, signal.SIGKILL)
        self.returncode = self.proc.wait()
        self.wall_total_s = time.perf_counter() - self.t_spawn

    def read(self, oom_before: int | None) -> None:
        """What the ended child left: its result and status files, and how it died when it left no result."""
        self.result = _read_json(self.files["result"])
        self.warmup_s = (_read_json(self.files["status"]) or {}).get("warmup_s")
        if self.limit_mb:
            self.memory_check = {
                "limit_mb": self.limit_mb, "counted": "process-tree RSS from the run's start (as memory_peak_mb); "
                "start-up and warm-up not counted", "run_started": self.started_at is not None,
                "startup_peak_mb": round(self.startup_peak / MB, 1) if self.startup_peak else None}
        if self.result is None or self.killed_by is not None:
            self.cause = self.killed_by or self._exit_cause(oom_before, _oom_kill_count())

    def _exit_cause(self, oom_before: int | None, oom_after: int | None) -> str:
        """Why the child ended without a result (the harness did not kill it), in words."""
        rc, peak = self.returncode, f"; peak process-tree RSS seen: {self.peak_mb:.0f} MB" if self.peak_mb else ""
        tail = f"; last output: {t}" if (t := _tail(self.files["log"])) else ""
        if rc >= 0:
            return f"child exited with status {rc} before reporting a result{peak}{tail}"
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        if name == "SIGKILL":
            if oom_before is not None and oom_after is not None and oom_after > oom_before:
                return f"killed by the kernel's OOM killer (cgroup oom_kill count {oom_before} -> {oom_after}){peak}"
            return f"killed by SIGKILL, not sent by the harness: most likely an out-of-memory kill{peak}"
        if name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"):
            return f"crashed with {name} (a fault in native code, e.g. the model runtime){peak}{tail}"
        return f"ended by {name}{peak}{tail}"


def supervise(doc: dict, *, timeout_s: float, workdir: str | os.PathLike | None = None,
              enforce_memory_mb: float | None = None, startup_timeout_s: float = STARTUP_TIMEOUT_S,
              extra_pids: list[int] | None = None, env: dict[str, str] | None = None,
              on_progress: Callable[[dict], None] | None = None) -> Supervised:
    """Start the child on `doc`, sample its process tree until it ends, enforce the deadlines, and read what it
    wrote (live progress to `on_progress`); the exchange folder is removed, all but a crashed child's log."""
    from llm_research_bench.engine.memory import ProcessTree

    tmp = Path(tempfile.mkdtemp(prefix="research-bench-", dir=workdir))
    files = {k: tmp / f"{k}.json" for k in ("request", "result", "status")}
    files |= {"log": tmp / "output.log", "progress": tmp / "progress.jsonl"}
    if on_progress is not None:
        doc = {**doc, "progress_file": str(files["progress"])}
    files["request"].write_text(json.dumps(doc, default=str))
    oom_before = _oom_kill_count()
    child_env = {**os.environ, **(env or {})}        # the child imports what this process imports
    child_env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p]
                                              + [child_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with open(files["log"], "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", CHILD_MODULE, *(str(files[k]) for k in ("request", "result",
                                 "status"))], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=child_env)
    sup = Supervised(proc, ProcessTree(root_pid=proc.pid, extra_pids=extra_pids), files, timeout_s=timeout_s,
                     startup_timeout_s=startup_timeout_s, enforce_memory_mb=enforce_memory_mb, on_progress=on_progress)
    sup.wait()
    sup.read(oom_before)
    with contextlib.suppress(OSError):
        for f in tmp.iterdir():
            if not (sup.cause is not None and f == files["log"]):
                f.unlink()
        tmp.rmdir()
    return sup


def run_isolated(req: RunRequest, *, workdir: str | os.PathLike | None = None, enforce_memory_mb: float | None = None,
                 extra_pids: list[int] | None = None) -> RunOutcome:
    """Run `req` in a fresh child, which warms up (corpus, embedder, index) when the engine runs with retrieval."""
    warm = req.runner == DEFAULT_RUNNER and req.research_kwargs.get("retrieval", True)
    sup = supervise({"kind": "research", "request": req.to_json(), "warm": warm}, timeout_s=req.effective_timeout,
                    workdir=workdir, enforce_memory_mb=enforce_memory_mb, extra_pids=extra_pids,
                    on_progress=req.on_progress)
    out = RunOutcome(CRASHED, (sup.result or {}).get("telemetry"), isolated=True, observed_peak_mb=sup.peak_mb,
                     child_warmup_s=sup.warmup_s, memray_file=req.memray_file, exception=sup.exception,
                     memory_check=sup.memory_check)
    if sup.cause is None:
        out.status, out.error = sup.result.get("status", FAILED), sup.result.get("error")
        out.wall_s = float(sup.result.get("wall_s") or 0.0)
        out.timeout_via = "child" if out.status == TIMED_OUT else None
    else:           # its telemetry kept when it was killed after writing it (e.g. over memory at the very end)
        out.cause = out.error = sup.cause
        out.child_log = str(sup.files["log"])          # kept for inspection
        out.wall_s = (time.perf_counter() - sup.started_at) if sup.started_at else sup.wall_total_s
    if sup.exception is not None:
        out.status = TIMED_OUT if isinstance(sup.exception, RunTimeout) else INTERRUPTED
        out.error = first_line(sup.exception)
    elif sup.termed and out.status == INTERRUPTED:     # our SIGTERM at the deadline: the child's alarm did not fire
        out.status = TIMED_OUT
        out.error = f"no result within {req.effective_timeout:g} s (+{TERM_GRACE_S:g} s grace): stopped with SIGTERM"
    return out


def call_isolated(target: str, kwargs: dict | None = None, *, timeout_s: float = 900.0,
                  env: dict[str, str] | None = None) -> dict:
    """Call `target` ("module:function", returning a JSON-able dict) with `kwargs` in a fresh child and return its
    result. ChildFailed says how it died or what it raised; a timeout or Ctrl-C in the parent propagates."""
    sup = supervise({"kind": "call", "target": target, "kwargs": kwargs or {}}, timeout_s=timeout_s, env=env,
                    startup_timeout_s=timeout_s)
    if sup.exception is not None:
        raise sup.exception
    if sup.cause is not None:
        raise ChildFailed(f"{target}: {sup.cause}")
    if sup.result.get("status") != COMPLETED:
        raise ChildFailed(f"{target} failed in the child: {sup.result.get('error')}")
    return sup.result["value"]


# -- the child ------------------------------------------------------------------------------------------------------
class FileSink:
    """The child's live progress: dicts appended to the JSON-lines file the parent follows."""

    def __init__(self, path: str):
        self.path, self._last = path, 0.0

    def __call__(self, ev: dict) -> None:
        now = time.monotonic()
        if ev.get("event") == "tokens" and now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(ev, default=str) + "\n")


def _started(status_path: str, warmup_s: float) -> None:
    write_json(status_path, {"event": "started", "warmup_s": round(warmup_s, 3), "pid": os.getpid()}, indent=None)


def _research(doc: dict, status_path: str) -> dict:
    t0 = time.perf_counter()
    sink = FileSink(doc["progress_file"]) if doc.get("progress_file") else None
    req = RunRequest.from_json(doc["request"], on_progress=sink)
    if doc.get("warm"):
        warm = warm_up(req.corpus_path, backend=req.backend, on_progress=sink)
        req.corpus, req.system_info = warm.corpus, warm.system_info
    _started(status_path, time.perf_counter() - t0)
    out = run_in_process(req)
    return {"status": out.status, "telemetry": out.telemetry, "error": out.error, "wall_s": out.wall_s}


def _call(doc: dict, status_path: str) -> dict:
    fn = resolve_runner(doc["target"])
    _started(status_path, 0.0)
    t0 = time.perf_counter()
    try:
        return {"status": COMPLETED, "value": fn(**doc["kwargs"]), "wall_s": time.perf_counter() - t0}
    except Exception as e:
        return {"status": FAILED, "error": first_line(e), "wall_s": time.perf_counter() - t0}


def child_main(argv: list[str]) -> int:
    """The child on REQUEST RESULT STATUS. kind "research": warms up, writes STATUS as the run starts, runs it and
    writes RESULT (SIGTERM stops the run through the engine, so partial telemetry is still written); kind "call":
    RESULT holds a measurement driver's returned dict."""
    req_path, res_path, status_path = argv
    with open(req_path, encoding="utf-8") as fh:
        doc = json.load(fh)
    with stopping_signals():       # SIGTERM from the parent raises Terminated, never swallowed (engine.deadline)
        result = (_call if doc.get("kind") == "call" else _research)(doc, status_path)
        write_json(res_path, result, indent=None, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
