"""Interleaved sessions of two (or more) commits on one machine, the way `asv continuous` works: the machinery of
`research-bench continuous` (report/continuous_cmd.py) and of the gate calibration bench.

    with Worktrees(repo) as wt:                     temporary git worktrees, removed afterwards
        sides = [wt.add("A", "HEAD~1"), wt.add("B", "HEAD")]
        outcomes = run_sides(sides, ["benches", "-m", "quick", "--research-rounds", "5"], cwd=repo, run_id=...)

Each side is one pytest session in this venv, run from `cwd` (this checkout's benches and harness), importing
its own commit's engine (run/sources.py: RESEARCH_BENCH_ENGINE_FROM and a sitecustomize on PYTHONPATH, so that
its isolated children do too). Only one side uses the machine at a time and their measured rounds interleave,
each round in another order: A B, B A, A B ... (run/interleave.py), so drift and other processes' load hit both
alike. Every record is stored under its side's commit with extra['continuous'] = {run, side, label, engine}.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from . import environment, interleave, sources

POLL_S = 0.2


class ContinuousError(RuntimeError):
    """The interleaved session cannot run (a ref git does not know, no git repository, ...); the message says
    which and how to fix it."""


@dataclass
class SideCheckout:
    """One side: a commit checked out in its own worktree."""
    name: str                     # A (the baseline), B, ...
    ref: str                      # as the user gave it (HEAD~1)
    commit: str
    path: Path                    # the worktree

    @property
    def short(self) -> str:
        return self.commit[:12]


@dataclass
class SideOutcome:
    side: SideCheckout
    returncode: int
    log: Path                     # the side's pytest output


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


class Worktrees:
    """Temporary git worktrees of one repository (detached checkouts), removed on exit."""

    def __init__(self, repo: str | Path, *, keep: bool = False):
        self.repo = Path(repo).resolve()
        self.keep = keep
        self.root: Path | None = None
        self.sides: list[SideCheckout] = []

    def __enter__(self) -> "Worktrees":
        top = _git(self.repo, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            raise ContinuousError(f"{self.repo} is not inside a git repository: continuous checks out commits "
                                  f"with git worktrees")
        self.repo = Path(top.stdout.strip())
        self.root = Path(tempfile.mkdtemp(prefix="research-bench-continuous-"))
        return self

    def add(self, name: str, ref: str) -> SideCheckout:
        assert self.root is not None
        commit = environment.resolve_ref(ref, self.repo)
        if not commit:
            raise ContinuousError(f"'{ref}': git does not know this ref in {self.repo} (a commit, branch, tag or "
                                  f"HEAD~N; in CI fetch enough history, e.g. actions/checkout with fetch-depth: 0)")
        path = self.root / name
        r = _git(self.repo, "worktree", "add", "--detach", "--force", str(path), commit)
        if r.returncode != 0:
            raise ContinuousError(f"git worktree add {path} {commit[:12]} failed: {r.stderr.strip()}")
        side = SideCheckout(name, ref, commit, path)
        self.sides.append(side)
        return side

    def __exit__(self, *exc) -> None:
        if self.keep or self.root is None:
            return
        for s in self.sides:
            _git(self.repo, "worktree", "remove", "--force", str(s.path))
        _git(self.repo, "worktree", "prune")
        shutil.rmtree(self.root, ignore_errors=True)


def side_env(side: SideCheckout, names: Sequence[str], baton: Path, site: Path, run_id: str,
             base_env: dict | None = None) -> dict:
    """The environment of a side's pytest session: its engine's checkout, its turn-taking, the sitecustomize
    that installs the engine finder in every Python process it starts."""
    env = dict(os.environ if base_env is None else base_env)
    env[sources.ENV] = str(side.path)
    env[interleave.ENV] = interleave.Side(run_id, side.name, side.ref, side.commit, baton, tuple(names)).as_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def run_sides(sides: Sequence[SideCheckout], pytest_args: Sequence[str], *, cwd: str | Path, run_id: str,
              python: str = sys.executable, env: dict | None = None,
              echo: Callable[[str], None] | None = print, workdir: str | Path | None = None) -> list[SideOutcome]:
    """Run one pytest session per side, interleaved; returns when every side's session has ended.

    The first side starts at once and holds the turn; each other side's process is started when its turn first
    comes (so its start-up and warm-up do not overlap the other side's timed runs). When a side's session ends,
    its turn passes on and nobody waits for it again."""
    names = [s.name for s in sides]
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="research-bench-baton-"))
    baton = work / "baton"
    baton.mkdir(parents=True, exist_ok=True)
    site = sources.write_sitecustomize(work / "site").parent
    interleave.set_turn(baton, names[0])
    procs: dict[str, subprocess.Popen] = {}
    readers: list[threading.Thread] = []
    logs: dict[str, Path] = {}
    ended: dict[str, int] = {}

    def launch(side: SideCheckout) -> None:
        log = work / f"side-{side.name}.log"
        logs[side.name] = log
        p = subprocess.Popen([python, "-m", "pytest", *pytest_args], cwd=str(cwd),
                             env=side_env(side, names, baton, site, run_id, env),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        procs[side.name] = p

        def pump() -> None:
            with open(log, "w", encoding="utf-8") as fh:
                for line in p.stdout:           # type: ignore[union-attr]
                    fh.write(line)
                    fh.flush()
                    if echo is not None:
                        echo(f"[{side.name} {side.short}] {line.rstrip()}")
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        readers.append(t)

    by_name = {s.name: s for s in sides}
    try:
        launch(sides[0])
        while len(ended) < len(sides):
            for name, p in list(procs.items()):
                if name not in ended and p.poll() is not None:
                    ended[name] = p.returncode
                    interleave.done_file(baton, name).touch()
                    if interleave.whose_turn(baton) == name:
                        interleave.advance(baton, names)
            turn = interleave.whose_turn(baton)
            if turn in by_name and turn not in procs:
                launch(by_name[turn])
            time.sleep(POLL_S)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        for t in readers:
            t.join(timeout=5)
    return [SideOutcome(s, ended.get(s.name, -1), logs.get(s.name, work / f"side-{s.name}.log")) for s in sides]
