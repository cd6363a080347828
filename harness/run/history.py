"""History across commits: each first-parent commit of a range benched in a temporary worktree importing its own
engine (`bench_range`), and a bisection for the first commit where a metric got worse, each step judged by the gate
against the range's good end, on stored runs where they decide, else on interleaved rounds (`bisect`)."""
from __future__ import annotations

import hashlib
import json
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..analysis.compare import compare_records
from ..analysis.stats import WORSE, beyond
from ..records import is_usable
from . import environment
from .continuous import ContinuousError, Settings, Worktrees, run_continuous, run_sides, session_records, \
    side_pytest_args


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    date: str                                  # committer date, ISO 8601

    @property
    def short(self) -> str:
        return self.sha[:7]


def _git(repo: Path, *args: str) -> str:
    if (out := environment.git(list(args), repo)) is None:
        raise ContinuousError(f"git {' '.join(args)} failed in {repo} (is it a git repository with that history?)")
    return out


def describe(repo: Path, shas: list[str]) -> list[Commit]:
    """The commits `shas` (full SHAs) with their subjects and dates, in the order given."""
    if not shas:
        return []
    out = _git(repo, "show", "-s", "--format=%H%x00%s%x00%cI", *shas)
    return [Commit(*line.split("\x00", 2)) for line in out.splitlines() if line.count("\x00") == 2]


def resolve(repo: Path, ref: str) -> str:
    if not (sha := environment.resolve_ref(ref, repo)):
        raise ContinuousError(f"'{ref}': git does not know this ref in {repo}")
    return sha


def range_commits(repo: str | Path, spec: str | None, last: int | None = None) -> tuple[Commit | None, list[Commit]]:
    """(the good end, the commits oldest first) of `A..B` (B's first-parent commits after A), `c1,c2,...` (the
    first is the good end) or the last N first-parent commits up to HEAD (good end: the one before them)."""
    repo = Path(repo)
    if last is not None:
        shas = _git(repo, "rev-list", "--first-parent", f"--max-count={last + 1}", "HEAD").split()[::-1]
        good, shas = (shas[0], shas[1:]) if len(shas) > last else (None, shas)
    elif spec and ".." in spec:
        a, b = spec.split("..", 1)
        good, head = resolve(repo, a or "HEAD"), resolve(repo, b or "HEAD")
        shas = _git(repo, "rev-list", "--first-parent", "--reverse", f"{good}..{head}").split()
    else:
        listed = [resolve(repo, r) for r in (spec or "HEAD").split(",") if r.strip()]
        good, shas = (listed[0], listed[1:]) if len(listed) > 1 else (None, listed)
    if not shas:
        raise ContinuousError(f"the range {spec or f'--last {last}'} holds no commits")
    return (describe(repo, [good])[0] if good else None), describe(repo, shas)


def spread(commits: list, steps: int | None) -> list:
    """`steps` of the commits spread evenly, the first and the last included (all when steps is None or more)."""
    if steps is None or steps >= len(commits):
        return list(commits)
    if steps <= 1:
        return [commits[-1]]
    return [commits[i] for i in sorted({round(i * (len(commits) - 1) / (steps - 1)) for i in range(steps)})]


def stored_runs(results_dir: Path, sha: str, key: str) -> list:
    """This machine's usable runs of `sha` benched by `run` with the settings `key`."""
    return [r for runs in session_records(results_dir, key + "-", sha).values() for r in runs if is_usable(r)]


@dataclass
class RangeSettings:
    """A `research-bench run` or `find`: where records go, the pytest arguments, how long to measure."""
    results_dir: Path
    pytest_args: list[str] = field(default_factory=list)
    rounds: int = 3
    warmup_runs: int = 1
    skip_existing: bool = False
    cwd: Path | None = None

    @property
    def key(self) -> str:
        """What makes two runs of a commit the same measurement: the pytest arguments and the rounds."""
        blob = json.dumps({"args": self.pytest_args, "rounds": self.rounds, "warmup": self.warmup_runs}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]


@dataclass
class Benched:
    commit: Commit
    status: str                                # measured | skipped | failed (no usable run)
    runs: int = 0
    returncode: int | None = None
    seconds: float = 0.0


@dataclass
class RangeRun:
    benched: list[Benched] = field(default_factory=list)
    interrupted: bool = False


def bench_commit(c: Commit, s: RangeSettings, echo: Callable[[str], None]) -> Benched:
    """One pytest session of `c` in its own worktree, its records tagged with a run id carrying the settings key."""
    cwd, t0, run_id = Path(s.cwd or Path.cwd()), time.monotonic(), f"{s.key}-{uuid.uuid4().hex[:8]}"
    args = side_pytest_args(s.pytest_args, rounds=s.rounds, warmup_runs=s.warmup_runs, results_dir=s.results_dir)
    with tempfile.TemporaryDirectory(prefix="research-bench-run-") as work, Worktrees(cwd) as wt:
        side = wt.add("C", c.sha)
        out = run_sides([side], args, cwd=cwd, run_id=run_id, workdir=work,
                        echo=lambda line: echo(line.split("] ", 1)[-1]))[0]
    runs = sum(map(is_usable, session_records(s.results_dir, run_id).get("C", [])))
    return Benched(c, "measured" if runs else "failed", runs, out.returncode, time.monotonic() - t0)


