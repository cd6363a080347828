"""One bench run's life: run the engine in this process or in an isolated child process, enforce the
profile's timeout, optionally capture allocations with memray, and collect what telemetry the run produced.

Nothing here judges a run (budgets.py does) or stores it (store.py does).

Timeouts. In-process, each run gets the profile's timeout_s: when pytest-timeout's signal timer is active
(the plugin puts `timeout(profile.timeout_s, method="signal", func_only=True)` on pipeline benches) it is
re-armed for each run, so pytest-timeout itself fails the run with "Timeout >45.0s"; otherwise the harness
arms SIGALRM itself. Either way the exception goes through engine.research, which attaches the partial
telemetry (`exc.research_telemetry`, `timed_out: true`), and the harness records it before re-raising.

Isolation. `run_isolated` runs `python -m harness.child` (subprocess, fresh interpreter): the child warms up
(corpus, embedder, index) outside the timed run, enforces timeout_s itself and writes its result as JSON. The
parent samples the child's process tree, kills it at a hard deadline (or over the memory limit with
`enforce_memory_mb`), and classifies a child that died without a result: OOM kill (confirmed by the cgroup's
oom_kill counter when readable), a native crash (SIGSEGV/SIGABRT...), or an exit status with its stderr.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

DEFAULT_RUNNER = "llm_research_bench.engine:research"
#: Seconds a child may take to warm up (an index is built here the first time: ~65 s on 2 cores).
STARTUP_TIMEOUT_S = 900.0
#: After timeout_s the child's own alarm fires; the parent sends SIGTERM this much later, then SIGKILL.
TERM_GRACE_S = 10.0
KILL_GRACE_S = 10.0
POLL_S = 0.05

# Run statuses (what happened to the run, before any budget judgement).
COMPLETED, FAILED, TIMED_OUT, INTERRUPTED, CRASHED, ERROR = (
    "completed", "failed", "timed_out", "interrupted", "crashed", "error")


class Timeout(BaseException):
    """A run exceeded its profile's timeout_s. A BaseException (like pytest-timeout's Failed) so that nothing in
    the engine swallows it; named Timeout so the engine marks its telemetry `timed_out: true`."""


class Terminated(BaseException):
    """The isolated child was asked to stop (SIGTERM from the harness)."""


@dataclass
class RunRequest:
    """What to run. `profile` is an engine.profiles.Profile; `corpus` a Corpus (in-process) or None,
    `corpus_path` the path an isolated child loads (None: the engine's default corpus)."""
    question: str
    profile: Any
    backend: str = "llamacpp"
    corpus: Any = None
    corpus_path: str | None = None
    early_exit: bool = True
    retrieval: bool = True
    store_text: bool = False
    system_info: dict | None = None
    research_kwargs: dict = field(default_factory=dict)
    runner: str = DEFAULT_RUNNER        # "module:function" with engine.research's signature
    timeout_s: float | None = None      # None: the profile's timeout_s; 0: no timeout
    memray_file: str | None = None

    @property
    def effective_timeout(self) -> float:
        return float(self.profile.timeout_s if self.timeout_s is None else self.timeout_s)


@dataclass
class RunOutcome:
    """What happened to one run. `exception` is set when the harness must re-raise after recording
    (a timeout, Ctrl-C, a user error found before the run started)."""
    status: str
    telemetry: dict | None
    error: str | None = None
    cause: str | None = None             # why a child died (signal, OOM, exit status)
    wall_s: float = 0.0                  # the research call as the harness timed it
    isolated: bool = False
    observed_peak_mb: float | None = None
    child_warmup_s: float | None = None
    memray_file: str | None = None
    timeout_via: str | None = None       # pytest-timeout | harness | child | None
    child_log: str | None = None         # a crashed child's output, kept for inspection
    session: Any = None                  # engine ResearchSession (in-process, completed runs)
    exception: BaseException | None = None

    @property
    def timed_out(self) -> bool:
        return self.status == TIMED_OUT


def resolve_runner(spec: str) -> Callable[..., Any]:
    mod, _, attr = spec.partition(":")
    if not mod or not attr:
        raise ValueError(f"runner '{spec}': expected 'module:function'")
    return getattr(importlib.import_module(mod), attr)


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, Timeout) or (type(exc).__name__ == "Failed" and "Timeout" in str(exc))


