"""The test's end of ``fer_ray.testhooks``: meet a run at named points and hold it there.

``Meeting(folder, points)`` makes the pipe (and its ``.hold`` pipe); ``env`` arms the run.
``wait()`` returns the next point the run reached (``None`` when it ended first, once
``run_ended`` released the pipe); the run then stands still at that point until ``release()``.
Nothing here sleeps, polls or watches files.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


class Meeting:
    def __init__(self, fifo: Path, points: list[str], hold: bool = True):
        self.fifo, self.points = fifo, points
        os.mkfifo(fifo)
        if hold:
            os.mkfifo(f"{fifo}.hold")
        self.env = {"FER_RAY_HOOK_AT": ",".join(points), "FER_RAY_HOOK_FIFO": str(fifo)}

    def wait(self) -> str | None:
        """Until the run reaches its next listed point (held there) or ends."""
        with open(self.fifo) as pipe:
            return pipe.read() or None

    def release(self, block: bool = True) -> None:
        """Let the run go on from the point it is held at. ``block=False``: only if the process
        is still there waiting (a killed one is not), never waiting for it."""
        if block:
            with open(f"{self.fifo}.hold", "w"):
                return
        with contextlib.suppress(OSError):  # nobody holds the pipe open: nothing to release
            os.close(os.open(f"{self.fifo}.hold", os.O_WRONLY | os.O_NONBLOCK))

    def run_ended(self) -> None:
        """The run is over: from now on a ``wait`` returns ``None`` and a ``release`` returns at
        once, whenever they come (a daemon thread per pipe answers every one)."""

        def answer(path: str, flags: int) -> None:
            while True:
                with contextlib.suppress(OSError):
                    os.close(os.open(path, flags))  # blocks until a wait or release comes

        for path, flags in ((str(self.fifo), os.O_WRONLY), (f"{self.fifo}.hold", os.O_RDONLY)):
            if os.path.exists(path):
                threading.Thread(target=answer, args=(path, flags), daemon=True).start()

    def watch(self, proc) -> None:  # noqa: ANN001 - a subprocess.Popen
        """``run_ended`` as soon as ``proc`` exits, from a thread."""

        def watcher() -> None:
            proc.wait()
            self.run_ended()

        threading.Thread(target=watcher, daemon=True).start()