def bench_range(commits: list[Commit], s: RangeSettings, echo: Callable[[str], None]) -> RangeRun:
    """Bench each commit in turn; Ctrl-C ends the range, keeping what was stored (and removing the last worktree)."""
    out = RangeRun()
    for i, c in enumerate(commits, 1):
        head = f'commit {i}/{len(commits)} {c.short} "{c.subject}"'
        if stored := (stored_runs(s.results_dir, c.sha, s.key) if s.skip_existing else []):
            echo(f"{head} | already measured on this machine with these settings: skipped")
            out.benched.append(Benched(c, "skipped", len(stored)))
            continue
        try:
            b = bench_commit(c, s, lambda line, head=head: echo(f"{head} | {line}"))
        except KeyboardInterrupt:
            out.interrupted = True
            break
        echo(f"{head} | {b.runs} run(s) stored in {b.seconds:.0f} s" + ("" if b.runs else
             f" -- no usable run (pytest exit status {b.returncode})"))
        out.benched.append(b)
    return out


BAD, GOOD, UNDECIDED = "bad", "good", "undecided"


@dataclass
class Judged:
    """One step of a search: a commit against the good end, by the gate, on interleaved or stored runs."""
    commit: Commit
    verdict: str                               # bad | good | undecided
    why: str                                   # the change and its test, or why it stayed undecided
    source: str                                # interleaved | stored
    seconds: float
    delta: object | None = None                # the judged analysis.compare.MetricDelta


@dataclass
class Search:
    good: Commit
    commits: list[Commit]
    steps: list[Judged] = field(default_factory=list)
    found: Judged | None = None
    stopped: str = ""                          # where an undecided or interrupted search stopped
    interrupted: bool = False


def verdict(comp, metric: str) -> tuple[str, str, object | None]:
    """The gate's word on `metric`: bad (a series failed its threshold), undecided (worse beyond the threshold but
    not beyond noise, or no runs of the metric), else good; with the change in words, and the delta judged."""
    deltas = [d for s in (comp.series if comp else []) for d in s.deltas if d.metric == metric and d.threshold]
    worst = max(deltas, key=lambda d: (d.failed, (d.gate_change_pct or 0) * (1 if d.better == "lower" else -1)),
                default=None)                  # a failed series first, else the one that got most worse
    if worst is None:
        return UNDECIDED, f"no usable runs of {metric} on both sides", None
    p = worst.test.p_worse
    words = (f"{metric} {worst.base.median:.6g} -> {worst.cur.median:.6g} ({worst.gate_change_pct or 0:+.1f} %, "
             f"{worst.test.method} p={p:.3g})" if p is not None else
             f"{metric} {worst.gate_change_pct or 0:+.1f} % ({worst.test.method} test)")
    if worst.failed:
        return BAD, words, worst
    if beyond(worst.gate_change_pct, worst.threshold.pct, WORSE[worst.better]):
        return UNDECIDED, words + f": beyond {worst.threshold.pct:g} % but not beyond noise", worst
    return GOOD, words, worst


def judge(good: Commit, c: Commit, s: RangeSettings, threshold, echo: Callable[[str], None], *,
          max_rounds: int | None = None) -> Judged:
    """`c` against the good end: on stored runs (this machine, these settings) where they decide, else interleaved."""
    t0 = time.monotonic()
    base, cur = stored_runs(s.results_dir, good.sha, s.key), stored_runs(s.results_dir, c.sha, s.key)
    if len(base) >= s.rounds and len(cur) >= s.rounds:
        v, why, d = verdict(compare_records(base, cur, thresholds=[threshold]), threshold.metric)
        if v != UNDECIDED:
            return Judged(c, v, why, "stored", time.monotonic() - t0, d)
    sess = run_continuous(Settings(good.sha, c.sha, s.results_dir, s.pytest_args, s.rounds, max_rounds,
                                   s.warmup_runs, [threshold], cwd=s.cwd), echo)
    v, why, d = verdict(sess.comparison, threshold.metric)
    return Judged(c, v, why, "interleaved", time.monotonic() - t0, d)


def bisect(good: Commit, commits: list[Commit], s: RangeSettings, threshold, echo: Callable[[str], None], *,
           max_rounds: int | None = None) -> Search:
    """The first commit of `commits` (oldest first) worse than `good` by the gate: the last commit first (is there
    a regression at all?), then halving; an undecided step ends the search where it stands, never guessed."""
    out, lo, hi = Search(good, commits), -1, len(commits) - 1
    probe = hi
    try:
        while True:
            c = commits[probe]
            echo(f"step {len(out.steps) + 1}: {c.short} \"{c.subject}\" against {good.short}")
            j = judge(good, c, s, threshold, lambda line, k=len(out.steps) + 1: echo(f"step {k} | {line}"),
                      max_rounds=max_rounds)
            out.steps.append(j)
            echo(f"step {len(out.steps)}: {c.short} is {j.verdict}: {j.why} ({j.source}, {j.seconds:.0f} s)")
            if j.verdict == UNDECIDED:
                out.stopped = (f"{c.short} is undecided: the first worse commit, if any, lies after "
                               f"{(commits[lo] if lo >= 0 else good).short} and up to {commits[hi].short}")
                return out
            if j.verdict == GOOD and probe == len(commits) - 1:
                return out                                       # the last commit is not worse: nothing to find
            lo, hi = (probe, hi) if j.verdict == GOOD else (lo, probe)
            if hi - lo <= 1:
                out.found = next(x for x in reversed(out.steps) if x.commit.sha == commits[hi].sha)
                return out
            probe = (lo + hi) // 2
    except KeyboardInterrupt:
        out.interrupted, out.stopped = True, f"interrupted at step {len(out.steps) + 1}"
        return out
