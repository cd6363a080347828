"""Test double of the isolated child (harness/run/isolated.py child_main), for the memory-enforcement tests only.

`python -m tests.reliability.child_double REQUEST RESULT STATUS` behaves like the real child's outline: it holds
RB_CHILD_STARTUP_MB of touched memory before it reports that its run started (as the real child's imports and
warm-up do), frees it, writes STATUS, then holds RB_CHILD_RUN_MB during its "run" and writes a result. No engine
runs: the memory is real, the run is not a measurement.
"""
from __future__ import annotations

import json
import os
import sys
import time


def _hold(mb: float, seconds: float) -> None:
    blob = bytearray(int(mb * 2**20))
    for i in range(0, len(blob), 4096):
        blob[i] = 1
    time.sleep(seconds)
    del blob


def main(argv: list[str]) -> int:
    _, res_path, status_path = argv
    _hold(float(os.environ.get("RB_CHILD_STARTUP_MB", "0")), 0.6)
    with open(status_path, "w") as fh:
        json.dump({"event": "started", "warmup_s": 0.6, "pid": os.getpid()}, fh)
    _hold(float(os.environ.get("RB_CHILD_RUN_MB", "0")), 0.8)
    with open(res_path, "w") as fh:
        json.dump({"status": "completed", "telemetry": None, "error": None, "wall_s": 0.8}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
