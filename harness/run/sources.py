"""Which checkout this process imports the engine from: a side of `research-bench continuous` runs its commit's engine
with this checkout's harness. A `sitecustomize.py` first on PYTHONPATH loads this file by path and installs a finder
for `llm_research_bench.engine` before anything imports the engine, so this module imports nothing of it at its top."""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

ENV = "RESEARCH_BENCH_ENGINE_FROM"
ENGINE = "llm_research_bench.engine"

SITECUSTOMIZE = '''"""Written by research-bench continuous: the engine comes from $RESEARCH_BENCH_ENGINE_FROM."""
import importlib.util as _u
_spec = _u.spec_from_file_location("_research_bench_sources", {path!r})
_m = _u.module_from_spec(_spec)
_spec.loader.exec_module(_m)
_m.install_from_env()
'''


class SourceError(RuntimeError):
    """The engine cannot be imported from the checkout asked for; the message says why."""


class EngineFinder(importlib.abc.MetaPathFinder):
    """Finds `llm_research_bench.engine` in `root/engine/` (its submodules follow the package's __path__)."""

    def __init__(self, root: Path):
        self.init = Path(root).resolve() / "engine" / "__init__.py"

    def find_spec(self, fullname, path=None, target=None):
        if fullname != ENGINE:
            return None
        return importlib.util.spec_from_file_location(fullname, self.init,
                                                      submodule_search_locations=[str(self.init.parent)])


def install(root: str | Path) -> EngineFinder:
    """Import `llm_research_bench.engine` from `root/engine/` in this process from now on."""
    root = Path(root).resolve()
    if not (root / "engine" / "__init__.py").is_file():
        raise SourceError(f"{root} has no engine/__init__.py: this commit's engine cannot be imported as {ENGINE}")
    loaded = sys.modules.get(ENGINE)
    if loaded is not None and Path(loaded.__file__).resolve().parent != root / "engine":
        raise SourceError(f"{ENGINE} was already imported from {Path(loaded.__file__).parent}: install the "
                          f"finder before anything imports the engine")
    finder = EngineFinder(root)
    sys.meta_path.insert(0, finder)
    return finder


def install_from_env() -> EngineFinder | None:
    return install(os.environ[ENV]) if os.environ.get(ENV) else None


def engine_dir() -> str:
    """Where this process's engine comes from (a record of a continuous side stores it)."""
    import llm_research_bench.engine as engine
    return str(Path(engine.__file__).resolve().parent)


def write_sitecustomize(folder: str | Path) -> Path:
    """The folder to put first on PYTHONPATH so that a process installs the finder at start-up."""
    from llm_research_bench.engine.atomic import write_text
    return write_text(Path(folder) / "sitecustomize.py", SITECUSTOMIZE.format(path=str(Path(__file__).resolve())))
