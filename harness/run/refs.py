"""What a REF names (a saved session name, a commit git knows, a stored commit prefix, `REF+dirty`), and the
default results folder: one answer for the research-bench commands and the plugin."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm_research_bench.engine.envvars import env

from ..analysis.compare import saved_as, saved_session
from .environment import git, machine_info, resolve_ref

DIRTY = "+dirty"


class RefError(ValueError):
    """A REF that names nothing usable, or several stored commits; the message says which."""


@dataclass(frozen=True)
class Ref:
    """A --research-save name, or a commit's clean (or `dirty`-tree) runs; `stored`: the records hold such runs."""
    name: str | None = None
    commit: str | None = None
    dirty: bool = False
    stored: bool = False


def default_results_dir(root: str | Path = ".") -> Path:
    """$RESEARCH_BENCH_RESULTS_DIR, else `results/` at the top of the git checkout holding `root`, else in `root`."""
    root = Path(root).resolve()
    return Path(env("RESULTS_DIR") or Path(git(["rev-parse", "--show-toplevel"], root) or root) / "results")


def resolve(ref: str, records, cwd: str | Path = ".") -> Ref | None:
    """What `ref` names among `records` (None: nothing): a saved name first, else a commit: git's answer when it has
    stored runs, else the one stored commit starting with `ref`, else git's answer."""
    if any(saved_as(r) == ref for r in records):
        return Ref(name=ref)
    dirty = ref.endswith(DIRTY)
    base = ref[: -len(DIRTY)] if dirty else ref
    stored = {r.commit for r in records if r.commit and bool(r.dirty) == dirty}
    commit = resolve_ref(base, cwd)
    if commit not in stored:
        matches = sorted(c for c in stored if c.startswith(base))
        if len(matches) > 1:
            raise RefError(f"'{base}' matches several stored commits: {', '.join(m[:12] for m in matches)}")
        commit = matches[0] if matches else commit
    return Ref(commit=commit, dirty=dirty, stored=commit in stored) if commit else None


@dataclass
class StoredSides:
    """Two REFs' records on one machine, and that machine's other records (the noise history)."""
    machine: str
    labels: tuple[str, str]
    base: list
    current: list
    history: list


def _side(ref: str, records: list, results_dir: str | Path, cwd: str | Path) -> tuple[str, set[str]]:
    """(label, record ids) of one REF: a saved name's newest session on each machine, or a commit's runs."""
    found = resolve(ref, records, cwd)
    if found is None:
        outside = "" if git(["rev-parse", "--git-dir"], cwd) is not None else (
            f" ({Path(cwd).resolve()} is not in a git repository: git cannot resolve refs nor order the stored "
            f"commits here; name stored commits by their id, see `research-bench list`, or run in the checkout)")
        raise RefError(f"'{ref}': no session was saved under this name, git does not know it and no stored commit "
                       f"starts with it{outside}")
    if found.name:
        return f"'{ref}'", {r.record_id for fp in {r.machine_fingerprint for r in records}
                            for r in saved_session([r for r in records if r.machine_fingerprint == fp], ref)}
    if not found.stored:
        kind, hint = ("dirty-tree", "") if found.dirty else ("clean", f" (its dirty-tree runs: '{ref}+dirty')")
        raise RefError(f"'{ref}' is commit {found.commit[:12]}, which has no {kind} results under {results_dir}{hint}")
    return found.commit[:12] + (DIRTY if found.dirty else ""), \
        {r.record_id for r in records if r.commit == found.commit and bool(r.dirty) == found.dirty}


def _machine(machine: str | None, labels: tuple[str, str], fps: tuple[set, set]) -> str:
    """The machine asked for, else this one, else the one machine with results of both sides."""
    both = fps[0] & fps[1]
    if machine is not None and machine not in both:
        raise RefError(f"machine {machine} lacks results of {labels[0] if machine not in fps[0] else labels[1]}")
    if (here := machine or machine_info().fingerprint) in both or len(both) == 1:
        return here if here in both else next(iter(both))
    if not both:
        raise RefError(f"no machine has results of both {labels[0]} ({', '.join(sorted(fps[0]))}) and {labels[1]} "
                       f"({', '.join(sorted(fps[1]))}): timings of different machines are not compared")
    raise RefError(f"several machines have results of both commits: pass --machine ({', '.join(sorted(both))})")


def stored_sides(ref_a: str, ref_b: str, records, *, results_dir: str | Path, machine: str | None = None,
                 cwd: str | Path = ".") -> StoredSides:
    """The records of REF_A (baseline) and REF_B (current) on one machine; RefError says why there are none."""
    with_commit = [r for r in records if r.commit]
    if not with_commit:
        raise RefError(f"{len(records)} result record(s) under {results_dir}, none of a commit (measured outside a "
                       f"git repository): nothing to order them by; measure in a git checkout"
                       if records else f"no result records under {results_dir} (run `pytest benches -m quick` first)")
    (a, in_a), (b, in_b) = (_side(ref, with_commit, results_dir, cwd) for ref in (ref_a, ref_b))
    fps = tuple({r.machine_fingerprint for r in with_commit if r.record_id in ids} for ids in (in_a, in_b))
    fp = _machine(machine, (a, b), fps)
    here = [r for r in with_commit if r.machine_fingerprint == fp]
    return StoredSides(fp, (a, b), [r for r in here if r.record_id in in_a],
                       [r for r in here if r.record_id in in_b], [r for r in here if r.record_id not in in_b])
