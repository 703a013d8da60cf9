"""Named points where a test can meet a running pipeline, without sleeping and polling.

With ``FER_RAY_HOOK_AT=<point>`` and ``FER_RAY_HOOK_FIFO=<a named pipe>`` in the environment,
the first process to reach ``<point>`` writes the point's name into the pipe, which blocks until
the test reads it: the test then knows the run is exactly there (and, say, sends SIGTERM).
Only the first arrival announces (an exclusive marker file beside the pipe), so the other
trials run on. Without these variables a point costs one dictionary lookup.
"""

from __future__ import annotations

import os


def reached(point: str) -> None:
    if os.environ.get("FER_RAY_HOOK_AT") != point:
        return
    fifo = os.environ.get("FER_RAY_HOOK_FIFO")
    if not fifo:
        return
    try:
        fd = os.open(f"{fifo}.taken", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    with open(fifo, "w") as pipe:  # blocks until the test opens the pipe to read
        pipe.write(point)
