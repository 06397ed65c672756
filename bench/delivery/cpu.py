"""CPU accounting for the benchmarks: the machine's busy time and each stack component's
(process group) over a measured window."""
from __future__ import annotations

import os
import time

TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def group_cpu(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each process group (name -> pgid: every stack component
    is started in its own session, so its gunicorn workers or nginx workers share it)."""
    by_pgid = {pgid: name for name, pgid in groups.items()}
    out = dict.fromkeys(groups, 0.0)
    for pid in os.listdir("/proc"):
        if not (pid.isascii() and pid.isdigit()):
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = by_pgid.get(int(fields[2]))
        if name:
            out[name] += (int(fields[11]) + int(fields[12])) / TICKS
    return out


class CpuWindow:
    """Machine busy fraction and per-component CPU over a with-block."""

    def __init__(self, groups: dict[str, int]):
        self.groups = groups

    def __enter__(self):
        self.t0, self.m0, self.g0 = time.perf_counter(), machine_busy(), group_cpu(self.groups)
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        (b1, t1), g1 = machine_busy(), group_cpu(self.groups)
        self.result = {"seconds": round(wall, 1),
                       "machine_busy_cores": round((b1 - self.m0[0]) / max(1, t1 - self.m0[1]) * os.cpu_count(), 2),
                       "component_cores": {k: round((g1[k] - self.g0[k]) / wall, 2) for k in self.groups
                                           if g1[k] - self.g0[k] > 0.005 * wall}}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
