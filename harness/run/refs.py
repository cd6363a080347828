"""What a REF names (a saved session name, a commit git knows, a stored commit prefix, `REF+dirty`), and the
default results folder: one answer for the research-bench commands and the plugin."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .environment import _git, resolve_ref

DIRTY = "+dirty"


class RefError(ValueError):
    """A REF that is the prefix of several stored commits."""


@dataclass(frozen=True)
class Ref:
    """What a REF names: a --research-save name, or a commit (its clean runs, or with `dirty` its dirty-tree runs).
    `stored` says whether the records looked in hold runs of that commit."""
    name: str | None = None
    commit: str | None = None
    dirty: bool = False
    stored: bool = False


def default_results_dir(root: str | Path = ".") -> Path:
    """$RESEARCH_BENCH_RESULTS_DIR, else `results/` at the top of the git checkout holding `root`, else in `root`."""
    from llm_research_bench.engine.envvars import env
    given = env("RESULTS_DIR")
    if given:
        return Path(given)
    root = Path(root).resolve()
    return Path(_git(["rev-parse", "--show-toplevel"], root) or root) / "results"


def resolve_commit(ref: str, stored: Iterable[str], cwd: str | Path = ".") -> str | None:
    """`ref` as one full commit: git's answer when it has stored runs, else the one stored commit starting with
    `ref`, else git's answer (None when git does not know it either)."""
    commit = resolve_ref(ref, cwd)
    stored = set(stored)
    if commit in stored:
        return commit
    matches = sorted(c for c in stored if c.startswith(ref))
    if len(matches) > 1:
        raise RefError(f"'{ref}' matches several stored commits: {', '.join(m[:12] for m in matches)}")
    return matches[0] if matches else commit


def resolve(ref: str, records, cwd: str | Path = ".") -> Ref | None:
    """What `ref` names among `records` (read from the store): a saved name first, then a commit (`REF+dirty`:
    that commit's dirty-tree runs). None when it names nothing."""
    from ..analysis.baseline import saved_as
    if any(saved_as(r) == ref for r in records):
        return Ref(name=ref)
    dirty = ref.endswith(DIRTY)
    base = ref[: -len(DIRTY)] if dirty else ref
    stored = {r.commit for r in records if r.commit and bool(r.dirty) == dirty}
    commit = resolve_commit(base, stored, cwd)
    return Ref(commit=commit, dirty=dirty, stored=commit in stored) if commit else None


@dataclass
class StoredSides:
    """Two REFs' records on one machine, and that machine's other records (the noise history)."""
    machine: str
    labels: tuple[str, str]
    base: list
    current: list
    history: list


def _side(ref: str, records: list, results_dir: Path, cwd: Path) -> tuple[str, set[str]]:
    """(label, record ids) of one REF: a saved name's newest session on each machine, or a commit's runs."""
    from ..analysis.baseline import saved_session
    found = resolve(ref, records, cwd)
    if found is None:
        raise RefError(f"'{ref}': no session was saved under this name, git does not know it and no stored commit "
                       f"starts with it")
    if found.name:
        ids = {r.record_id for fp in {r.machine_fingerprint for r in records}
               for r in saved_session([r for r in records if r.machine_fingerprint == fp], ref)}
        return f"'{ref}'", ids
    if not found.stored:
        raise RefError(f"'{ref}' is commit {found.commit[:12]}, which has no {'dirty-tree' if found.dirty else 'clean'}"
                       f" results under {results_dir}" + ("" if found.dirty else f" (its dirty-tree runs: '{ref}+dirty')"))
    return found.commit[:12] + (DIRTY if found.dirty else ""), \
        {r.record_id for r in records if r.commit == found.commit and bool(r.dirty) == found.dirty}


def _machine(machine: str | None, labels: tuple[str, str], fps: tuple[set, set]) -> str:
    """The machine to compare on: the one asked for, else this one, else the one with results of both sides."""
    from .environment import machine_info
    both = fps[0] & fps[1]
    if machine is not None:
        if machine not in both:
            raise RefError(f"machine {machine} lacks results of {labels[0] if machine not in fps[0] else labels[1]}")
        return machine
    here = machine_info().fingerprint
    if here in both or len(both) == 1:
        return here if here in both else next(iter(both))
    if not both:
        raise RefError(f"no machine has results of both {labels[0]} ({', '.join(sorted(fps[0]))}) and {labels[1]} "
                       f"({', '.join(sorted(fps[1]))}): timings of different machines are not compared")
    raise RefError(f"several machines have results of both commits: pass --machine ({', '.join(sorted(both))})")


def stored_sides(ref_a: str, ref_b: str, records, *, results_dir: str | Path, machine: str | None = None,
                 cwd: str | Path = ".") -> StoredSides:
    """The records of REF_A (baseline) and REF_B (current) on one machine; RefError says why there are none."""
    records = [r for r in records if r.commit]
    if not records:
        raise RefError(f"no result records under {results_dir} (run `pytest benches -m quick` first)")
    (a, in_a), (b, in_b) = (_side(ref, records, Path(results_dir), Path(cwd)) for ref in (ref_a, ref_b))
    fps = tuple({r.machine_fingerprint for r in records if r.record_id in ids} for ids in (in_a, in_b))
    fp = _machine(machine, (a, b), fps)
    here = [r for r in records if r.machine_fingerprint == fp]
    return StoredSides(fp, (a, b), [r for r in here if r.record_id in in_a], [r for r in here if r.record_id in in_b],
                       [r for r in here if r.record_id not in in_b])
