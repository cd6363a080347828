"""Session set-up for the whole test suite."""
from __future__ import annotations

import signal
import threading


def pytest_configure(config):
    # A shell that starts a job in the background (`make test &`, nohup, some CI runners) starts it with SIGINT
    # ignored, and every child inherits that: Ctrl-C could never reach the runs the Ctrl-C tests interrupt. Give
    # the suite a terminal's Ctrl-C (Python's default handler; children exec'd from here get SIGINT's default).
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # pytester's in-process runs drop the modules an inner session imported when it ends. torch cannot be
    # imported a second time in one process (its C extension stays loaded), and the engine's system probe imports
    # it inside those sessions: import it once here, so that no inner session is the first to.
    import torch  # noqa: F401
