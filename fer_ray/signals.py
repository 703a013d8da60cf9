"""SIGTERM as a clean stop: what Kubernetes, Slurm and ``ray job stop`` send.

The handler turns SIGTERM into SIGINT, which Ray Tune already handles by stopping its trials
at the next safe point and saving its state (outside Tune it is a ``KeyboardInterrupt``). The
pipeline installs it again once Ray has started, because Ray's own handler would abort the
driver with a native stack dump. ``terminated()`` tells the CLI to exit with 143.
"""

from __future__ import annotations

import os
import signal
from typing import Any

_received: list[int] = []


def _on_term(signum: int, frame: Any) -> None:
    _received.append(signum)
    os.kill(os.getpid(), signal.SIGINT)


def install() -> None:
    """Handle SIGTERM from now on (main thread only: Python's rule for signal handlers)."""
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_term)


def terminated() -> bool:
    return bool(_received)
