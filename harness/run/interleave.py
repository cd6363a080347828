"""A side of an interleaved `research-bench continuous` session, from inside its pytest session: where its engine
comes from ($RESEARCH_BENCH_ENGINE_FROM), which side it is ($RESEARCH_BENCH_SIDE) and whose turn it is. A
`sitecustomize.py` loads this file by path before anything imports the engine: it imports nothing of it at its top."""
from __future__ import annotations

import importlib.abc
import importlib.util
import itertools
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

ENGINE_ENV = "RESEARCH_BENCH_ENGINE_FROM"
SIDE_ENV = "RESEARCH_BENCH_SIDE"
ENGINE = "llm_research_bench.engine"
POLL_S = 0.1
SITECUSTOMIZE = '''"""Written by research-bench continuous: the engine comes from $RESEARCH_BENCH_ENGINE_FROM."""
import importlib.util as _u, os as _os, sys as _sys
_spec = _u.spec_from_file_location("_research_bench_interleave", {path!r})
_m = _sys.modules[_spec.name] = _u.module_from_spec(_spec)
_spec.loader.exec_module(_m)
if _os.environ.get(_m.ENGINE_ENV):
    _m.install(_os.environ[_m.ENGINE_ENV])
'''


class SourceError(RuntimeError):
    """The engine cannot be imported from the checkout asked for; the message says why."""


@dataclass(frozen=True)
class EngineFinder(importlib.abc.MetaPathFinder):
    """Finds `llm_research_bench.engine` at `init` (a checkout's engine/__init__.py; submodules follow its __path__)."""
    init: Path

    def find_spec(self, fullname, path=None, target=None):
        if fullname == ENGINE:
            return importlib.util.spec_from_file_location(fullname, self.init,
                                                          submodule_search_locations=[str(self.init.parent)])
        return None


def install(root: str | Path) -> EngineFinder:
    """Import `llm_research_bench.engine` from `root/engine/` in this process from now on."""
    root = Path(root).resolve()
    if not (root / "engine" / "__init__.py").is_file():
        raise SourceError(f"{root} has no engine/__init__.py: this commit's engine cannot be imported as {ENGINE}")
    loaded = sys.modules.get(ENGINE)
    if loaded is not None and Path(loaded.__file__).resolve().parent != root / "engine":
        raise SourceError(f"{ENGINE} was already imported from {Path(loaded.__file__).parent}: install the "
                          f"finder before anything imports the engine")
    finder = EngineFinder(root / "engine" / "__init__.py")
    sys.meta_path.insert(0, finder)
    return finder


def write_sitecustomize(folder: str | Path) -> Path:
    """The folder to put first on PYTHONPATH so that a process installs the finder at start-up."""
    from llm_research_bench.engine.atomic import write_text
    return write_text(Path(folder) / "sitecustomize.py", SITECUSTOMIZE.format(path=str(Path(__file__).resolve())))


@dataclass(frozen=True)
class Side:
    run: str                    # the continuous session's id (stored in every record of both sides)
    name: str                   # "A" (the baseline), "B", ...
    label: str                  # the ref as the user gave it (HEAD~1)
    commit: str                 # the full SHA the side's records are stored under
    dir: Path                   # the baton folder: `turn` (the side and its place in the schedule), `done-<side>`
    sides: tuple[str, ...]      # every side, in turn order
    parent: int = 0             # the continuous process's id: a side whose parent is gone ends itself
    dirty: bool = False         # the benches come from a working tree with uncommitted changes

    def as_env(self) -> str:
        return json.dumps(asdict(self), default=str)

    def record_extra(self) -> dict:
        """What each record of this side carries in extra['continuous'], with where its engine came from."""
        import llm_research_bench.engine as engine
        return {"run": self.run, "side": self.name, "label": self.label,
                "engine": str(Path(engine.__file__).resolve().parent)}


@lru_cache(maxsize=1)
def current() -> Side | None:
    """This process's side (None outside a continuous session)."""
    d = json.loads(os.environ.get(SIDE_ENV) or "null")
    return Side(**{**d, "dir": Path(d["dir"]), "sides": tuple(d["sides"])}) if d else None


def schedule(sides: Sequence[str]) -> list[str]:
    """One cycle of turns, a round per order of the sides (drift hits every side alike). Two sides: A B B A."""
    return [s for order in itertools.permutations(sides) for s in order]


def done_file(folder: Path, side: str) -> Path:
    return Path(folder) / f"done-{side}"


def _turn(folder: Path) -> tuple[str | None, int]:
    try:
        side, step = (Path(folder) / "turn").read_text(encoding="utf-8").split()
        return side, int(step)
    except (OSError, ValueError):
        return None, 0


def whose_turn(folder: Path) -> str | None:
    return _turn(folder)[0]


def current_step(folder: Path) -> int:
    return _turn(folder)[1]


def set_turn(folder: Path, side: str, step: int = 0) -> None:
    """Give the turn to `side`, at place `step` of the schedule."""
    from llm_research_bench.engine.atomic import write_text
    write_text(Path(folder) / "turn", f"{side} {step}")


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
    if (side := current()) is not None:
        advance(side.dir, side.sides)
