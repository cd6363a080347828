"""Interleaved sessions of commits on one machine, as `asv continuous` does: a temporary git worktree and a pytest
session per side, importing that side's engine and taking turns (run/interleave.py); and `run_continuous`, the
sequential A/B comparison. A stop signal ends the session cleanly (`stop_on_signals`)."""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from llm_research_bench.engine.corpus import DEFAULT_PUBMEDQA

from ..analysis.compare import Comparison, add_power, compare_records, look_alpha, plan, should_continue, undecided
from ..records import is_usable
from . import environment, interleave
from .store import FALLBACK_ENV, read_store

POLL_S = 0.2
#: The signals that stop a session; its exit status is 128 + the signal's number (130, 143, 129).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: How long a side may take to end after SIGTERM before it is killed.
STOP_WAIT_S = 10


class ContinuousError(RuntimeError):
    """The interleaved session cannot run (a ref git does not know, no git repository); the message says why."""


class Stopped(BaseException):
    """A stop signal arrived: raised in the main thread, so that every `finally` and `with` cleans up."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_status = 128 + signum
        self.message = f"stopped by {self.args[0]}"


_stopping = threading.Event()


@contextlib.contextmanager
def stop_on_signals():
    """While inside: SIGTERM, SIGINT and SIGHUP raise Stopped once; later ones are ignored until the cleanup the
    first started is done (a signal to the process group reaches this process more than once)."""
    def stop(signum, _frame):
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        _stopping.set()                     # the sides' output from here on goes to their logs only
        raise Stopped(signum)
    _stopping.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _parent_death_signal():
    """On Linux, the preexec_fn that makes a side end when this process dies, even by SIGKILL (looked up before the
    fork). None elsewhere: a side's turn-taking notices that its parent is gone (interleave.take_turn)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None).prctl
    return lambda: prctl(1, signal.SIGTERM)                                # 1: PR_SET_PDEATHSIG


@dataclass
class SideCheckout:
    """One side: a commit checked out in its own worktree."""
    name: str                     # A (the baseline), B, ...
    ref: str                      # as the user gave it (HEAD~1)
    commit: str
    path: Path                    # the worktree
    dirty: bool = False           # the benches it runs (the working tree's) have uncommitted changes

    @property
    def short(self) -> str:
        return self.commit[:12]


@dataclass
class SideOutcome:
    side: SideCheckout
    returncode: int
    log: Path                     # the side's pytest output


def remove_tree(path: Path) -> None:
    """Remove a folder; retried for 5 s while a stopped side's last process may still write to it."""
    deadline = time.monotonic() + 5
    shutil.rmtree(path, ignore_errors=True)
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
        shutil.rmtree(path, ignore_errors=True)


class Worktrees:
    """Temporary git worktrees (detached checkouts) of the repository holding `repo`, removed on exit."""

    def __init__(self, repo: str | Path, *, keep: bool = False):
        top = environment.git(["rev-parse", "--show-toplevel"], repo)
        if top is None:
            raise ContinuousError(f"{Path(repo).resolve()} is not inside a git repository: continuous checks out "
                                  f"commits with git worktrees")
        self.repo, self.keep, self.root = Path(top), keep, Path(tempfile.mkdtemp(prefix="research-bench-continuous-"))

    def __enter__(self) -> "Worktrees":
        return self

    def add(self, name: str, ref: str, dirty: bool = False) -> SideCheckout:
        """Check out `ref` (resolved by the caller: an unknown one fails in git's words)."""
        side = SideCheckout(name, ref, environment.resolve_ref(ref, self.repo) or ref, self.root / name, dirty)
        r = subprocess.run(["git", "worktree", "add", "--detach", "--force", str(side.path), side.commit],
                           cwd=self.repo, capture_output=True, text=True)
        if r.returncode != 0:
            raise ContinuousError(f"git worktree add {side.path} {side.short} failed: {r.stderr.strip()}")
        return side

    def __exit__(self, *exc) -> None:
        if not self.keep:
            remove_tree(self.root)
            environment.git(["worktree", "prune"], self.repo)


