"""What the loopback servers of the tests (PostgreSQL, Redis) share: a server process ended by
its own shutdown signal, then SIGKILL to its whole process group if it lingers; and ``with``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any, Self


def end_process(process: subprocess.Popen, first: signal.Signals, timeout_s: float) -> None:
    """Send ``first`` (the server's own clean shutdown), wait up to ``timeout_s``, then SIGKILL
    the process group (started with ``start_new_session``) and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class ServerContext:
    """``with Server(...) as s``: started on entry (stopped again if starting fails), stopped on
    exit. Subclasses define ``start() -> Self`` and ``stop()``."""

    def start(self) -> Self:  # pragma: no cover - defined by each server
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - defined by each server
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
