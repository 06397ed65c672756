"""False accusations (issue 19 item 5): control copies that no tested session leaked, traced
by the detector's code, and the calibration of the false-accusation probability it reports.

Offline, like collusion.py (no stack). Two short synthetic videos of different content, X (test
pattern) and Z (cellular-automaton texture), are made and processed by the real pipeline
(`process`); each has `--real-sessions` seeded viewers. Two near-duplicates, X' and Z', are
re-uploads of the same footage (the source re-encoded, its first second cut) under their own video
ids: the detector needs only their source and id (the keyed pattern) and their own sessions, so
they are not processed (nothing any control copy holds was served from them).

Control copies (COPIES), each made once and re-encoded as a pirate would (180p or 360p, x264 CRF
28-32):
  - unmarked: the source itself re-encoded, never served to anyone, traced as its video;
  - other video: one real session's stream of X traced as Z (and of Z as X);
  - mixed colluders: two real sessions' streams mixed (alternate, random, average); the two are
    excluded from the innocents, every other session is innocent;
  - near-duplicate: a real session's stream of X traced as X' (and of Z as Z').

Stages, every one cached in --work (seeded, resumable; a rerun redoes only what is missing):
 1. extraction, ONCE per copy: the whole copy traced end to end with trace() (video named, over a
    catalogue of the target video with its real sessions and --population seeded others); the
    readout it scores (readout.read_bits, the frames -> per-segment z stage) is captured and kept;
 2. control traces: --traces-per-copy windows of that evidence (30, 60, 120, 240 s as the copy
    allows, seeded starts), each scored with the detector's scoring and accusation decision
    (calibration.control_trace: verdict.accuse) against the target's real
    sessions (minus colluders; plus the leaker of the other video, innocent here) and --population
    fresh seeded session ids; innocents' p-values are tallied, not stored (calibration.Tally);
 3. optionally --e2e windowed end-to-end traces: a window of a copy cut from the stream before the
    re-encode, re-encoded, traced with trace() like stage 1.

Results: bench/results/forensics-controls.{json,md,svg}, rewritten after every copy.

Usage: python bench/forensics/controls.py [--video-seconds 246] [--traces-per-copy 110]
                                          [--population 1000] [--e2e 0] [--work var/bench-controls]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from offline import CODE, RESULTS, ROOT, TESTSRC, captured_readouts, make_source, prepare, reencode, session_ids  # noqa: E402
from calibration import Tally, control_trace, svg  # noqa: E402
from collusion_helpers import mixed_stream, session_stream  # noqa: E402
from bench.reportfile import write_markdown  # noqa: E402
from watermark_svc.forensics import trace as trace_module  # noqa: E402
from watermark_svc.forensics.localcat import LocalCatalogue  # noqa: E402
from watermark_svc.forensics.scoring import score_sessions  # noqa: E402
from watermark_svc.media.errors import InvalidMedia  # noqa: E402

SECRET = b"bench-controls-secret-0123456789abcd"
MAX_FAP = 1e-6
RUN_STARTED = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
TEXTURE = "cellauto=s=480x270:rate=30:rule=110:random_fill_ratio=0.5:seed=23,boxblur=2,noise=alls=2:allf=t"
# name: (video id, content, seed of its real sessions, twin of: the near-duplicate's original)
VIDEOS = {"x": ("c1" * 16, TESTSRC, 101, None), "z": ("c2" * 16, TEXTURE, 102, None),
          "x'": ("d1" * 16, None, 103, "x"), "z'": ("d2" * 16, None, 104, "z")}
# name, kind, whose stream (video), what (source | session | a mixing mode), traced as, height, crf
COPIES = [
    ("unmarked-x", "unmarked", "x", "source", "x", 180, 28),
    ("mixed-x-alternate", "mixed colluders", "x", "alternate", "x", 180, 28),
    ("neardup-x", "near-duplicate", "x", "session", "x'", 180, 28),
    ("other-x-as-z", "other video", "x", "session", "z", 180, 28),
    ("unmarked-z", "unmarked", "z", "source", "z", 360, 32),
    ("mixed-x-average", "mixed colluders", "x", "average", "x", 360, 30),
    ("mixed-x-random", "mixed colluders", "x", "random", "x", 180, 32),
    ("other-z-as-x", "other video", "z", "session", "x", 360, 32),
    ("neardup-z", "near-duplicate", "z", "session", "z'", 360, 32),
    ("mixed-z-alternate", "mixed colluders", "z", "alternate", "z", 180, 28),
]
KINDS = ["unmarked", "other video", "mixed colluders", "near-duplicate"]
WINDOW_SEGMENTS = (15, 30, 60, 120)          # 30, 60, 120, 240 s of 2-s segments
E2E_SECONDS = (30, 60, 120)


class Bench:
    def __init__(self, a):
        self.a, self.work = a, a.work
        self.catalogues: dict[str, LocalCatalogue] = {}

    # --- videos -------------------------------------------------------------------------
    def source(self, v: str) -> str:
        vid, lavfi, _, twin_of = VIDEOS[v]
        d = self.work / v.replace("'", "-twin")
        d.mkdir(parents=True, exist_ok=True)
        if twin_of:                                # a re-upload: re-encoded, first second cut
            dest = d / "src.mp4"
            if not dest.exists():
                reencode(self.source(twin_of), d / "src.part.mp4", 270, 18, start=1.0).rename(dest)
            return str(dest)
        return str(make_source(d / "src.mp4", lavfi, self.a.video_seconds))

    def processed(self, v: str) -> dict:
        self.source(v)
        return prepare(self.work / v, self.a.video_seconds, VIDEOS[v][0], SECRET, VIDEOS[v][1])

    def real(self, v: str) -> list[str]:
        return session_ids(self.a.real_sessions, VIDEOS[v][2])

    def catalogue(self, v: str, sessions: list[str]) -> LocalCatalogue:
        """One catalogue per target video (its analysis proxy and fingerprint made once a run)."""
        if v not in self.catalogues:
            self.catalogues[v] = LocalCatalogue({VIDEOS[v][0]: self.source(v)}, proxy_dir=self.work)
        cat = self.catalogues[v]
        cat.sessions = dict.fromkeys(sessions, VIDEOS[v][0])
        return cat

    # --- stage 1: copies and their evidence -------------------------------------------
    def who(self, spec) -> tuple[list[str], list[str]]:
        """(sessions whose streams make the copy, of them the guilty ones among the target's)."""
        name, kind, v, what, target = spec[:5]
        rng = random.Random(name)
        if what == "source":
            return [], []
        if what == "session":
            return [rng.choice(self.real(v))], []
        pair = rng.sample(self.real(v), 2)
        return pair, pair

    def raw(self, spec) -> Path:
        """The copy before the pirate's re-encode (kept for the windowed end-to-end traces)."""
        name, kind, v, what = spec[:4]
        if what == "source":
            return Path(self.source(v))
        dest = self.work / "copies" / f"{name}-raw.mp4"
        if not dest.exists():
            info = self.processed(v)
            tmp = dest.with_suffix(".part.mp4")
            streams, _ = self.who(spec)
            if what == "session":
                session_stream(info["out"], info["rung"], SECRET, streams[0], info["n"], tmp)
            else:
                mixed_stream(info["out"], info["rung"], SECRET, streams, info["n"], tmp, what,
                             seed=random.Random(name).getrandbits(32))
            tmp.rename(dest)
        return dest

    def e2e_trace(self, leak: Path, spec, population_seed: str) -> tuple[dict, object]:
        """trace() of a copy as its target video, over the target's real sessions and a seeded
        population; returns a summary and the readout trace() scored (None if it read nothing)."""
        target = spec[4]
        real = self.real(target)
        population = session_ids(self.a.population, population_seed)
        cat = self.catalogue(target, real + population)
        began = time.monotonic()
        with captured_readouts() as got:
            try:
                r = trace_module.trace(str(leak), cat, SECRET, video_id=VIDEOS[target][0], max_fap=MAX_FAP)
            except InvalidMedia as exc:
                r = {"verdict": "error", "conclusion": str(exc)}
        _, guilty = self.who(spec)
        accused = {s["session_id"] for s in (r.get("robust") or {}).get("accused", [])}
        if r.get("match"):
            accused.add(r["match"]["session_id"])
        return {"verdict": r.get("verdict"), "sessions_tested": r.get("sessions_tested"),
                "segments_read": r.get("segments_read"), "fap_best": r.get("false_accusation_probability"),
                "innocents_accused": sorted(accused - set(guilty)), "guilty_accused": sorted(accused & set(guilty)),
                "watermark_present": (r.get("robust") or {}).get("watermark_present"),
                "best_p": ((r.get("robust") or {}).get("best") or {}).get("p_value"),
                "conclusion": r.get("conclusion"), "seconds": round(time.monotonic() - began, 1)}, \
            (got[-1] if got else None)

    def evidence(self, spec) -> dict:
        name, kind, v, what, target, height, crf = spec
        path = self.work / "copies" / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        leak = reencode(self.raw(spec), self.work / "copies" / f"{name}.mp4", height, crf)
        made = time.monotonic() - began
        e2e, readout = self.e2e_trace(leak, spec, f"{name}:whole")
        idx = [b.index for b in readout.bits] if readout else []
        z = [b.z for b in readout.bits] if readout else []
        # The captured readout is what trace() scored: rescoring it must give its best p-value.
        check = None
        if z and e2e["best_p"] is not None:
            sessions = self.real(target) + session_ids(self.a.population, f"{name}:whole")
            check = score_sessions(z, idx, sessions, SECRET)[0].p_value == e2e["best_p"]
        streams, guilty = self.who(spec)
        out = {"name": name, "kind": kind, "video": v, "target": target, "streams": streams, "guilty": guilty,
               "attack": f"{height}p x264 CRF {crf}", "code": CODE, "copy_seconds": round(made, 1),
               "extraction_seconds": e2e["seconds"], "whole_copy_trace": e2e, "rescore_matches": check,
               "index": idx, "z": z}
        path.write_text(json.dumps(out))
        return out

    # --- stage 2: control traces on windows of the evidence ------------------------------
    def windows(self, ev: dict) -> tuple[Tally, list[dict]]:
        n = self.a.traces_per_copy
        path = self.work / "copies" / f"{ev['name']}.traces.json"
        key = {"traces": n, "population": self.a.population, "real": self.a.real_sessions}
        if path.exists():
            saved = json.loads(path.read_text())
            if saved["key"] == key:
                return Tally.from_dict(saved["tally"]), saved["traces"]
        tally, rows = Tally(), []
        total = len(ev["z"])
        lengths = [k for k in WINDOW_SEGMENTS if k <= total] or ([total] if total else [])
        real = [s for s in self.real(ev["target"]) if s not in ev["guilty"]]
        # The leaker of another video (or of the original of a near-duplicate) is innocent here.
        extra = [s for s in ev["streams"] if s not in ev["guilty"]]
        for k in range(n if lengths else 0):
            rng = random.Random(f"{ev['name']}:{k}")
            length = lengths[k % len(lengths)]
            start = rng.randrange(total - length + 1)
            population = session_ids(self.a.population, f"{ev['name']}:{k}:population")
            sessions = real + extra + population
            innocent = set(sessions) - set(ev["guilty"])
            r = control_trace(ev["z"][start:start + length], ev["index"][start:start + length],
                              sessions + ev["guilty"], SECRET, innocent, MAX_FAP, tally)
            rows.append({"copy": ev["name"], "kind": ev["kind"], "seconds": 2 * length, "start_segment": start,
                         "sessions": r["sessions"], "innocents": r["innocents"],
                         "innocents_accused": r["innocents_accused"], "best_innocent_fap": r["best_innocent_fap"],
                         "guilty_fap": r["others"], "code": CODE})
        path.write_text(json.dumps({"key": key, "code": CODE, "tally": tally.as_dict(), "traces": rows}))
        return tally, rows

    # --- stage 3: windowed end-to-end traces ------------------------------------------------
    def e2e_window(self, i: int) -> dict:
        path = self.work / "e2e" / f"{i}.json"
        if path.exists():
            return json.loads(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        spec = COPIES[i % len(COPIES)]
        rng = random.Random(f"e2e:{i}")
        length = E2E_SECONDS[i % len(E2E_SECONDS)]
        start = rng.uniform(0, max(0.0, self.a.video_seconds - length - 3))
        leak = reencode(self.raw(spec), self.work / "e2e" / f"{i}.mp4", spec[5], spec[6], start=start, length=length)
        e2e, _ = self.e2e_trace(leak, spec, f"e2e:{i}")
        out = {"copy": spec[0], "kind": spec[1], "start": round(start, 2), "code": CODE, **e2e,
               "seconds": length, "trace_seconds": e2e["seconds"]}
        leak.unlink(missing_ok=True)
        path.write_text(json.dumps(out))
        return out


def write(a, copies: list[dict], tallies: dict, rows: list[dict], e2e: list[dict], load_start, started: float,
          final: bool) -> None:
    total = Tally()
    for t in tallies.values():
        total.merge(t)
    load_end = os.getloadavg()
    minutes = round((time.monotonic() - started) / 60, 1)
    # Every run on this work folder (a resumed run redoes only what is missing): start, minutes, load.
    log = a.work / "runs.json"
    runs = json.loads(log.read_text()) if log.exists() else {}
    runs[RUN_STARTED] = {"minutes": minutes, "load_start": load_start, "load_end": load_end, "code": CODE}
    log.write_text(json.dumps(runs))
    out = {"complete": final, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
           "cpus": os.cpu_count(), "load_start": load_start, "load_end": load_end, "minutes_this_run": minutes,
           "runs": runs,
           "code": sorted({c["code"] for c in copies} | {r["code"] for r in rows} | {CODE}),
           "max_fap": MAX_FAP, "video_seconds": a.video_seconds, "real_sessions": a.real_sessions,
           "population": a.population, "traces_per_copy": a.traces_per_copy,
           "copies": [{k: v for k, v in c.items() if k not in ("z", "index")} | {"segments": len(c["z"])}
                      for c in copies],
           "by_kind": {k: tallies[k].as_dict() for k in tallies}, "calibration": total.as_dict(),
           "p_table": total.p_table(), "std_table": total.std_table(), "e2e_windows": e2e, "traces": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "forensics-controls.json").write_text(json.dumps(out, indent=1))
    (RESULTS / "forensics-controls.svg").write_text(svg(total, f"{total.traces} control traces, "
                                                           f"{total.innocents} innocent session scores"))
    write_markdown(RESULTS / "forensics-controls.md", markdown(out, total, tallies, copies, e2e))


def markdown(out: dict, total: Tally, tallies: dict, copies: list[dict], e2e: list[dict]) -> str:
    L = ["# Forensics benchmark: false accusations on control copies", ""]
    if not out["complete"]:
        L += ["**Partial: the run was still going (or was cut short).**", ""]
    L += [f"Offline run of `bench/forensics/controls.py` (detector code {', '.join(out['code'])}; "
          f"{out['cpus']} cores; runs: " + "; ".join(
              f"{when} ({r['code']}), {r['minutes']} min, load average {tuple(round(x, 1) for x in r['load_start'])} "
              f"at the start, {tuple(round(x, 1) for x in r['load_end'])} at the end" for when, r in out["runs"].items())
          + "). "
          f"Two {out['video_seconds']} s 480x270 synthetic videos (X: testsrc2 + grain; Z: cellular-automaton "
          f"texture + grain) processed by the real pipeline, {out['real_sessions']} seeded real sessions each; "
          f"near-duplicates X' and Z' are re-uploads of the same footage (re-encoded, first second cut) under "
          f"their own ids and sessions. Threshold: false-accusation probability {out['max_fap']:g}.", "",
          "**How the control traces were made.** The extraction (decode frames, register, read the per-segment "
          "soft bits z: readout.read_bits) ran ONCE per copy, inside an end-to-end trace() of the whole copy; "
          f"the {total.traces} control traces re-run only the scoring and decision stages (scoring.score_sessions, "
          f"verdict.accuse) on seeded windows ({'/'.join(str(x) for x in sorted({r['seconds'] for r in out['traces']}))} s) of that evidence, each against the target "
          f"video's real sessions (colluders excluded from the innocents) and {out['population']} fresh seeded "
          f"session ids. Windows of one copy overlap, so they are not independent readings of the copy.", "",
          "## Control copies (one extraction each, and its end-to-end trace of the whole copy)", "",
          "| copy | kind | stream of | traced as | attack | segments read | whole-copy verdict | innocents accused "
          "| best FAP | extraction (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in copies:
        w = c["whole_copy_trace"]
        fap = "-" if w["fap_best"] is None else f"{w['fap_best']:.2g}"
        L.append(f"| {c['name']} | {c['kind']} | {c['video'].upper()} | {c['target'].upper()} | {c['attack']} | "
                 f"{len(c['z'])} | {w['verdict']} | {len(w['innocents_accused'])} | {fap} | {c['extraction_seconds']} |")
    L += ["", "## Control traces per kind", "",
          "| kind | control traces | by window length | innocent scores | innocents accused | smallest innocent p |",
          "|---|---|---|---|---|---|"]

    def lengths(kind=None) -> str:
        got = [r["seconds"] for r in out["traces"] if kind in (None, r["kind"])]
        return ", ".join(f"{s} s: {got.count(s)}" for s in sorted(set(got)))
    for k in KINDS:
        if k in tallies:
            t = tallies[k]
            L.append(f"| {k} | {t.traces} | {lengths(k)} | {t.innocents} | {t.accused_innocents} | {t.min_p:.2g} |")
    L.append(f"| **all** | **{total.traces}** | {lengths()} | **{total.innocents}** | **{total.accused_innocents}** | "
             f"{total.min_p:.2g} |")
    whole = sum(len(c["whole_copy_trace"]["innocents_accused"]) for c in copies)
    verdicts = ", ".join(f"{v} {sum(e['verdict'] == v for e in e2e)}" for v in sorted({e["verdict"] for e in e2e}))
    L += ["", f"End to end: {len(copies)} whole-copy traces (above), {whole} innocents accused"
          + (f"; {len(e2e)} windowed end-to-end traces (a window cut before the re-encode, traced with trace()), "
             f"{sum(len(e['innocents_accused']) for e in e2e)} innocents accused (verdicts: {verdicts})"
             if e2e else "") + ".", "",
          "## Calibration", "", "![calibration](forensics-controls.svg)", "",
          "Innocent p-values against the exact null (P(p <= x) <= x) and, per trace, the reported "
          "false-accusation probability of the best-scoring innocent (M x p; Bonferroni: at most x):", "",
          "| x | innocents with p <= x | observed fraction | model | traces with best innocent FAP <= x | fraction |",
          "|---|---|---|---|---|---|"]
    for r in total.p_table():
        f1 = "-" if r["innocent_fraction"] is None else f"{r['innocent_fraction']:.3g}"
        f2 = "-" if r["trace_fraction"] is None else f"{r['trace_fraction']:.3g}"
        L.append(f"| {r['x']:.0e} | {r['innocent_p_le']} | {f1} | <= {r['x']:.0e} | {r['traces_fap_le']} | {f2} |")
    L += ["", "Standardised innocent scores T / sqrt(sum q^2) against the normal tail (the exact null is what "
          "the verdict uses; the normal is its large-window approximation):", "",
          "| y | innocents with score >= y | observed fraction | normal tail |", "|---|---|---|---|"]
    for r in total.std_table():
        f = "-" if r["fraction"] is None else f"{r['fraction']:.3g}"
        L.append(f"| {r['y']:g} | {r['innocent_std_ge']} | {f} | {r['normal_tail']:.3g} |")
    L += ["", "Reading: the observed fractions should sit at or below the model line; below it where the integer "
          "score grid is coarse (short windows: 15 segments cannot give p below 2^-15 = 3e-5). With "
          f"{total.innocents} innocent scores the table resolves fractions down to ~{1 / max(1, total.innocents):.0e}; "
          "rows below that are 0 or 1 counts.", ""]
    return "\n".join(L)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--video-seconds", type=int, default=246)
    ap.add_argument("--real-sessions", type=int, default=50)
    ap.add_argument("--population", type=int, default=1000)
    ap.add_argument("--traces-per-copy", type=int, default=110)
    ap.add_argument("--copies", default=",".join(c[0] for c in COPIES))
    ap.add_argument("--e2e", type=int, default=0, help="windowed end-to-end traces after the control traces")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench-controls")
    a = ap.parse_args()
    load_start, started = os.getloadavg(), time.monotonic()
    b = Bench(a)
    copies, tallies, rows, e2e = [], {}, [], []
    wanted = a.copies.split(",")
    for spec in (c for c in COPIES if c[0] in wanted):
        ev = b.evidence(spec)
        t, r = b.windows(ev)
        copies.append(ev)
        tallies.setdefault(ev["kind"], Tally()).merge(t)
        rows += r
        w = ev["whole_copy_trace"]
        print(f"[controls] {ev['name']}: {len(ev['z'])} segments, whole copy {w['verdict']} "
              f"({len(w['innocents_accused'])} innocents accused), {len(r)} control traces, "
              f"{t.accused_innocents} innocents accused, min p {t.min_p:.2g}", flush=True)
        write(a, copies, tallies, rows, e2e, load_start, started, final=False)
    for i in range(a.e2e):
        e2e.append(b.e2e_window(i))
        print(f"[controls] e2e {i}: {e2e[-1]['copy']} {e2e[-1]['seconds']} s: {e2e[-1]['verdict']}, "
              f"{len(e2e[-1]['innocents_accused'])} innocents accused", flush=True)
        write(a, copies, tallies, rows, e2e, load_start, started, final=False)
    write(a, copies, tallies, rows, e2e, load_start, started, final=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