def side_env(side: SideCheckout, names: Sequence[str], baton: Path, site: Path, run_id: str) -> dict:
    """A side's environment: its engine's checkout, its turn-taking, the sitecustomize installing the finder, and a
    temp folder of its own beside the baton, removed with it; the fallback file stays in the user's temp folder."""
    path = [str(site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    tmp = baton.parent / f"tmp-{side.name}"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, interleave.ENGINE_ENV: str(side.path), "PYTHONPATH": os.pathsep.join(path),
            "TMPDIR": str(tmp), FALLBACK_ENV: os.environ.get(FALLBACK_ENV) or tempfile.gettempdir(),
            interleave.SIDE_ENV: interleave.Side(run_id, side.name, side.ref, side.commit, baton, tuple(names),
                                                 os.getpid(), side.dirty).as_env()}


def _launch(side: SideCheckout, args: Sequence[str], cwd: Path, env: dict, log: Path, echo) -> tuple:
    """Start a side's pytest session; a thread copies its output to `log` and, line by line, to `echo`. The side
    has a session of its own: a signal to the terminal's process group reaches this process alone (`_stop`)."""
    p = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True,
                         preexec_fn=_parent_death_signal())

    def pump() -> None:
        with open(log, "w", encoding="utf-8") as fh:
            for line in p.stdout:                   # type: ignore[union-attr]
                fh.write(line)
                fh.flush()
                if not _stopping.is_set():
                    echo(f"[{side.name} {side.short}] {line.rstrip()}")
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return p, t


def _stop(running: dict[str, tuple]) -> None:
    """End every side still running: SIGTERM to its process group (and its isolated runs), SIGKILL after STOP_WAIT_S."""
    for p, _ in running.values():
        for sig, wait_s in ((signal.SIGTERM, STOP_WAIT_S), (signal.SIGKILL, None)):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=wait_s)
    for _, t in running.values():
        t.join(timeout=5)


def run_sides(sides: Sequence[SideCheckout], pytest_args: Sequence[str], *, cwd: str | Path, run_id: str,
              echo: Callable[[str], None], workdir: str | Path) -> list[SideOutcome]:
    """One pytest session per side, interleaved, until all have ended. A side starts when its turn first comes (its
    start-up never overlaps another side's timed runs); when it ends, its turn passes on."""
    names, by_name = [s.name for s in sides], {s.name: s for s in sides}
    work = Path(workdir)
    (baton := work / "baton").mkdir(parents=True, exist_ok=True)
    site = interleave.write_sitecustomize(work / "site").parent
    interleave.set_turn(baton, names[0])
    running: dict[str, tuple] = {}
    ended: dict[str, int] = {}
    try:
        while len(ended) < len(sides):
            for name, (p, _) in running.items():
                if name not in ended and p.poll() is not None:
                    ended[name] = p.returncode
                    interleave.done_file(baton, name).touch()
                    if interleave.whose_turn(baton) == name:
                        interleave.advance(baton, names)
            if (turn := interleave.whose_turn(baton)) in by_name and turn not in running:
                running[turn] = _launch(by_name[turn], pytest_args, Path(cwd), side_env(by_name[turn], names, baton,
                                        site, run_id), work / f"side-{turn}.log", echo)
            time.sleep(POLL_S)
    finally:
        _stop(running)
    return [SideOutcome(s, ended.get(s.name, -1), work / f"side-{s.name}.log") for s in sides]


