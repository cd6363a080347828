"""Profiles as parameters: which benches get the `profile` parameter, over which profiles, with which marks,
and the pytest-timeout marker pipeline benches get. Called by the plugin's collection hooks."""
from __future__ import annotations

from typing import Any

import pytest

from ..run.context import BenchContext, HarnessOptions


def wants_profiles(metafunc: pytest.Metafunc) -> bool:
    """A bench asking for the plugin's `profile` fixture, or carrying @pytest.mark.profiles, and not
    parametrizing `profile` itself."""
    marker = metafunc.definition.get_closest_marker("profiles")
    if "profile" not in metafunc.fixturenames and marker is None:
        return False
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get("profile")
    if defs and getattr(defs[-1].func, "__module__", "") != __name__.rsplit(".", 1)[0] + ".fixtures":
        return False                       # a project's own `profile` fixture: not ours to parametrize
    for m in metafunc.definition.iter_markers("parametrize"):
        if m.args:
            names = m.args[0].split(",") if isinstance(m.args[0], str) else m.args[0]
            if "profile" in [str(a).strip() for a in names]:
                return False               # the bench parametrizes `profile` itself
    return True


def profile_names(opts: HarnessOptions, marker: Any, where: str) -> list[str]:
    """The marker's profiles (default: every profile), limited by --research-profile."""
    names = list(marker.args) if marker is not None and marker.args else list(opts.profiles)
    unknown = [n for n in names if n not in opts.profiles]
    if unknown:
        raise pytest.UsageError(f"{where}: @pytest.mark.profiles names unknown profile '{unknown[0]}'; known: "
                                f"{', '.join(opts.profiles)}")
    return [n for n in names if not opts.selected or n in opts.selected]


def parametrize_profiles(metafunc: pytest.Metafunc, opts: HarnessOptions) -> None:
    names = profile_names(opts, metafunc.definition.get_closest_marker("profiles"), metafunc.definition.nodeid)
    if "profile" not in metafunc.fixturenames:
        metafunc.fixturenames.append("profile")   # a bench with only the marker still gets the fixture
    metafunc.parametrize("profile", [pytest.param(n, marks=getattr(pytest.mark, n), id=n) for n in names],
                         indirect=True)


def add_timeouts(items: list, ctx: BenchContext) -> None:
    """Pipeline benches get pytest-timeout with their profile's timeout_s (signal method, the test call only,
    so the session warm-up is not counted); the harness re-arms it for each run. A bench's own timeout
    marker wins."""
    for item in items:
        cs = getattr(item, "callspec", None)
        name = cs.params.get("profile") if cs else None
        if name and item.get_closest_marker("pipeline") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(ctx.timeout_for(name), method="signal", func_only=True))
