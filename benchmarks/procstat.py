"""CPU time of another process, from /proc (Linux)."""

from __future__ import annotations

import os


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds that process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        # Split after the command name, which may contain spaces or ")".
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    # utime and stime are fields 14 and 15 of the whole line.
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds that process ``pid`` has used so far."""
    user, system = cpu_times(pid)
    return user + system
