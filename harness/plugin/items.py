"""Which tests are research benches, the one rule every hook applies before it touches a test: a test that gets
the plugin's own definition of one of its fixtures (not a `profile` it parametrizes itself), or whose module or
a conftest.py at or above its folder sets `research_benches = True`. Every other test is left as pytest makes
it. Light: imported by the pytest11 entry point, it imports pytest and the standard library only."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: The plugin's fixtures (plugin/fixtures.py).
PLUGIN_FIXTURES = ("research_bench", "record_result", "bench_warmup", "bench_budget", "bench_context",
                   "research_runner", "profile")
#: The module-level name a conftest.py or a test module sets to True to make every test under it a bench.
OPT_IN_NAME = "research_benches"
FIXTURES_MODULE = __name__.rsplit(".", 1)[0] + ".fixtures"


def is_plugin_fixture(defs: Any) -> bool:
    """Whether the fixture definition a test gets (the last, innermost one) is the plugin's."""
    return bool(defs) and getattr(getattr(defs[-1], "func", None), "__module__", "") == FIXTURES_MODULE


def parametrizes_itself(definition: Any, name: str) -> bool:
    """Whether the test parametrizes `name` with its own @pytest.mark.parametrize (positional or argnames=)."""
    for m in definition.iter_markers("parametrize"):
        names = (m.args[0] if m.args else m.kwargs.get("argnames")) or ()
        if name in [str(a).strip() for a in (names.split(",") if isinstance(names, str) else names)]:
            return True
    return False


def uses_plugin_fixtures(fixtureinfo: Any, definition: Any, already_parametrized: set[str] = frozenset()) -> bool:
    """Rule 1 on a test's fixture info (its closure and the definitions it resolves to); a `profile` the test
    parametrizes itself is its own parameter, not the plugin's fixture."""
    closure = getattr(fixtureinfo, "names_closure", ()) or ()
    defs = getattr(fixtureinfo, "name2fixturedefs", {}) or {}
    mine = [n for n in PLUGIN_FIXTURES if n in closure and is_plugin_fixture(defs.get(n))]
    return any(n != "profile" for n in mine) or ("profile" in mine and "profile" not in already_parametrized
                                                and not parametrizes_itself(definition, "profile"))


_OPT_IN_DIRS = pytest.StashKey[tuple]()


def _opted_in_dirs(config: Any) -> tuple[Path, ...]:
    """Folders of the registered conftest.py modules that opt in (recomputed when plugins were registered)."""
    plugins = config.pluginmanager.get_plugins()
    cached = config.stash.get(_OPT_IN_DIRS, None)
    if cached is not None and cached[0] == len(plugins):
        return cached[1]
    dirs = tuple(Path(p.__file__).resolve().parent for p in plugins
                 if getattr(p, OPT_IN_NAME, False) is True and str(getattr(p, "__file__", "")).endswith("conftest.py"))
    config.stash[_OPT_IN_DIRS] = (len(plugins), dirs)
    return dirs


def opted_in(config: Any, module: Any, path: Any) -> bool:
    """Rule 2: the test's module, or a conftest.py at or above its folder, sets `research_benches = True`."""
    if module is not None and getattr(module, OPT_IN_NAME, False) is True:
        return True
    dirs = _opted_in_dirs(config) if path is not None else ()
    return bool(dirs) and any(d in Path(str(path)).resolve().parents for d in dirs)


def metafunc_is_bench(metafunc: Any) -> bool:
    """Rules 1 and 2 at parametrization time (pytest_generate_tests)."""
    # names parametrized by an earlier hook (a project's own pytest_generate_tests)
    done = {name for cs in getattr(metafunc, "_calls", ()) or () for name in getattr(cs, "params", {}) or {}}
    info = getattr(metafunc.definition, "_fixtureinfo", None)
    return (uses_plugin_fixtures(info, metafunc.definition, done)
            or opted_in(metafunc.config, getattr(metafunc, "module", None), getattr(metafunc.definition, "path", None)))


def is_bench(item: Any) -> bool:
    """Rules 1 and 2 on a collected item (a directly parametrized `profile` resolves to pytest's own
    pseudo-fixture there, so it does not count as the plugin's)."""
    return (uses_plugin_fixtures(getattr(item, "_fixtureinfo", None), item)
            or opted_in(item.config, getattr(item, "module", None), getattr(item, "path", None)))
