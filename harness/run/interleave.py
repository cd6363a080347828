"""A side of an interleaved `research-bench continuous` session, seen from inside its pytest session: which side
this process is, the commit its records are stored under, and whose turn it is to use the machine.

The coordinator (run/continuous.py) starts one pytest session per side with RESEARCH_BENCH_SIDE set to a JSON
object {"run", "side", "label", "commit", "dir", "sides"}. One side uses the machine at a time: a side holds the
turn from its start (the coordinator starts its process when its turn first comes: start-up, warm-up, warm-up
runs and its first measured round), and passes it on after each measured round. Each round runs the sides in
another order (`schedule`: A B, B A, A B, ... for two sides; every order of three in turn), so drift and other
processes' load hit every side alike, and no side always runs first or always follows the same other side (in a
fixed A A2 B order, the two identical sides A and A2 once came out 3.4 % apart). After a bench instance's last
round a side keeps the turn (through its next bench's warm-up, or its session's end, so that neither overlaps the other
side's runs); when its session ends, the coordinator passes the turn on. The side that waits sleeps.

The baton is a folder: `turn` holds the name of the side whose turn it is; `step` the turn's place in the schedule;
`done-<side>` exists once a side's process has ended (the coordinator writes it), so that nobody waits for a side
that is gone. Only the side holding the turn (or the coordinator, once that side has ended) writes them.
"""
from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

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

    def as_env(self) -> str:
        return json.dumps({"run": self.run, "side": self.name, "label": self.label, "commit": self.commit,
                           "dir": str(self.dir), "sides": list(self.sides)})

    def record_extra(self) -> dict:
        """What each record of this side carries in extra['continuous']."""
        from .sources import engine_dir
        return {"run": self.run, "side": self.name, "label": self.label, "engine": engine_dir()}


@lru_cache(maxsize=1)
def current() -> Side | None:
    """This process's side (None outside a continuous session)."""
    raw = os.environ.get(ENV)
    if not raw:
        return None
    d = json.loads(raw)
    return Side(d["run"], d["side"], d.get("label", d["side"]), d["commit"], Path(d["dir"]), tuple(d["sides"]))


def schedule(sides: Sequence[str]) -> list[str]:
    """One cycle of turns: a round per order of the sides (itertools.permutations, so the first round is the given
    order), the rounds one after the other. Two sides: A B B A; three: A A2 B, A B A2, A2 A B, ... (18 turns)."""
    return [s for order in itertools.permutations(sides) for s in order]


def turn_file(folder: Path) -> Path:
    return Path(folder) / "turn"


def step_file(folder: Path) -> Path:
    return Path(folder) / "step"


def done_file(folder: Path, side: str) -> Path:
    return Path(folder) / f"done-{side}"


def whose_turn(folder: Path) -> str | None:
    try:
        return turn_file(folder).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def set_turn(folder: Path, side: str, step: int = 0) -> None:
    """Give the turn to `side`, at place `step` of the schedule."""
    from llm_research_bench.engine.atomic import write_text
    write_text(step_file(folder), str(step))
    write_text(turn_file(folder), side)


def current_step(folder: Path) -> int:
    try:
        return int(step_file(folder).read_text(encoding="utf-8").strip() or 0)
    except (OSError, ValueError):
        return 0


def is_done(folder: Path, side: str) -> bool:
    return done_file(folder, side).exists()


def next_turn(folder: Path, sides: Sequence[str], step: int) -> tuple[str, int] | None:
    """The next turn of the schedule after place `step` whose side's process has not ended, and its place (None:
    every side has ended)."""
    cycle = schedule(sides)
    for k in range(1, len(cycle) + 1):
        s = cycle[(step + k) % len(cycle)]
        if not is_done(folder, s):
            return s, step + k
    return None


def advance(folder: Path, sides: Sequence[str]) -> str | None:
    """Pass the turn on to the next turn of the schedule (see next_turn); returns whose it is now (None: nobody's,
    every side has ended)."""
    nxt = next_turn(folder, sides, current_step(folder))
    if nxt is not None:
        set_turn(folder, *nxt)
    return nxt[0] if nxt else None


def take_turn(side: Side | None = None) -> float:
    """Wait until it is this side's turn (or every other side has ended); returns the seconds waited."""
    side = side or current()
    if side is None:
        return 0.0
    t0 = time.monotonic()
    while True:
        turn = whose_turn(side.dir)
        if turn == side.name or all(is_done(side.dir, s) for s in side.sides if s != side.name):
            return time.monotonic() - t0
        time.sleep(POLL_S)


def pass_turn(side: Side | None = None) -> None:
    """Hand the machine to the next turn of the schedule whose side is still running (this side's own next round,
    when the schedule says so, or when every other side has ended)."""
    side = side or current()
    if side is None:
        return
    advance(side.dir, side.sides)