def _first_line(exc: BaseException) -> str:
    s = str(exc).strip()
    return f"{type(exc).__name__}: {s.splitlines()[0]}" if s else type(exc).__name__


# ---------------------------------------------------------------------------------------------- deadlines --
def _pytest_timeout_armed() -> bool:
    h = signal.getsignal(signal.SIGALRM) if hasattr(signal, "SIGALRM") else None
    return callable(h) and getattr(h, "__module__", "") == "pytest_timeout"


@contextmanager
def run_deadline(seconds: float, *, own: bool = True) -> Iterator[str | None]:
    """Give the code inside `seconds`. Re-arms pytest-timeout's signal timer when it is active; otherwise, if
    `own`, arms a SIGALRM handler raising Timeout (main thread, Unix). Yields who enforces it (or None)."""
    if not seconds or seconds <= 0 or not hasattr(signal, "setitimer") \
            or threading.current_thread() is not threading.main_thread():
        yield None
        return
    if _pytest_timeout_armed():
        signal.setitimer(signal.ITIMER_REAL, seconds)
        ok = False
        try:
            yield "pytest-timeout"
            ok = True
        finally:
            # A fresh window for the harness's own bookkeeping (milliseconds); disarmed after a failure so a
            # timeout cannot fire again while the partial run is being recorded.
            signal.setitimer(signal.ITIMER_REAL, seconds if ok else 0)
        return
    prev = signal.getsignal(signal.SIGALRM)
    if not own or prev not in (signal.SIG_DFL, None) or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield None            # someone else owns SIGALRM: do not clobber it
        return

    def _raise(signum, frame):
        raise Timeout(f"Timeout >{seconds:g}s (profile timeout_s)")

    signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield "harness"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, prev if prev is not None else signal.SIG_DFL)


@contextmanager
def suspended_deadline(seconds: float) -> Iterator[None]:
    """Widen an active pytest-timeout window (e.g. around a lazy warm-up that is not part of any run)."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread() \
            and _pytest_timeout_armed():
        signal.setitimer(signal.ITIMER_REAL, seconds)
    yield


# ------------------------------------------------------------------------------------------------- memray --
def _tracker(path: str | None):
    if not path:
        return nullcontext()
    import memray
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    return memray.Tracker(path)


def memray_top_allocators(path: str | os.PathLike, n: int = 5) -> list[str]:
    """The largest allocation sites live at the capture's high-water mark, one line each."""
    import memray
    try:
        reader = memray.FileReader(str(path))
    except Exception as e:   # a capture cut short by a crash cannot always be read
        return [f"(memray capture {path} unreadable: {type(e).__name__}: {e})"]
    try:
        recs = sorted(reader.get_high_watermark_allocation_records(merge_threads=True),
                      key=lambda r: r.size, reverse=True)[:n]
        out = []
        for r in recs:
            try:
                stack = r.stack_trace(max_stacks=2)
            except Exception:
                stack = []
            where = " <- ".join(f"{fn} ({_short(file)}:{line})" for fn, file, line in stack) or "(no Python frame)"
            out.append(f"{r.size / 2**20:8.1f} MB in {r.n_allocations} allocation(s): {where}")
        return out
    finally:
        reader.close()