def side_pytest_args(pytest_args: list[str], *, rounds: int, warmup_runs: int, results_dir: Path) -> list[str]:
    """Each side's pytest arguments: the user's (default path: benches/), the rounds, where records go, and the
    corpus as this checkout resolves it (a worktree would look beside itself)."""
    given = any(not a.startswith("-") and Path(a.split("::")[0]).exists() for a in pytest_args)
    args = [*([] if given else ["benches"]), *pytest_args, "--research-rounds", str(rounds),
            "--research-warmup-runs", str(warmup_runs), "--research-results-dir", str(results_dir),
            "-p", "no:cacheprovider"]
    if not any(a.startswith("--research-corpus") for a in pytest_args) and DEFAULT_PUBMEDQA.exists():
        args += ["--research-corpus", str(DEFAULT_PUBMEDQA)]
    return args


def session_records(results_dir: Path, run_id: str, commit: str | None = None) -> dict[str, list]:
    """This machine's records of the continuous sessions whose id starts with `run_id`, by side."""
    out: dict[str, list] = {}
    for r in read_store(results_dir, fingerprint=environment.machine_info().fingerprint, commit=commit).records:
        c = (r.extra or {}).get("continuous") or {}
        if str(c.get("run", "")).startswith(run_id):
            out.setdefault(c.get("side"), []).append(r)
    return out


@dataclass
class Settings:
    """A `research-bench continuous` session: the two commits, the pytest arguments, how long to measure."""
    base: str
    head: str
    results_dir: Path
    pytest_args: list[str] = field(default_factory=list)
    rounds: int = 5
    max_rounds: int | None = None          # sequential looks up to this many rounds a side (None: one look)
    warmup_runs: int = 1
    thresholds: list = field(default_factory=list)
    keep_worktrees: bool = False
    cwd: Path | None = None


@dataclass
class Session:
    """What a continuous session ran, measured and concluded."""
    run_id: str
    looks: list[int]                       # rounds a side measured by each look
    alpha: float                           # what each look tests at
    work: Path                             # the sides' logs
    sides: list[SideCheckout] = field(default_factory=list)
    outcomes: list[SideOutcome] = field(default_factory=list)
    measured: int = 0
    comparison: Comparison | None = None   # the last look's; None: a side has no usable run
    root: Path | None = None               # the worktrees' folder


def run_continuous(s: Settings, echo: Callable[[str], None]) -> Session:
    """Bench both commits interleaved and compare them; with max_rounds above rounds, a look after every `rounds`
    rounds a side, more only while a gated metric is undecided. Stopped's message says what was kept and where."""
    cwd, run_id = Path(s.cwd or Path.cwd()), uuid.uuid4().hex[:12]
    looks = plan(s.rounds, s.max_rounds or s.rounds)
    sess = Session(run_id, looks, look_alpha(len(looks)),
                   Path(tempfile.mkdtemp(prefix=f"research-bench-continuous-{run_id}-")))
    try:
        with Worktrees(cwd, keep=s.keep_worktrees) as wt:
            sess.root, dirty = wt.root, _tree_note(cwd, echo)
            sess.sides = [wt.add("A", s.base, dirty), wt.add("B", s.head, dirty)]
            a, b = sess.sides
            echo(f"continuous {run_id}: A = {s.base} ({a.short}), B = {s.head} ({b.short}); {s.rounds} interleaved "
                 f"rounds a side after {s.warmup_runs} warm-up(s)"
                 + (f", up to {looks[-1]} in {len(looks)} looks (each tests at alpha {sess.alpha:.3g})"
                    if len(looks) > 1 else "") + f"; each side's engine from its worktree under {wt.root}, the "
                 f"benches from {cwd}")
            for k in range(len(looks)):
                if not _look(s, sess, k, cwd, echo):
                    break
        _finish(s, sess, echo)
    except (ContinuousError, Stopped, KeyboardInterrupt) as e:    # Ctrl-C: no stop_on_signals (run, find)
        if isinstance(e, Stopped):
            e.message = _stopped_line(s, sess, e)
        if isinstance(e, ContinuousError) or not s.keep_worktrees:
            remove_tree(sess.work)
        raise
    return sess


