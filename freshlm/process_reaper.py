"""Process groups that die with the process that started them, however it ends.

FreshLM starts long-lived process groups (the local Airflow's components, each in its own
session so that stopping it also stops the workers it forks). A normal exit stops them; a
process killed with SIGKILL (a test run stopped hard, an OOM kill, a closed terminal) runs no
cleanup, and the groups would run on, holding ports and CPU. So each owner also starts a
:class:`GroupReaper`: a small process that holds the read end of a pipe whose write end only
the owner has. When the owner exits, for any reason, the kernel closes that end, the reaper
reads end-of-file and stops the groups (SIGTERM, then SIGKILL after a grace period). An owner
that stopped the groups itself first says ``released``, and the reaper exits without
signalling anything (a process group id may be reused once its processes are gone).

    python -m freshlm.process_reaper [--grace-s S] PGID...   # run by GroupReaper
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

RELEASED = b"released\n"
DEFAULT_GRACE_S = 10.0
#: Where ``freshlm`` is importable from, whatever the owner's working folder.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[1])


class GroupReaper:
    """Stops ``pgids`` when this process exits without calling :meth:`release`."""

    def __init__(self, pgids: Sequence[int], *, grace_s: float = DEFAULT_GRACE_S) -> None:
        if not pgids:
            raise ValueError("GroupReaper needs at least one process group id")
        cmd = [sys.executable, "-m", __name__, "--grace-s", str(grace_s), *map(str, pgids)]
        # Its own session: a Ctrl-C or group signal aimed at the owner does not reach it, so
        # it is still there to clean up. close_fds (the default) keeps the pipe's write end
        # out of every other child, so only the owner's exit closes it.
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, start_new_session=True, cwd=_IMPORT_ROOT
        )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def release(self, timeout_s: float = 5.0) -> None:
        """The owner stopped the groups itself: the reaper exits and signals nothing."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.write(RELEASED)
                self._proc.stdin.flush()
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def stop_groups(pgids: Sequence[int], grace_s: float) -> list[int]:
    """SIGTERM every group, SIGKILL the ones still there after ``grace_s``; the groups that
    needed SIGKILL."""
    alive = [pgid for pgid in pgids if _signal_group(pgid, signal.SIGTERM)]
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pgid for pgid in alive if _signal_group(pgid, 0)]
    for pgid in alive:
        _signal_group(pgid, signal.SIGKILL)
    return alive


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m freshlm.process_reaper")
    parser.add_argument("--grace-s", type=float, default=DEFAULT_GRACE_S)
    parser.add_argument("pgids", type=int, nargs="+")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the owner's exit ends the watch
    line = sys.stdin.buffer.readline()  # blocks until the owner writes or exits
    if line == RELEASED:
        return 0
    killed = stop_groups(args.pgids, args.grace_s)
    print(
        f"freshlm.process_reaper: owner gone; stopped process groups {args.pgids}"
        + (f" (SIGKILL for {killed})" if killed else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
