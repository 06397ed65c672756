"""CPU accounting for the benchmarks: the machine's busy time and each stack component's
(process group) over a measured window, on average and in its busiest seconds (an average
of 1.2 busy cores can hide a minute with both cores full)."""
from __future__ import annotations

import os
import threading
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


BUSIEST_S = 10          # the busiest window reported: this many samples, SAMPLE_S apart
SAMPLE_S = 1.0
SATURATED = 0.95        # a second with at least this share of every core busy


def saturated(machine_cores: float, cpus: int | None = None) -> bool:
    """Every core (of this machine, or of ``cpus``) busy, give or take SATURATED."""
    return machine_cores >= SATURATED * (cpus or os.cpu_count())


def _cores(a: tuple, b: tuple, groups) -> tuple[float, dict[str, float]]:
    """Busy cores of the machine and of each group between two samples (t, busy, total, groups)."""
    wall = max(1e-9, b[0] - a[0])
    machine_cores = (b[1] - a[1]) / max(1, b[2] - a[2]) * os.cpu_count()
    return machine_cores, {k: (b[3][k] - a[3][k]) / wall for k in groups}


class CpuWindow:
    """Machine busy fraction and per-component CPU over a with-block: on average, and in its
    busiest BUSIEST_S seconds (sampled every SAMPLE_S from a side thread), with the number of
    seconds in which the machine's cores were all busy. ``groups`` may name the load
    generator's process group too (its CPU is then seen beside the servers')."""

    def __init__(self, groups: dict[str, int]):
        self.groups = groups
        self.samples: list[tuple] = []
        self._stop = threading.Event()

    def _sample(self) -> None:
        groups = group_cpu(self.groups)      # the slow part (a /proc scan) first: the clock and
        busy = machine_busy()                # the machine's counters are read right after it
        self.samples.append((time.perf_counter(), *busy, groups))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def __enter__(self):
        self._sample()
        self._thread = threading.Thread(target=self._run, name="cpu-window", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        first, last = self.samples[0], self.samples[-1]
        wall = last[0] - first[0]
        busy, comps = _cores(first, last, self.groups)
        self.result = {"seconds": round(wall, 1), "machine_busy_cores": round(busy, 2),
                       "component_cores": {k: round(v, 2) for k, v in comps.items() if v > 0.005}}
        spans = list(zip(self.samples, self.samples[BUSIEST_S:]))
        if spans:
            a, b = max(spans, key=lambda ab: _cores(*ab, self.groups)[0])
            busiest, comps = _cores(a, b, self.groups)
            self.result["busiest"] = {
                "seconds": round(b[0] - a[0], 1), "starts_at_s": round(a[0] - first[0], 1),
                "machine_busy_cores": round(busiest, 2),
                "component_cores": {k: round(v, 2) for k, v in comps.items() if v > 0.005}}
        # Seconds, not samples: a sample taken late (a busy machine) spans more than SAMPLE_S.
        self.result["saturated_seconds"] = round(sum(b[0] - a[0] for a, b in zip(self.samples, self.samples[1:])
                                                     if saturated(_cores(a, b, self.groups)[0])))


def machine() -> dict:
    return {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
