"""The embedded model's weights, re-encoded once for the CPU.

llama.cpp's fast CPU matrix kernels (llamafile's tinyBLAS, the repacked layouts) take Q8_0, Q4_0, F16 and BF16
weights but not Q4_1, the type SmolLM2-135M ships in: a Q4_1 prompt is evaluated by the generic dot-product path.
A Q8_0 copy of the same weights goes through the fast kernels. Re-encoding 4-bit weights as 8-bit adds an error
a fraction of the 4-bit step, so the copy is the same model (docs/measurements.md, "Weights on the CPU", has the
divergence and the speed measured). The copy is written once per model file and llama.cpp version into the
engine's cache (`<cache>/models/`), atomically; a copy that cannot be loaded is written again, and where
the cache cannot be written the shipped file is used, with one warning.

RESEARCH_BENCH_WEIGHTS=shipped loads the shipped file as it is.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
from pathlib import Path

from ..envvars import env, name as envvar_name
from .base import BackendError

log = logging.getLogger(__name__)
SHIPPED = "shipped"
_warned: set[str] = set()


def wanted(cpu_weights: str | None, accelerator: str) -> str | None:
    """The weight type to load on this device: None keeps the shipped file (a GPU, a model without a CPU type,
    or RESEARCH_BENCH_WEIGHTS=shipped)."""
    choice = (env("WEIGHTS") or "").lower()
    if choice not in ("", SHIPPED):
        raise BackendError(f"{envvar_name('WEIGHTS')}={choice!r}: the only value is '{SHIPPED}' (unset it to "
                         f"re-encode the embedded model for the CPU)")
    return None if choice == SHIPPED or accelerator != "cpu" else cpu_weights


def cached_copy(src: Path, wtype: str, lc, cache_root: Path) -> Path:
    """`src` re-encoded as `wtype` (e.g. "q8_0") in the cache, written on first use; `src` where it cannot be."""
    digest = hashlib.sha256(f"{src.resolve()}:{src.stat().st_size}:{src.stat().st_mtime_ns}".encode())
    dst = cache_root / "models" / f"{src.stem}.{digest.hexdigest()[:12]}.{wtype}.llama-cpp-{lc.__version__}.gguf"
    if _is_gguf(dst):
        return dst
    try:
        if not encode(src, dst, wtype, lc):
            log.warning("llama.cpp could not re-encode %s as %s; the shipped file is loaded as it is", src.name, wtype)
            return src
    except OSError as e:
        if str(cache_root) not in _warned:
            _warned.add(str(cache_root))
            log.warning("model cache %s: cannot be written (%s); the shipped %s is loaded as it is: set %s to a "
                        "writable folder", cache_root, e.strerror or e, src.name, envvar_name("CACHE_DIR"))
        return src
    for old in dst.parent.glob(f"{src.stem}.*.{wtype}.*.gguf"):     # copies of an earlier install
        if old != dst:
            discard(old)
    return dst


def discard(path: Path) -> None:
    """Remove a cached copy that llama.cpp could not load, so the next load writes it again."""
    try:
        path.unlink()
    except OSError:
        pass


def _is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"GGUF"
    except OSError:
        return False


def encode(src: Path, dst: Path, wtype: str, lc) -> bool:
    """Write `src` re-encoded as `wtype` to `dst` (atomically); False when llama.cpp cannot."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(dst.parent, os.W_OK):
        raise PermissionError(13, "permission denied", str(dst.parent))
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    params = lc.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = getattr(lc, f"LLAMA_FTYPE_MOSTLY_{wtype.upper()}"), True
    params.nthread = os.cpu_count() or 1
    try:
        if lc.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params)) != 0 \
                or not _is_gguf(tmp):
            return False
        os.replace(tmp, dst)
        return True
    finally:
        discard(tmp)
