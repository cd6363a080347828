"""The session-wide context every bench run shares: the parsed options (HarnessOptions, built by plugin/options.py
or a script), the budgets' machine class, and git and machine facts, looked up once, lazily."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from llm_research_bench import __version__ as PLUGIN_VERSION

from ..analysis.names import Threshold
from ..records import ResultRecord
from . import environment
from .interleave import ENGINE_ENV, current as current_side
from .verdicts import BudgetSpec


class UnknownProfile(ValueError):
    """A profile name no profile file defines; the message lists the known ones."""


@dataclass
class HarnessOptions:
    profiles: dict[str, Any]                 # every known profile (built-in + user file), name -> Profile
    selected: list[str] | None               # --research-profile; None = all
    profiles_file: str | None
    machine_class: str | None                # --research-machine-class override
    budget_scale: float = 1.0
    results_dir: Path = Path("results")
    rounds: int = 1
    warmup_runs: int = 0
    compare: str | None = None               # None: off; "": the default baseline; else a ref
    compare_commit: str | None = None        # the ref resolved to a commit (when given)
    compare_name: str | None = None          # ... or to a name saved with --research-save
    compare_fail: list[Threshold] = field(default_factory=list)
    summary_md: Path | None = None
    memray: bool = False
    isolate: bool = False
    enforce_memory: bool = False
    backend: str = "llamacpp"
    corpus: str | None = None
    save: str | None = None                  # --research-save NAME: stored in each record (extra.saved_as)
    json_path: Path | None = None            # --research-json FILE: the session as one JSON file
    commit_url: str | None = None            # URL template linking commits ({commit}, {short})
    remeasure: int = 2                       # extra attempts a run timed on a busy machine gets
    unverified: str = "pass"                 # what a time miss seen only under contention does: pass | fail


def profile_digest(profile: Any) -> str:
    """What a profile asks of a run (all but its name, description, budgets and source): same digest, same settings."""
    d = {k: getattr(profile, k) for k in profile.__dataclass_fields__
         if k not in ("name", "description", "budgets", "source")}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class BenchContext:
    """Shared by every bench of a session: built by the plugin, also usable without pytest (scripts)."""
    options: HarnessOptions
    rootpath: Path
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    plugin_version: str = PLUGIN_VERSION
    worker: str | None = None                            # xdist worker id
    records: list[ResultRecord] = field(default_factory=list)   # written by this process, in order
    record_paths: list[Path] = field(default_factory=list)      # where the store took them, in the same order
    unsaved: list[str] = field(default_factory=list)            # one line per record the store could not take

    @cached_property
    def git(self) -> environment.GitInfo:
        """This checkout's commit; for a side of `research-bench continuous`, its engine's worktree's (detached:
        no branch), dirty when its benches (the working tree's) have uncommitted changes."""
        side_root = os.environ.get(ENGINE_ENV)
        if side_root:
            side_git = environment.git_info(side_root)
            side = current_side()
            return dataclasses.replace(side_git, branch=None, dirty=bool(side_git.dirty or (side and side.dirty)))
        return environment.git_info(self.rootpath)

    @cached_property
    def machine(self) -> environment.MachineInfo:
        return environment.machine_info()

    @cached_property
    def detected_machine_class(self) -> str:
        """The budget class of this machine (engine.system; imports torch once to see CUDA)."""
        from llm_research_bench.engine.system import current_machine_class
        return current_machine_class()

    @property
    def machine_class(self) -> str:
        return self.options.machine_class or self.detected_machine_class

    def profile(self, name_or_profile: Any) -> Any:
        if not isinstance(name_or_profile, str):
            return name_or_profile
        try:
            return self.options.profiles[name_or_profile]
        except KeyError:
            raise UnknownProfile(f"unknown profile '{name_or_profile}'; known: {', '.join(self.options.profiles)}") \
                from None

    def timeout_for(self, profile: Any) -> float:
        """The profile's timeout_s, stretched (never shrunk) by the budget scale: a slower machine gets more time."""
        return float(self.profile(profile).timeout_s) * max(1.0, self.options.budget_scale)

    def budget(self, profile: Any) -> BudgetSpec:
        return BudgetSpec.from_profile(self.profile(profile), self.machine_class, self.options.budget_scale)

    def with_options(self, **changes: Any) -> "BenchContext":
        """This context with some options changed (a bench's marker): same session, records and looked-up facts."""
        if not changes:
            return self
        other = dataclasses.replace(self, options=dataclasses.replace(self.options, **changes))
        looked_up = ("git", "machine", "detected_machine_class")
        other.__dict__.update({k: v for k, v in self.__dict__.items() if k in looked_up})
        return other
