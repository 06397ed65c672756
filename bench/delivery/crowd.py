"""Many realtime viewers (viewers.py) spread over several load-generator processes that live
for the whole step ladder (devices and their tokens are reused between steps). Each step:
prepare (device tokens, sessions opened through the API: not part of the realtime window),
play (every viewer clicks at a moment spread over the ramp, then plays ``slots``
segments in real time), end (sessions closed). The generator's own CPU is measured in each
process over the play window, and so is how late its event loops wake (if they wake late,
the generator, not the server, is the limit)."""
from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import random
import resource
import time
from dataclasses import asdict, replace

from loadgen import SPAWN, quantile
from viewers import Plan, Tally, Viewer

GC_OFF = os.environ.get("BENCH_LOADGEN_GC", "on") == "off"
NICE = int(os.environ.get("BENCH_LOADGEN_NICE", "0"))
PROFILE = os.environ.get("BENCH_LOADGEN_PROFILE", "")
TOKEN_TTL = 300     # auth-svc ACCESS_TOKEN_TTL: device tokens that would expire within a step are renewed before it


class _Child:
    def __init__(self, pipe, plan: Plan, media_base: str | None):
        self.pipe, self.plan, self.media_base = pipe, plan, media_base
        self.devices: dict[int, tuple] = {}              # viewer number -> (DeviceKey, token, issued)
        self.viewers: list[tuple[int, Viewer]] = []
        self.loop = asyncio.new_event_loop()

    def serve(self) -> None:
        while True:
            cmd, arg = self.pipe.recv()
            if cmd == "quit":
                return
            try:
                self.pipe.send(self.loop.run_until_complete(getattr(self, cmd)(**arg)))
            except Exception as e:                 # the parent fails at once instead of timing out
                self.pipe.send({"crashed": f"{cmd}: {e!r}"})

    async def _bounded(self, coros, limit: int = 8) -> list:
        gate = asyncio.Semaphore(limit)

        async def one(c):
            async with gate:
                t0 = time.perf_counter()
                try:
                    await c
                    return time.perf_counter() - t0
                except Exception:
                    return None
        return await asyncio.gather(*(one(c) for c in coros))

    async def prepare(self, numbers: list[int], bearers: list[str], static: dict | None, slots: int,
                      ramp: float, token_max_age: float) -> dict:
        self.tally, self.viewers = Tally(), []
        self.plan = replace(self.plan, slots=slots, ramp=ramp)
        if static is not None:
            for g in numbers:
                rnd = random.Random(g)
                paths = {"video": [rnd.choice(ab) for ab in static["video"]]}
                if static.get("audio"):
                    paths["audio"] = static["audio"]
                self.viewers.append((g, Viewer.static(self.plan, self.tally, self.media_base, paths, static["inits"])))
            return {"prepared": len(numbers), "failed": 0, "open_s": []}

        async def ready(g: int, v: Viewer):
            v.bearer = bearers[g % len(bearers)]
            dev = self.devices.get(g)
            if dev and time.monotonic() - dev[2] < token_max_age:
                v.device, v.token, v.token_at = dev
            else:
                if dev:
                    v.device = dev[0]                 # the same device, a new token
                await v.device_token(v.bearer)
                self.devices[g] = (v.device, v.token, v.token_at)
            t0 = time.perf_counter()
            await v.open()
            opened.append(time.perf_counter() - t0)

        opened: list[float] = []
        candidates = [(g, Viewer(self.plan, self.tally, self.media_base)) for g in numbers]
        done = await self._bounded(ready(g, v) for g, v in candidates)
        self.viewers = [gv for gv, ok in zip(candidates, done) if ok is not None]
        return {"prepared": len(self.viewers), "failed": len(candidates) - len(self.viewers), "open_s": opened}

    async def play(self, start_at: float, total: int) -> dict:
        """``start_at`` is wall-clock (time.time(), shared by the processes)."""
        start = time.perf_counter() + (start_at - time.time())
        lag: list[float] = []
        # The prepared viewers (thousands of sessions, devices, keys) live for the whole step:
        # frozen, the collector does not re-scan them. Its pauses still make the event loop late,
        # so they are measured and reported (loadgen_gc) beside the loop's lag. With
        # BENCH_LOADGEN_GC=off the cyclic collector does not run during the play window at all
        # (collected after it; the processes' peak RSS is reported): a generator whose pauses
        # were the limit then shows a higher ceiling.
        gc.collect()
        gc.freeze()
        if GC_OFF:
            gc.disable()
        pauses: list[float] = []
        gc_started = 0.0

        def on_gc(phase: str, info: dict) -> None:
            nonlocal gc_started
            if phase == "start":
                gc_started = time.perf_counter()
            else:
                pauses.append(time.perf_counter() - gc_started)
        gc.callbacks.append(on_gc)
        ticking = asyncio.create_task(self._ticks(lag))
        cpu0, t0 = time.process_time(), time.perf_counter()
        spread = self.plan.ramp
        prof = cProfile.Profile() if PROFILE else None     # BENCH_LOADGEN_PROFILE=<prefix>: where its loop's time goes
        if prof:
            prof.enable()
        try:
            await asyncio.gather(*(v.play(start + spread * g / total) for g, v in self.viewers))
        finally:
            if prof:
                prof.disable()
                prof.dump_stats(f"{PROFILE}.{os.getpid()}")
            gc.callbacks.remove(on_gc)
            gc.enable()
            gc.unfreeze()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        ticking.cancel()
        return {"tally": asdict(self.tally), "cpu_s": cpu, "wall_s": wall, "lag": lag, "gc_pauses": pauses,
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    @staticmethod
    async def _ticks(lag: list[float], every: float = 0.1) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(every)
            lag.append(time.perf_counter() - t - every)

    async def end(self) -> dict:
        gateway = [v for _, v in self.viewers if v.sid]
        done = await self._bounded((v.end() for v in gateway), 16)
        for _, v in self.viewers:
            v.close()
        self.viewers = []
        return {"ended": sum(d is not None for d in done), "failed": sum(d is None for d in done)}


def _child_main(pipe, plan: Plan, media_base: str | None) -> None:
    if NICE:        # BENCH_LOADGEN_NICE=-5: the generator is scheduled ahead of the servers it loads
        os.nice(NICE)
    _Child(pipe, plan, media_base).serve()


class Crowd:
    def __init__(self, plan: Plan, processes: int, media_base: str | None = None):
        self.plan, self.kids = plan, []
        for _ in range(processes):
            mine, theirs = SPAWN.Pipe()
            proc = SPAWN.Process(target=_child_main, args=(theirs, plan, media_base), daemon=True)
            proc.start()
            self.kids.append((proc, mine))

    def _all(self, cmd: str, args: list[dict], timeout: float) -> list:
        for (_, pipe), arg in zip(self.kids, args):
            pipe.send((cmd, arg))
        out = []
        for proc, pipe in self.kids:
            if not pipe.poll(timeout):
                raise TimeoutError(f"load generator {proc.pid}: no answer to {cmd} in {timeout} s")
            out.append(pipe.recv())
            if "crashed" in out[-1]:
                raise RuntimeError(f"load generator {proc.pid}: {out[-1]['crashed']}")
        return out

    def step(self, n: int, slots: int, ramp: float, bearers: list[str] | None = None, static: dict | None = None,
             cpu_window=None) -> dict:
        """``n`` viewers clicking over ``ramp`` seconds, each playing ``slots`` segments."""
        P = len(self.kids)
        t0 = time.perf_counter()
        # A token reused from an earlier step must outlast this step's play; one that expires
        # anyway (a long preparation) is renewed on its 401, as the player does.
        max_age = TOKEN_TTL - (ramp + slots * self.plan.seg_seconds + 30)
        prep = self._all("prepare", [{"numbers": list(range(p, n, P)), "bearers": bearers or [], "static": static,
                                      "slots": slots, "ramp": ramp, "token_max_age": max_age} for p in range(P)], 900)
        prep_s = time.perf_counter() - t0
        start_at = time.time() + 1.0
        window = ramp + self.plan.startup + slots * self.plan.seg_seconds + self.plan.seg_seconds
        if cpu_window is not None:
            with cpu_window:
                played = self._all("play", [{"start_at": start_at, "total": n}] * P, window + 300)
            cpu = cpu_window.result
        else:
            played, cpu = self._all("play", [{"start_at": start_at, "total": n}] * P, window + 300), None
        t1 = time.perf_counter()
        ended = self._all("end", [{}] * P, 600)
        tally = Tally()
        for r in played:
            tally.merge(Tally(**r["tally"]))
        opens = sorted(s for r in prep for s in r["open_s"])
        lag = sorted(x for r in played for x in r["lag"])
        gc_pauses = sorted(x for r in played for x in r["gc_pauses"])
        wall = max(r["wall_s"] for r in played)
        starts = sorted(tally.startup_s)
        return {"viewers": n, "ramp_s": ramp, "slots_per_viewer": slots,
                "prepared": sum(r["prepared"] for r in prep), "stalls": tally.stalls,
                "stalled_viewers": tally.stalled_viewers, "slots": tally.slots,
                "worst_late_s": round(tally.worst_late_s, 3), "errors": tally.errors,
                "stalls_by_slot": dict(sorted(tally.stalls_by_slot.items())),
                "startup_ms": {"p50": round(quantile(starts, 0.5) * 1000, 1),
                               "p99": round(quantile(starts, 0.99) * 1000, 1),
                               "max": round(starts[-1] * 1000, 1),
                               **{f"{k}_p99": round(quantile(v, 0.99) * 1000, 1)
                                  for k, v in tally.startup_parts_s.items()}} if starts else None,
                "prepare_s": round(prep_s, 1), "prepare_failed": sum(r["failed"] for r in prep),
                "session_open_ms": {"p50": round(quantile(opens, 0.5) * 1000, 1),
                                    "p95": round(quantile(opens, 0.95) * 1000, 1)} if opens else None,
                "play_s": round(wall, 1), "end_s": round(time.perf_counter() - t1, 1),
                "ended": sum(r["ended"] for r in ended),
                "loadgen_processes": P, "loadgen_cpu_cores": round(sum(r["cpu_s"] for r in played) / wall, 2),
                "loadgen_loop_lag_ms": {"p50": round(quantile(lag, 0.5) * 1000, 1),
                                        "p99": round(quantile(lag, 0.99) * 1000, 1),
                                        "max": round((lag[-1] if lag else 0) * 1000, 1)},
                "loadgen_gc": {"collections": len(gc_pauses), "total_ms": round(sum(gc_pauses) * 1000, 1),
                               "max_ms": round((gc_pauses[-1] if gc_pauses else 0) * 1000, 1), "off": GC_OFF},
                "loadgen_max_rss_mb": round(max(r["max_rss_mb"] for r in played)),
                "cpu": cpu, "tally": tally}

    def close(self) -> None:
        for proc, pipe in self.kids:
            try:
                pipe.send(("quit", None))
            except OSError:
                pass
        for proc, _ in self.kids:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