def _tree_note(cwd: Path, echo: Callable[[str], None]) -> bool:
    """Warn of uncommitted changes (in neither side's engine); whether the benches are dirty (records filed +dirty)."""
    changed = environment.changed_paths(cwd)
    if changed:
        engine = [p for p in changed if p.startswith("engine/")]
        echo(f"continuous: warning: the working tree has {len(changed)} uncommitted change(s), e.g. {changed[0]}: "
             f"each side measures its commit's engine"
             + (f" ({len(engine)} engine change(s) are in neither side)" if engine else "")
             + "; the benches are this working tree's"
             + ("; records are filed as +dirty" if len(engine) < len(changed) else ""))
    return any(not p.startswith("engine/") for p in changed)


def _stopped_line(s: Settings, sess: Session, e: Stopped) -> str:
    """What a stopped session kept and where (the worktrees are gone by now, unless kept)."""
    by_side = session_records(s.results_dir, sess.run_id) if s.results_dir.is_dir() else {}
    kept = ", ".join(f"{len(by_side.get(x.name, []))} of {x.name}" for x in sess.sides) or "none"
    left = (f"worktrees kept under {sess.root}, logs under {sess.work} (--keep-worktrees; remove them with `git "
            f"worktree remove`)" if s.keep_worktrees else "worktrees and temp folders removed")
    return f"{e.message}: record(s) measured so far ({kept}) kept under {s.results_dir}; {left}"


def _look(s: Settings, sess: Session, k: int, cwd: Path, echo: Callable[[str], None]) -> bool:
    """Measure up to look k's rounds a side and compare; whether to measure another look."""
    total = sess.looks[k]
    args = side_pytest_args(s.pytest_args, rounds=total - sess.measured, warmup_runs=s.warmup_runs,
                            results_dir=s.results_dir)
    if k == 0:
        echo(f"each side: pytest {' '.join(args)}")
    sess.outcomes += run_sides(sess.sides, args, cwd=cwd, run_id=sess.run_id, echo=echo,
                               workdir=sess.work / f"look-{k + 1}")
    sess.measured = total
    by_side = session_records(s.results_dir, sess.run_id)
    base, cur = by_side.get("A", []), by_side.get("B", [])
    if not any(map(is_usable, base)) or not any(map(is_usable, cur)):
        return False
    a, b = sess.sides
    sess.comparison = comp = compare_records(base, cur, thresholds=s.thresholds, alpha=sess.alpha,
                                             names=(f"{s.base} {a.short}", f"{s.head} {b.short}"))
    if not should_continue(comp, k, len(sess.looks)):
        return False
    echo(f"look {k + 1} of {len(sess.looks)} ({total} rounds a side): undecided: "
         + "; ".join(f"{key} {d.metric} {d.gate_change_pct:+.1f} % (threshold {d.threshold.pct:g} %)"
                     for key, d in undecided(comp))
         + f"; measuring {sess.looks[k + 1] - total} more rounds a side")
    return True


def _finish(s: Settings, sess: Session, echo: Callable[[str], None]) -> None:
    """Say how each side's sessions ended (keeping a failed one's logs); add the gate's power to the comparison."""
    keep_logs = s.keep_worktrees or any(o.returncode not in (0, 5) for o in sess.outcomes)
    by_side = session_records(s.results_dir, sess.run_id)
    for o in sess.outcomes[-2:]:
        codes = ", ".join(str(x.returncode) for x in sess.outcomes if x.side.name == o.side.name)
        n = sum(map(is_usable, by_side.get(o.side.name, [])))
        echo(f"side {o.side.name} ({o.side.ref} = {o.side.short}): pytest exit status {codes}, {n} usable run(s)"
             + (f"; logs under {sess.work}" if keep_logs else ""))
    if not keep_logs:
        remove_tree(sess.work)
    if sess.comparison is not None and not sess.comparison.failed and s.thresholds:
        add_power(sess.comparison)
