"""Research bench items: which tests are benches (the one rule every hook applies first; every other test is left as
pytest makes it), their profile parameters, and opt-in markers. Light: imported by the
pytest11 entry point, it imports pytest and the standard library only."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

#: The plugin's fixtures (plugin/fixtures.py).
PLUGIN_FIXTURES = ("research_bench", "record_result", "bench_warmup", "bench_budget", "bench_context",
                   "research_runner", "profile")
#: The module-level name a conftest.py or a test module sets to True to make every test under it a bench.
OPT_IN_NAME = "research_benches"
FIXTURES_MODULE = __name__.rsplit(".", 1)[0] + ".fixtures"
#: Opt-in markers: a research bench carrying one runs only when -m names it or the command line names its file.
OPT_IN_MARKERS = ("quality", "breakdown", "efficiency", "memory_pressure", "calibration")
BENCH_KEY = pytest.StashKey[bool]()         # set by the collection hook on research benches
_OPT_IN_DIRS = pytest.StashKey[tuple]()


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


def is_bench(item: Any, parametrized: set[str] = frozenset()) -> bool:
    """Rule 1: the test gets the plugin's definition of one of its fixtures (not a `profile` it parametrizes
    itself, or an earlier hook did: `parametrized`); rule 2: its module, or a conftest.py at or above its folder,
    sets `research_benches = True`. On a collected item or a metafunc's definition."""
    info = getattr(item, "_fixtureinfo", None)
    closure, defs = getattr(info, "names_closure", ()) or (), getattr(info, "name2fixturedefs", {}) or {}
    mine = [n for n in PLUGIN_FIXTURES if n in closure and is_plugin_fixture(defs.get(n))]
    if any(n != "profile" for n in mine) or ("profile" in mine and "profile" not in parametrized
                                             and not parametrizes_itself(item, "profile")):
        return True
    if getattr(getattr(item, "module", None), OPT_IN_NAME, False) is True:
        return True
    path, dirs = getattr(item, "path", None), _opted_in_dirs(item.config)
    return path is not None and any(d in Path(str(path)).resolve().parents for d in dirs)


def wants_profiles(metafunc: pytest.Metafunc) -> bool:
    """A research bench asking for the plugin's `profile` fixture, or carrying @pytest.mark.profiles, and not
    parametrizing `profile` itself (with a marker, argnames=, or an earlier pytest_generate_tests)."""
    names, definition = metafunc.fixturenames, metafunc.definition
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get("profile")
    done = {name for cs in getattr(metafunc, "_calls", ()) or () for name in getattr(cs, "params", {}) or {}}
    return (("profile" in names or definition.get_closest_marker("profiles") is not None)
            and is_bench(definition, done)       # another project's test: its `profile` or `profiles` is its own
            and not ("profile" in names and defs and not is_plugin_fixture(defs))   # a project's own fixture
            and not parametrizes_itself(definition, "profile") and "profile" not in done)


def profile_names(opts: Any, marker: Any, where: str) -> list[str]:
    """The marker's profiles (default: every profile), limited by --research-profile."""
    names = list(marker.args) if marker is not None and marker.args else list(opts.profiles)
    unknown = [n for n in names if n not in opts.profiles]
    if unknown:
        raise pytest.UsageError(f"{where}: @pytest.mark.profiles names unknown profile '{unknown[0]}'; known: "
                                f"{', '.join(opts.profiles)}")
    return [n for n in names if not opts.selected or n in opts.selected]


def parametrize_profiles(metafunc: pytest.Metafunc, opts: Any) -> None:
    """Each profile's marker (`-m quick`) is registered here, when the plugin first parametrizes a bench, so that
    --strict-markers accepts them and sessions without benches are left as they are."""
    names = profile_names(opts, metafunc.definition.get_closest_marker("profiles"), metafunc.definition.nodeid)
    known = {line.split(":")[0].split("(")[0].strip() for line in metafunc.config.getini("markers")}
    for n in opts.profiles:
        if n not in known:
            metafunc.config.addinivalue_line("markers", f"{n}: bench instances on the {n} profile")
    if "profile" not in metafunc.fixturenames:
        metafunc.fixturenames.append("profile")   # a bench with only the marker still gets the fixture
    metafunc.parametrize("profile", [pytest.param(n, marks=getattr(pytest.mark, n), id=n) for n in names],
                         indirect=True)


def add_timeouts(items: list, ctx: Any) -> None:
    """Pipeline benches get pytest-timeout with their profile's timeout_s (signal method, the test call only, so
    the session warm-up is not counted), re-armed for each run. A bench's own timeout marker wins."""
    for item in items:
        name = getattr(getattr(item, "callspec", None), "params", {}).get("profile")
        own = item.get_closest_marker("timeout") is not None
        if name in ctx.options.profiles and item.get_closest_marker("pipeline") and not own:
            item.add_marker(pytest.mark.timeout(ctx.timeout_for(name), method="signal", func_only=True))


def mentions_marker(markexpr: str | None, marker: str) -> bool:
    """Whether a -m expression names `marker` as a whole word ("quick and quality" -> True)."""
    return bool(markexpr) and re.search(rf"(?<![\w.]){re.escape(marker)}(?![\w.])", markexpr) is not None


def deselect_opt_in(items: list, config: Any, among: Any = None) -> str | None:
    """Remove (in place, reported as deselected) the items (of `among`: default all) that carry an opt-in marker
    the run did not ask for, by -m or by naming their file or node id; the line saying what was left out."""
    root = Path(str(config.invocation_params.dir))
    named = {(root / p).resolve() for p in (str(a).split("::", 1)[0] for a in config.args) if p}
    left: dict[str, int] = {}
    for m in (m for m in OPT_IN_MARKERS if not mentions_marker(config.option.markexpr, m)):
        dropped = [i for i in items if i.get_closest_marker(m) and (among is None or i in among)
                   and Path(str(i.path)).resolve() not in named]
        if dropped:
            gone = set(dropped)
            items[:] = [i for i in items if i not in gone]
            config.hook.pytest_deselected(items=dropped)
            left[m] = len(dropped)
    return (f"research-bench: not selected (opt-in): {', '.join(f'{n} {m}' for m, n in left.items())} bench "
            f"instance(s); run them with {' or '.join(f'-m {m}' for m in left)} (or name their file)") if left else None
