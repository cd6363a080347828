"""Profiles as parameters (which research benches get `profile`, over which profiles, with which marks) and
pipeline benches' pytest-timeout marker. Light: the profiles come from the BenchContext."""
from __future__ import annotations

from typing import Any

import pytest

from .items import is_plugin_fixture, metafunc_is_bench, parametrizes_itself


def wants_profiles(metafunc: pytest.Metafunc) -> bool:
    """A research bench asking for the plugin's `profile` fixture, or carrying @pytest.mark.profiles, and not
    parametrizing `profile` itself (with a marker, argnames=, or an earlier pytest_generate_tests)."""
    names, definition = metafunc.fixturenames, metafunc.definition
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get("profile")
    return (("profile" in names or definition.get_closest_marker("profiles") is not None)
            and metafunc_is_bench(metafunc)      # another project's test: its `profile` or `profiles` is its own
            and not ("profile" in names and defs and not is_plugin_fixture(defs))   # a project's own fixture
            and not parametrizes_itself(definition, "profile")
            and not any("profile" in (getattr(cs, "params", {}) or {}) for cs in getattr(metafunc, "_calls", ()) or ()))


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
    """Pipeline benches (research benches with the `pipeline` marker) get pytest-timeout with their profile's
    timeout_s (signal method, the test call only, so the session warm-up is not counted); the harness re-arms
    it for each run. A bench's own timeout marker wins."""
    for item in items:
        name = getattr(getattr(item, "callspec", None), "params", {}).get("profile")
        own = item.get_closest_marker("timeout") is not None
        if name in ctx.options.profiles and item.get_closest_marker("pipeline") and not own:
            item.add_marker(pytest.mark.timeout(ctx.timeout_for(name), method="signal", func_only=True))
