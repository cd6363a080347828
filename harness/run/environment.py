"""Where a result comes from: the git commit (dirty or not), the branch, and this machine. Cheap (a few `git`
calls, /proc reads; no torch), so the CLI uses it too."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import psutil

from llm_research_bench.engine.envvars import name as envvar_name
from llm_research_bench.engine.names import PATTERN, RULE, BadName
from llm_research_bench.engine.system import cpu_model

#: Set this to pin the machine fingerprint (e.g. a CI runner pool whose hosts differ only in CPU stepping).
FINGERPRINT_ENV = envvar_name("MACHINE_ID")


@dataclass(frozen=True)
class GitInfo:
    commit: str | None          # full SHA of HEAD, None outside a repository
    dirty: bool | None          # tracked files modified (untracked files, e.g. new result records, do not count)
    branch: str | None

    @property
    def short(self) -> str:
        return (self.commit or "nocommit")[:12] + ("+dirty" if self.dirty else "")


@dataclass(frozen=True)
class MachineInfo:
    fingerprint: str            # stable id of this hardware + OS: the results store keys records by it
    os: str
    arch: str
    cpu_model: str
    cpu_logical: int
    ram_gb: int
    gpus: tuple[str, ...] = ()


def git(args: list[str], cwd: str | Path, timeout: float | None = 10, stdin: str | None = None) -> str | None:
    """git's output, stripped; None when it fails or cannot run."""
    try:
        r = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def git_info(cwd: str | Path = ".") -> GitInfo:
    """HEAD's commit, dirty flag and branch; the CI's variables (GITHUB_SHA...) when git metadata is missing."""
    env = os.environ
    commit = git(["rev-parse", "--verify", "HEAD"], cwd)
    dirty = bool(changed_paths(cwd)) if commit else None
    branch = git(["symbolic-ref", "--short", "-q", "HEAD"], cwd) if commit else None     # None when detached
    commit = commit or env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA") or None
    branch = branch or env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME") or env.get("CI_COMMIT_REF_NAME") or None
    return GitInfo(commit, dirty, branch)


def changed_paths(cwd: str | Path = ".") -> list[str]:
    """The tracked files with uncommitted changes in the checkout holding `cwd`, relative to its top."""
    out = git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    return [line.split(maxsplit=1)[1].split(" -> ")[-1] for line in out.splitlines() if len(line.split()) > 1]


def resolve_ref(ref: str, cwd: str | Path = ".") -> str | None:
    """A git ref (HEAD~1, a tag, a branch, a SHA prefix) as a full commit SHA, or None if git does not know it."""
    return git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd)


def git_order(commits, cwd: str | Path = ".") -> tuple[list[str] | None, str]:
    """The commits git knows among `commits`, oldest first, and a note for the reader; (None, why) if git cannot."""
    wanted = {c for c in commits if c}
    if not wanted:
        return [], "no commits"
    out = git(["rev-list", "--topo-order", "--reverse", "--ignore-missing", "--stdin"], cwd, 30,
              "\n".join(sorted(wanted)) + "\n")
    order = [c for c in (out or "").splitlines() if c in wanted]
    if not order:
        why = f"git cannot read the history at {cwd}" if out is None else "git knows none of the stored commits"
        return None, f"{why}: commits are ordered by the time they were measured"
    unknown = len(wanted) - len(order)
    return order, "commits in git history order" + (f"; {unknown} commit(s) git does not know follow, by measuring "
                                                    f"time" if unknown else "")


def commit_url(template: str | None, commit: str | None) -> str | None:
    """A commit's web page from a URL template ({commit}: the full SHA, {short}: its first 12 characters)."""
    if not template or not commit or commit == "nocommit":
        return None
    try:
        return template.format(commit=commit, short=commit[:12])
    except (KeyError, IndexError, ValueError):
        return None


def remote_commit_url(cwd: str | Path = ".") -> str | None:
    """A commit URL template derived from git's `origin` remote (GitHub, GitLab, Bitbucket, Codeberg forms)."""
    url = git(["remote", "get-url", "origin"], cwd) or ""
    m = re.match(r"^(?:https?://(?:[^@/]+@)?|ssh://(?:[^@/]+@)?|[^@/]+@)([^/:]+)[:/](.+?)(?:\.git)?/?$", url.strip())
    if not m:
        return None
    host, path = m.groups()
    page = "-/commit" if "gitlab" in host else "commits" if "bitbucket" in host else "commit"
    return f"https://{host}/{path}/{page}/{{commit}}"


def _gpus() -> tuple[str, ...]:
    """NVIDIA GPUs from the driver's /proc entries (no torch import); empty elsewhere."""
    root = Path("/proc/driver/nvidia/gpus")
    names = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            names += [line.split(":", 1)[1].strip() for line in (d / "information").read_text().splitlines()
                      if line.startswith("Model:")]
        except OSError:
            names.append("nvidia")
    return tuple(names)


def machine_id() -> str | None:
    """$RESEARCH_BENCH_MACHINE_ID (None when unset) as the store's machine folder name: each character outside
    letters, digits, `.`, `_`, `-` becomes `_`; a result engine.names refuses (`..`, `_x`) raises BadName."""
    raw = os.environ.get(FINGERPRINT_ENV)
    if not raw:
        return None
    mapped = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in raw.strip())
    if not PATTERN.fullmatch(mapped):
        raise BadName(f"${FINGERPRINT_ENV}={ascii(raw)} cannot name the machine's results folder ({RULE}; other "
                      f"characters become '_'): set another id, or unset it to use the detected fingerprint")
    return mapped


@lru_cache(maxsize=1)
def machine_info() -> MachineInfo:
    """This machine. The fingerprint hashes OS, architecture, CPU model, logical cores, RAM (whole GB) and
    GPUs, so results of different hardware never mix; $RESEARCH_BENCH_MACHINE_ID overrides it."""
    os_name, arch = platform.system(), platform.machine()
    cpu, logical = cpu_model(), psutil.cpu_count() or 1
    ram = int(round(psutil.virtual_memory().total / 2**30))
    gpus = _gpus()
    basis = json.dumps([os_name, arch, cpu, logical, ram, list(gpus)])
    fp = machine_id() or f"{os_name.lower()}-{arch}-{logical}c-{hashlib.sha256(basis.encode()).hexdigest()[:10]}"
    return MachineInfo(fp, os_name, arch, cpu, logical, ram, gpus)
