"""Run a child command in its own process group, stream its output, and kill it all on a deadline.

:func:`run_streaming` is what a task uses to run a crawl: the child is started as the leader of
a new session (``start_new_session``), so it and everything it starts (Scrapy's reactor threads,
any grandchild) share one process group. Its output is read on a thread, so the deadline is
kept even when the child prints nothing. When the deadline passes — or the caller is
interrupted (Airflow's ``execution_timeout``, a SIGTERM turned into an exception) — the whole
group gets SIGTERM, then SIGKILL after ``grace_s``: no crawl outlives its task.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence


class ChildTimedOut(RuntimeError):
    """The child ran past its deadline; its process group was killed."""


def run_streaming(
    cmd: Sequence[str],
    *,
    timeout_s: float,
    on_line: Callable[[str], None],
    grace_s: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``cmd`` (an argument list, never a shell), pass each output line to ``on_line``.

    Returns the exit status. Raises :class:`ChildTimedOut` after killing the process group
    when ``timeout_s`` passes first.
    """
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
        env=dict(env) if env is not None else None,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                kill_group(proc, grace_s)
                raise ChildTimedOut(
                    f"still running after {timeout_s:g}s; its process group was killed"
                )
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                break
            on_line(line.rstrip("\n"))
        return proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        kill_group(proc, grace_s)
        raise ChildTimedOut(
            f"closed its output but did not exit within {timeout_s:g}s; killed"
        ) from None
    finally:
        # Whatever ended the wait (the deadline, an exception in the caller), nothing remains.
        if proc.poll() is None:
            kill_group(proc, grace_s)
        reader.join(timeout=grace_s)


def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
    assert proc.stdout is not None
    with contextlib.suppress(ValueError, OSError):
        for line in proc.stdout:
            lines.put(line)
    lines.put(None)


def kill_group(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the child's process group, SIGKILL it if anything is left after ``grace_s``."""
    pgid = proc.pid  # the child leads its own session, so its pid is the group's id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    # Grandchildren may outlive the leader: the group is killed whether or not it exited.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
