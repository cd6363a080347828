"""`research-engine` in a child process on the scripted backend double: a crash in native code (a segfault)
then shows as the child's exit status, not as the test process dying.

    python -m tests.reliability.engine_child ARGS...   research-engine ARGS with ScriptedBackendDouble as the model
    engine_child(*args, env=...) -> Ran                  the same from a test: exit status, stdout, stderr
"""
from __future__ import annotations

import os
import subprocess
import sys

from tests.reliability.bad_input import ROOT, Ran

CHILD_TIMEOUT_S = 120


def engine_child(*args, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> Ran:
    """Run research-engine ARGS in a child (`prefix`: a command the child runs under, e.g. unshare)."""
    child_env = {k: v for k, v in os.environ.items() if k != "RESEARCH_BENCH_HASH_KEY"}
    child_env.update(env or {})
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child_env.get("PYTHONPATH")]))
    r = subprocess.run([*prefix, sys.executable, "-m", "tests.reliability.engine_child", *map(str, args)],
                       cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    return Ran(r.returncode, r.stdout, r.stderr)


def main(argv: list[str]) -> int:
    from llm_research_bench.engine import pipeline
    from llm_research_bench.engine.cli import main as engine_main
    from tests.reliability.bad_input import ScriptedBackendDouble

    pipeline.make_backend = lambda name, model, **kw: ScriptedBackendDouble()
    return engine_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