def _short(path: str) -> str:
    for marker in (str(Path.cwd()) + "/", "site-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# -------------------------------------------------------------------------------------------- in-process --
def run_in_process(req: RunRequest, *, deadline_owner: bool = True) -> RunOutcome:
    """Run `req` here. Never raises for run failures: the outcome says what happened, and `exception` holds
    what the caller must re-raise after recording (timeouts, interrupts, user errors)."""
    from llm_research_bench.engine.pipeline import ResearchFailed

    fn = resolve_runner(req.runner)
    kwargs = dict(profile=req.profile, backend=req.backend, corpus=req.corpus if req.corpus is not None
                  else req.corpus_path, early_exit=req.early_exit, retrieval=req.retrieval,
                  store_text=req.store_text, **req.research_kwargs)
    if req.system_info is not None:
        kwargs["system_info"] = req.system_info
    via: str | None = None
    t0 = time.perf_counter()
    try:
        with run_deadline(req.effective_timeout, own=deadline_owner) as via, _tracker(req.memray_file):
            sess = fn(req.question, **kwargs)
        wall = time.perf_counter() - t0
        return RunOutcome(COMPLETED, sess.telemetry, wall_s=wall, session=sess, memray_file=req.memray_file,
                          timeout_via=via)
    except ResearchFailed as e:
        wall = time.perf_counter() - t0
        tel = e.telemetry
        status = TIMED_OUT if (tel or {}).get("timed_out") else FAILED
        return RunOutcome(status, tel, error=_first_line(e.__cause__ or e), wall_s=wall,
                          memray_file=req.memray_file, timeout_via=via)
    except BaseException as e:   # noqa: B036 -- recorded, then re-raised by the caller
        wall = time.perf_counter() - t0
        tel = getattr(e, "research_telemetry", None)
        if is_timeout(e):
            status = TIMED_OUT
            if tel is not None and not tel.get("timed_out"):
                tel["timed_out"] = True
        elif isinstance(e, Exception):
            status = ERROR if tel is None else FAILED
        else:
            status = INTERRUPTED
        return RunOutcome(status, tel, error=_first_line(e), wall_s=wall, memray_file=req.memray_file,
                          timeout_via=via or ("harness" if isinstance(e, Timeout) else None), exception=e)


# ---------------------------------------------------------------------------------------------- isolated --
def profile_to_dict(profile: Any) -> dict:
    return dataclasses.asdict(profile)


def profile_from_dict(d: dict) -> Any:
    from llm_research_bench.engine.profiles import Budget, Profile
    d = dict(d)
    d["budgets"] = {k: Budget(**v) for k, v in (d.get("budgets") or {}).items()}
    return Profile(**d)


def child_request(req: RunRequest, *, warm: bool) -> dict:
    return {
        "runner": req.runner, "question": req.question, "profile": profile_to_dict(req.profile),
        "backend": req.backend, "corpus": req.corpus_path, "early_exit": req.early_exit,
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


def run_isolated(req: RunRequest, *, workdir: str | os.PathLike | None = None, warm: bool | None = None,
                 enforce_memory_mb: float | None = None, startup_timeout_s: float = STARTUP_TIMEOUT_S,
                 term_grace_s: float = TERM_GRACE_S, kill_grace_s: float = KILL_GRACE_S,
                 extra_pids: list[int] | None = None) -> RunOutcome:
    """Run `req` in a fresh `python -m harness.child` and wait for it, sampling its process tree."""
    from llm_research_bench.engine.memory import ProcessTree

    warm = (req.runner == DEFAULT_RUNNER and req.retrieval) if warm is None else warm
    tmp = Path(tempfile.mkdtemp(prefix="research-bench-", dir=workdir))
    req_f, res_f, st_f, err_f = tmp / "request.json", tmp / "result.json", tmp / "status.json", tmp / "output.log"
    req_f.write_text(json.dumps(child_request(req, warm=warm), default=str))
    timeout = req.effective_timeout
    oom_before = _oom_kill_count()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with open(err_f, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "llm_research_bench.harness.child", str(req_f), str(res_f), str(st_f)],
                                stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT, env=env)
    tree = ProcessTree(root_pid=proc.pid, extra_pids=extra_pids)
    t_spawn = time.perf_counter()
    started_at: float | None = None
    peak = 0
    killed_by: str | None = None
    termed = False
    exc: BaseException | None = None
    # The parent's pytest-timeout window covers start-up and the run; the child enforces timeout_s itself.
    try:
        with run_deadline(startup_timeout_s + timeout + term_grace_s + kill_grace_s + 30, own=False):
            while proc.poll() is None:
                now = time.perf_counter()
                try:
                    rss = tree.rss_bytes()
                except Exception:
                    rss = 0
                if started_at is None and st_f.exists():
                    started_at = now
                peak = max(peak, rss)          # the child's whole life: used only when it reports no peak
                if enforce_memory_mb and rss / 2**20 > enforce_memory_mb and killed_by is None:
                    killed_by = (f"killed by the harness: process-tree RSS {rss / 2**20:.0f} MB exceeded the "
                                 f"{enforce_memory_mb:g} MB limit (--enforce-memory)")
                    _kill_tree(proc, signal.SIGKILL)
                elif started_at is None and now - t_spawn > startup_timeout_s and killed_by is None:
                    killed_by = f"killed by the harness: the child did not start the run within {startup_timeout_s:g} s"
                    _kill_tree(proc, signal.SIGKILL)
                elif started_at is not None and timeout:
                    over = now - started_at - timeout
                    if over > term_grace_s and not termed:
                        termed = True
                        _kill_tree(proc, signal.SIGTERM)
                    elif over > term_grace_s + kill_grace_s and killed_by is None:
                        killed_by = (f"killed by the harness: no result {term_grace_s + kill_grace_s:g} s after the "
                                     f"{timeout:g} s timeout (stuck in native code?)")
                        _kill_tree(proc, signal.SIGKILL)
                time.sleep(POLL_S)
    except BaseException as e:   # pytest-timeout in the parent, Ctrl-C: stop the child, keep what it wrote
        exc = e
        _kill_tree(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=term_grace_s)
        except subprocess.TimeoutExpired:
            _kill_tree(proc, signal.SIGKILL)
            proc.wait()
    rc = proc.wait()
    wall_total = time.perf_counter() - t_spawn
    peak_mb = peak / 2**20 if peak else None
    result = None
    if res_f.exists():
        try:
            result = json.loads(res_f.read_text())
        except (OSError, ValueError):
            result = None
    status_info = {}
    try:
        status_info = json.loads(st_f.read_text()) if st_f.exists() else {}
    except (OSError, ValueError):
        pass
    out = RunOutcome(CRASHED, None, isolated=True, observed_peak_mb=peak_mb,
                     child_warmup_s=status_info.get("warmup_s"), memray_file=req.memray_file, exception=exc)
    if result is not None and killed_by is None:
        out.status = result.get("status", FAILED)
        out.telemetry = result.get("telemetry")
        out.error = result.get("error")
        out.wall_s = float(result.get("wall_s") or 0.0)
        out.timeout_via = "child" if out.status == TIMED_OUT else None
    else:
        out.cause = describe_exit(rc, killed_by_harness=killed_by, oom_before=oom_before,
                                  oom_after=_oom_kill_count(), peak_mb=peak_mb, stderr_tail=_tail(err_f))
        out.error = out.cause
        out.child_log = str(err_f)
        out.wall_s = (time.perf_counter() - started_at) if started_at else wall_total
        if result is not None:         # killed after it wrote something (e.g. over memory at the very end)
            out.telemetry = result.get("telemetry")
    if exc is not None:
        out.status = TIMED_OUT if is_timeout(exc) else INTERRUPTED
        out.error = _first_line(exc)
    elif termed and out.status == INTERRUPTED:     # our SIGTERM at the deadline: the child's alarm did not fire
        out.status = TIMED_OUT
        out.error = f"no result within {timeout:g} s (+{term_grace_s:g} s grace): stopped with SIGTERM"
    if out.status == TIMED_OUT and out.telemetry is not None and not out.telemetry.get("timed_out"):
        out.telemetry["timed_out"] = True
    _cleanup(tmp, keep=out.status == CRASHED)
    return out


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
