"""Research profiles: loaded from the built-in TOML, optionally overlaid by a user's TOML file.

Every problem in a profile file is reported as one ProfileError naming the file, the profile and the key. Every
number is finite and in range (RANGES): a timeout of `inf`, a threshold of `nan` or a context of 10^13 tokens is
refused here; a context larger than the model's trained context is refused when the model loads (the backend
reads it from the model file).
"""
from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import read_regular
from .backends import BACKEND_NAMES
from .envvars import env
from .names import PATTERN, RULE

BUILTIN_FILE = Path(__file__).with_name("profiles.toml")
REFERENCE_CLASS = "apple-m1-16gb"
BACKENDS = BACKEND_NAMES          # alias kept for importers; the one list is engine.backends.BACKEND_NAMES


class ProfileError(ValueError):
    """A profile file, profile name or profile key is wrong. The message names file, profile and key."""

    def __init__(self, message: str, *, file: str | Path | None = None, profile: str | None = None,
                 key: str | None = None):
        where = ", ".join(p for p in (f"file {file}" if file else "", f"profile '{profile}'" if profile else "",
                                       f"key '{key}'" if key else "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.profile, self.key = file, profile, key


@dataclass(frozen=True)
class Budget:
    """Time band and memory limit of one profile on one machine class."""
    machine_class: str
    time_lower_s: float
    time_upper_s: float
    memory_mb: float
    is_reference_fallback: bool = False   # True when the machine's own class had no entry


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    context_window: int
    batch_size: int
    min_batch_size: int
    max_batch_size: int
    ef_search: int
    retrieve_k: int
    max_tokens: int
    claim_tokens: int
    synthesis_tokens: int
    timeout_s: float
    novelty_threshold: float
    citation_floor: float
    models: dict[str, str]
    grounded_floor: float = 0.0      # gate on the grounded-citation rate too (0: measured and stored, not gated)
    claim_mode: str = "extractive"   # engine.grammar.CLAIM_MODES: spans copied from the cited passage, or own words
    first_batch_size: int = 0        # passages in the first evidence batch (0: batch_size), small so it streams soon
    first_batch_tokens: int = 0      # prompt-token budget of the first batch (0: none); its last passage is cut
    budgets: dict[str, Budget] = field(default_factory=dict)
    source: str = str(BUILTIN_FILE)

    def budget_for(self, machine_class: str) -> Budget:
        if machine_class in self.budgets:
            return self.budgets[machine_class]
        ref = self.budgets.get(REFERENCE_CLASS) or next(iter(self.budgets.values()))
        return Budget(machine_class, ref.time_lower_s, ref.time_upper_s, ref.memory_mb, is_reference_fallback=True)

    def model_for(self, backend: str) -> str:
        try:
            return self.models[backend]
        except KeyError:
            raise ProfileError(f"no model named for backend '{backend}' (add models.{backend})",
                               file=self.source, profile=self.name, key="models") from None

    def with_overrides(self, **changes: Any) -> "Profile":
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data.update(changes)
        return Profile(**data)


#: Ranges of the numbers in a profile (integers not listed: 1..MAX_COUNT): far beyond any useful value, and well
#: inside what the runtimes accept (llama.cpp takes 32-bit counts; timers overflow on huge seconds).
MAX_CONTEXT = 1_048_576            # tokens (2^20); the model's trained context is checked when it loads
MAX_COUNT = 1_048_576
MAX_SECONDS = 86_400.0             # one day
MAX_MEMORY_MB = 16_777_216.0       # 16 TiB
RANGES: dict[str, tuple[float, float]] = {
    "context_window": (512, MAX_CONTEXT), "timeout_s": (0.0, MAX_SECONDS), "novelty_threshold": (0.0, 1.0),
    "citation_floor": (0.0, 1.0), "grounded_floor": (0.0, 1.0), "time_s": (0.0, MAX_SECONDS), "memory_mb": (0.0, MAX_MEMORY_MB),
}

_INT_KEYS = ("context_window", "batch_size", "min_batch_size", "max_batch_size", "ef_search", "retrieve_k",
             "max_tokens", "claim_tokens", "synthesis_tokens")
_NUM_KEYS = ("timeout_s", "novelty_threshold", "citation_floor")
_REQUIRED = _INT_KEYS + _NUM_KEYS + ("models", "budgets")
_KNOWN = set(_REQUIRED) | {"description", "grounded_floor", "claim_mode", "first_batch_size", "first_batch_tokens"}
CLAIM_MODES = ("abstractive", "extractive")      # engine.grammar's; repeated here so profiles import no grammar


def _check_int(v: Any, *, where: dict, key: str, minimum: int = 1) -> int:
    lo, hi = RANGES.get(key, (minimum, MAX_COUNT))
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProfileError(f"must be an integer, got {type(v).__name__} {v!r}", key=key, **where)
    if not lo <= v <= hi:
        raise ProfileError(f"must be between {lo:,.0f} and {hi:,.0f}, got {v:,}", key=key, **where)
    return v


def _check_num(v: Any, *, where: dict, key: str, lo: float = 0.0, hi: float | None = None,
               strict: bool = True) -> float:
    """A finite number in [lo, hi] (lo excluded when `strict`); the range of `key` comes from RANGES."""
    short = key.rsplit(".", 1)[-1]
    if short in RANGES:
        lo, hi = RANGES[short]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProfileError(f"must be a number, got {type(v).__name__} {v!r}", key=key, **where)
    if not math.isfinite(v):
        raise ProfileError(f"must be a finite number, got {v!r}", key=key, **where)
    if (v <= lo if strict else v < lo) or (hi is not None and v > hi):
        bound = f"> {lo:g}" if strict else f">= {lo:g}"
        raise ProfileError(f"must be {bound}{f' and <= {hi:g}' if hi is not None else ''}, got {v:g}", key=key,
                           **where)
    return float(v)


def _parse_budgets(raw: Any, where: dict) -> dict[str, Budget]:
    if not isinstance(raw, dict) or not raw:
        raise ProfileError("must be a table of machine classes, e.g. [profiles.X.budgets.apple-m1-16gb]",
                           key="budgets", **where)
    out = {}
    for cls, b in raw.items():
        key = f"budgets.{cls}"
        if not isinstance(b, dict):
            raise ProfileError("must be a table with time_s and memory_mb", key=key, **where)
        unknown = set(b) - {"time_s", "memory_mb"}
        if unknown:
            raise ProfileError(f"unknown key(s) {sorted(unknown)}; allowed: time_s, memory_mb",
                               key=f"{key}.{sorted(unknown)[0]}", **where)
        for k in ("time_s", "memory_mb"):
            if k not in b:
                raise ProfileError("is missing", key=f"{key}.{k}", **where)
        t = b["time_s"]
        if not (isinstance(t, list) and len(t) == 2):
            raise ProfileError(f"must be [lower, upper] seconds, got {t!r}", key=f"{key}.time_s", **where)
        lo = _check_num(t[0], where=where, key=f"{key}.time_s", strict=False)
        hi = _check_num(t[1], where=where, key=f"{key}.time_s")
        if lo > hi:
            raise ProfileError(f"lower bound {lo} is above upper bound {hi}", key=f"{key}.time_s", **where)
        mem = _check_num(b["memory_mb"], where=where, key=f"{key}.memory_mb")
        out[cls] = Budget(cls, lo, hi, mem)
    return out


def _parse_profile(name: str, raw: Any, source: str) -> Profile:
    where = {"file": source, "profile": name}
    if not PATTERN.fullmatch(name):
        raise ProfileError(f"profile name {ascii(name)} is not valid ({RULE})", file=source)
    if not isinstance(raw, dict):
        raise ProfileError("must be a table", **where)
    unknown = set(raw) - _KNOWN
    if unknown:
        raise ProfileError(f"unknown key; known keys: {', '.join(sorted(_KNOWN))}", key=sorted(unknown)[0], **where)
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ProfileError("is missing", key=missing[0], **where)
    vals: dict[str, Any] = {k: _check_int(raw[k], where=where, key=k) for k in _INT_KEYS}
    vals["timeout_s"] = _check_num(raw["timeout_s"], where=where, key="timeout_s")
    vals["novelty_threshold"] = _check_num(raw["novelty_threshold"], where=where, key="novelty_threshold",
                                           hi=1.0, strict=False)
    vals["citation_floor"] = _check_num(raw["citation_floor"], where=where, key="citation_floor", hi=1.0,
                                        strict=False)
    vals["grounded_floor"] = _check_num(raw.get("grounded_floor", 0.0), where=where, key="grounded_floor", hi=1.0,
                                        strict=False)
    vals["first_batch_size"] = _check_int(raw.get("first_batch_size", vals["batch_size"]), where=where,
                                          key="first_batch_size")
    vals["first_batch_tokens"] = _check_int(raw.get("first_batch_tokens", 0), where=where, key="first_batch_tokens",
                                            minimum=0)
    mode = raw.get("claim_mode", "extractive")
    if mode not in CLAIM_MODES:
        raise ProfileError(f"must be one of {', '.join(CLAIM_MODES)}, got {mode!r}", key="claim_mode", **where)
    vals["claim_mode"] = mode
    if not vals["min_batch_size"] <= vals["batch_size"] <= vals["max_batch_size"]:
        raise ProfileError("need min_batch_size <= batch_size <= max_batch_size, got "
                           f"{vals['min_batch_size']} / {vals['batch_size']} / {vals['max_batch_size']}",
                           key="batch_size", **where)
    if vals["claim_tokens"] + vals["synthesis_tokens"] > vals["max_tokens"]:
        raise ProfileError("claim_tokens + synthesis_tokens exceed max_tokens", key="max_tokens", **where)
    if vals["synthesis_tokens"] + vals["claim_tokens"] >= vals["context_window"] // 2:
        raise ProfileError("generation caps leave no room for evidence in context_window", key="context_window",
                           **where)
    models = raw["models"]
    if not isinstance(models, dict) or not models:
        raise ProfileError("must name a model per backend, e.g. models = { llamacpp = \"smollm2-135m\" }",
                           key="models", **where)
    for b, m in models.items():
        if b not in BACKEND_NAMES:
            raise ProfileError(f"unknown backend '{b}'; known: {', '.join(BACKEND_NAMES)}", key=f"models.{b}",
                               **where)
        if not isinstance(m, str) or not m.strip():
            raise ProfileError("must be a non-empty model name", key=f"models.{b}", **where)
    desc = raw.get("description", "")
    if not isinstance(desc, str):
        raise ProfileError("must be a string", key="description", **where)
    return Profile(name=name, description=desc, models=dict(models),
                   budgets=_parse_budgets(raw["budgets"], where), source=source, **vals)


#: A profiles file is a few KiB; anything larger is not one (and is not read whole).
MAX_PROFILES_FILE_BYTES = 1 << 20


def _read_toml(path: Path) -> dict:
    try:
        data = tomllib.loads(read_regular(path, max_bytes=MAX_PROFILES_FILE_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise ProfileError("file not found (check --profiles-file / RESEARCH_BENCH_PROFILES)", file=path) from None
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"not valid TOML: {e}", file=path) from None
    except UnicodeDecodeError as e:
        raise ProfileError(f"not UTF-8 text ({e.reason} at byte {e.start}): pass a TOML file of "
                           f"[profiles.NAME] tables", file=path) from None
    except OSError as e:     # a folder, a FIFO, too large, no permission
        why = e.strerror if e.filename else str(e).replace(f"{path} ", "", 1)
        raise ProfileError(f"cannot be read ({why}): pass a TOML file of [profiles.NAME] tables", file=path) from None
    if set(data) - {"profiles"}:
        raise ProfileError("only a [profiles.NAME] table is allowed at top level", file=path,
                           key=sorted(set(data) - {"profiles"})[0])
    profs = data.get("profiles", {})
    if not isinstance(profs, dict):
        raise ProfileError("'profiles' must be a table", file=path, key="profiles")
    return profs


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_profiles(user_file: str | Path | None = None) -> dict[str, Profile]:
    """Built-in profiles, overlaid key by key by `user_file` (or $RESEARCH_BENCH_PROFILES) when given."""
    raw = _read_toml(BUILTIN_FILE)
    sources = {n: str(BUILTIN_FILE) for n in raw}
    user_file = user_file or env("PROFILES") or None
    if user_file:
        path = Path(user_file)
        for name, prof in _read_toml(path).items():
            raw[name] = _merge(raw.get(name, {}), prof) if isinstance(prof, dict) else prof
            sources[name] = str(path)
    return {name: _parse_profile(name, body, sources[name]) for name, body in raw.items()}


def get_profile(name: str, user_file: str | Path | None = None) -> Profile:
    profiles = load_profiles(user_file)
    if name not in profiles:
        raise ProfileError(f"unknown profile '{name}'; known: {', '.join(profiles)}",
                           file=user_file or BUILTIN_FILE)
    return profiles[name]
