"""Process groups started by a process die with it, even when it is SIGKILLed; released groups
are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from freshlm.process_reaper import GroupReaper, stop_groups

OWNER = textwrap.dedent(
    """
    import subprocess, sys, time
    from freshlm.process_reaper import GroupReaper
    # A group like an Airflow component's: a leader that forks a worker of its own.
    leader = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
         "'import time; time.sleep(600)']); time.sleep(600)"],
        start_new_session=True,
    )
    reaper = GroupReaper([leader.pid], grace_s=2.0)
    if sys.argv[1] == "release":
        reaper.release()
    print(leader.pid, flush=True)
    time.sleep(600)
    """
)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.1)
    return False


def _start_owner(mode: str) -> tuple[subprocess.Popen, int]:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, mode], stdout=subprocess.PIPE, text=True)
    pgid = int(owner.stdout.readline())
    time.sleep(0.5)  # the leader forks its worker
    return owner, pgid


def test_a_sigkilled_owner_takes_its_groups_workers_included_with_it():
    owner, pgid = _start_owner("watch")
    try:
        assert _group_alive(pgid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert _wait_gone(pgid, 15), "the group outlived its SIGKILLed owner"
    finally:
        stop_groups([pgid], 0)


def test_released_groups_keep_running_after_the_owner_exits():
    owner, pgid = _start_owner("release")
    try:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        time.sleep(1.5)
        assert _group_alive(pgid), "a released group was stopped"
    finally:
        stop_groups([pgid], 0)
        assert _wait_gone(pgid, 5)


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace_period():
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, "
            "signal.SIG_IGN); print('ready', flush=True); time.sleep(600)",
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    stubborn.stdout.readline()
    started = time.monotonic()
    assert stop_groups([stubborn.pid], grace_s=0.5) == [stubborn.pid]
    stubborn.wait(5)
    assert stubborn.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_a_reaper_needs_a_group():
    with pytest.raises(ValueError, match="at least one process group"):
        GroupReaper([])
