"""A side of an interleaved `research-bench continuous` session, from inside its pytest session: which side this is
($RESEARCH_BENCH_SIDE) and whose turn it is. The turn passes after each measured round, in a new order each round
(`schedule`), so that drift hits every side alike. The baton folder holds `turn`, `step` and `done-<side>`."""
from __future__ import annotations

import itertools
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from llm_research_bench.engine.atomic import write_text

from .sources import engine_dir

ENV = "RESEARCH_BENCH_SIDE"
POLL_S = 0.1


@dataclass(frozen=True)
class Side:
    run: str                    # the continuous session's id (stored in every record of both sides)
    name: str                   # "A" (the baseline), "B", ...
    label: str                  # the ref as the user gave it (HEAD~1)
    commit: str                 # the full SHA the side's records are stored under
    dir: Path                   # the baton folder
    sides: tuple[str, ...]      # every side, in turn order
    parent: int = 0             # the continuous process's id: a side whose parent is gone ends itself
    dirty: bool = False         # the benches come from a working tree with uncommitted changes

    def as_env(self) -> str:
        return json.dumps(asdict(self), default=str)

    def record_extra(self) -> dict:
        """What each record of this side carries in extra['continuous']."""
        return {"run": self.run, "side": self.name, "label": self.label, "engine": engine_dir()}


@lru_cache(maxsize=1)
def current() -> Side | None:
    """This process's side (None outside a continuous session)."""
    raw = os.environ.get(ENV)
    if not raw:
        return None
    d = json.loads(raw)
    return Side(**{**d, "dir": Path(d["dir"]), "sides": tuple(d["sides"])})


def schedule(sides: Sequence[str]) -> list[str]:
    """One cycle of turns: a round per order of the sides, the given order first. Two sides: A B B A."""
    return [s for order in itertools.permutations(sides) for s in order]


def done_file(folder: Path, side: str) -> Path:
    return Path(folder) / f"done-{side}"


def _read(folder: Path, name: str) -> str:
    try:
        return (Path(folder) / name).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def whose_turn(folder: Path) -> str | None:
    return _read(folder, "turn") or None


def current_step(folder: Path) -> int:
    step = _read(folder, "step")
    return int(step) if step.isdigit() else 0


def set_turn(folder: Path, side: str, step: int = 0) -> None:
    """Give the turn to `side`, at place `step` of the schedule."""
    write_text(Path(folder) / "step", str(step))
    write_text(Path(folder) / "turn", side)


def advance(folder: Path, sides: Sequence[str]) -> str | None:
    """Pass the turn on to the next side in the schedule still running; returns it (None: every side ended)."""
    cycle, step = schedule(sides), current_step(folder)
    for k in range(1, len(cycle) + 1):
        side = cycle[(step + k) % len(cycle)]
        if not done_file(folder, side).exists():
            set_turn(folder, side, step + k)
            return side
    return None


def take_turn(side: Side | None = None) -> float:
    """Wait until it is this side's turn (or every other side has ended); returns the seconds waited. A side whose
    continuous process is gone sends itself SIGTERM: nobody would pass it the turn."""
    side = side or current()
    t0 = time.monotonic()
    while side is not None and whose_turn(side.dir) != side.name and \
            not all(done_file(side.dir, s).exists() for s in side.sides if s != side.name):
        if side.parent and os.getppid() != side.parent:       # re-parented: the continuous process is gone
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(POLL_S)
    return time.monotonic() - t0 if side is not None else 0.0


def pass_turn() -> None:
    """Hand the machine to the next turn of the schedule whose side is still running."""
    side = current()
    if side is not None:
        advance(side.dir, side.sides)
