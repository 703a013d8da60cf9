"""Named points where a test can meet a running pipeline, without sleeping and polling.

With ``FER_RAY_HOOK_AT=<point>`` and ``FER_RAY_HOOK_FIFO=<a named pipe>`` in the environment,
the first process to reach ``<point>`` writes the point's name into the pipe, which blocks until
the test reads it: the test then knows the run is exactly there (and, say, sends SIGTERM).
Only the first arrival announces (an exclusive marker file beside the pipe), so the other
trials run on. Without these variables a point costs one dictionary lookup.

``FER_RAY_HOOK_AT`` may name several points, comma-separated, that the run reaches one after
another (``live_report:grid,task_stored:analyse``): each announces once, in turn, through the
same pipe. A point is armed only while the pipe exists (so a cluster's nodes can carry the
variables from their start and a test arms them later by making the pipe). Where the test has
also made ``<pipe>.hold`` (a named pipe too), the announcing process then waits at the point
until the test opens that pipe to write and closes it: the run stands still while the test
looks at it (or kills the node it runs on).
"""

from __future__ import annotations

import os
import stat


def reached(point: str) -> None:
    at = os.environ.get("FER_RAY_HOOK_AT")
    if not at or point not in at.split(","):
        return
    fifo = os.environ.get("FER_RAY_HOOK_FIFO")
    if not fifo or not _is_pipe(fifo):
        return
    try:
        fd = os.open(f"{fifo}.{point}.taken", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    with open(fifo, "w") as pipe:  # blocks until the test opens the pipe to read
        pipe.write(point)
    if _is_pipe(f"{fifo}.hold"):
        with open(f"{fifo}.hold") as hold:  # blocks until the test lets the run go on
            hold.read()


def _is_pipe(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False
