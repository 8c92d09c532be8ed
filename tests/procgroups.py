"""Helpers shared by the tests that start and kill whole process groups (Linux /proc)."""

from __future__ import annotations

import os
import signal
import time


def group_alive(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    alive = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            alive.append(int(d))
    return alive


def wait_group_gone(pgid: int, timeout: float = 30) -> None:
    """Wait until every process of the group is gone; SIGKILL them and fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            raise AssertionError(f"processes of group {pgid} still alive after {timeout} s")
        time.sleep(0.05)
