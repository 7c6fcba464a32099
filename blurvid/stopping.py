"""The signals that stop blurvid's long work (Ctrl-C, ``kill``, a closed terminal), shared by the CLI
and the training loop so that both treat them alike."""

from __future__ import annotations

import signal
import threading

STOP_SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")  # SIGBREAK: Windows' Ctrl-Break


def stop_signals() -> list[int]:
    """SIGINT, SIGTERM, SIGHUP and SIGBREAK, those this platform has."""
    return [getattr(signal, n) for n in STOP_SIGNAL_NAMES if hasattr(signal, n)]


def catchable_stop_signals() -> list[int]:
    """The :func:`stop_signals` this thread may take over: none outside the main thread (Python lets
    only it set handlers), and none that is ignored (``nohup blurvid ...`` must outlive its terminal)."""
    if threading.current_thread() is not threading.main_thread():
        return []
    return [s for s in stop_signals() if signal.getsignal(s) != signal.SIG_IGN]
