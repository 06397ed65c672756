"""Honest views and the player's quality-of-experience reports (docs/api.md "Views and QoE").

The player reports, on heartbeats and when it ends a session, what it measured for that
session: startup time, playing time, stalls, rendition switches and the stretches of the video
it played. The server credits a report only as far as its own view of the session allows:
playing time never exceeds the time the session has existed (its age by the server's clock),
stalls never exceed what is left of that age, counts at most one per second of age, and the
stretches reported as watched at most twice the credited playing time (2x playback) — so a
forged report buys nothing a real viewer watching for that long would not have got. Credited
figures only grow (reports may arrive out of order: the final one with the end, a heartbeat).

A view counts once per viewer per video per VIEW_REPEAT_MINUTES (30), when a session has
been credited VIEW_MIN_WATCH_SECONDS (10) of playing time; the owner's sessions never count.
The viewer is the signed-in account (every playback is signed in; one account watching on two
devices is one viewer)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from . import repository as repo
from . import schemas as S

RETENTION_SLICES = 20           # the retention curve's points: every 5 % of the duration
MAX_PLAYBACK_RATE = 2.0         # the fastest a viewer plays: bounds the stretches credited as watched


@dataclass(frozen=True)
class Credit:
    """What the server stores for a session after a report (playback_sessions columns)."""
    watch_ms: int
    startup_ms: int | None
    rebuffer_count: int
    rebuffer_ms: int
    bitrate_switches: int
    watched_mask: int


def watched_slices(ranges, duration: float | None, budget_seconds: float) -> int:
    """Bit i set when the union of ``ranges`` (clipped to the video, and to ``budget_seconds``
    of media in their order) covers at least half of the slice [i, i + 1) x duration / 20."""
    if not duration or duration <= 0:
        return 0
    merged: list[list[float]] = []
    for a, b in sorted((max(0.0, a), min(duration, b)) for a, b in ranges):
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    kept, left = [], budget_seconds
    for a, b in merged:
        if left <= 0:
            break
        kept.append((a, min(b, a + left)))
        left -= kept[-1][1] - a
    step, mask = duration / RETENTION_SLICES, 0
    for i in range(RETENTION_SLICES):
        lo, hi = i * step, (i + 1) * step
        covered = sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in kept)
        if covered >= step / 2:
            mask |= 1 << i
    return mask


def credit(s: dict, report: S.QoE, duration: float | None, now: datetime) -> Credit:
    """The session's figures after ``report``, within what the server saw (module docstring)."""
    age_ms = max(0, int((now - s["started_at"]).total_seconds() * 1000))
    per_second = 1 + age_ms // 1000
    watch = max(s["watch_ms"], min(report.watch_ms, age_ms))
    rebuffer = max(s["rebuffer_ms"], min(report.rebuffer_ms, max(0, age_ms - watch)))
    startup = s["startup_ms"]
    if startup is None and report.startup_ms is not None:
        startup = min(report.startup_ms, age_ms)
    budget = watch / 1000 * MAX_PLAYBACK_RATE + (duration or 0) / RETENTION_SLICES
    return Credit(watch_ms=watch, startup_ms=startup,
                  rebuffer_count=max(s["rebuffer_count"], min(report.rebuffer_count, per_second)),
                  rebuffer_ms=rebuffer,
                  bitrate_switches=max(s["bitrate_switches"], min(report.bitrate_switches, per_second)),
                  watched_mask=s["watched_mask"] | watched_slices(report.ranges, duration, budget))


def record_report(conn, s: dict, report: S.QoE | None, duration: float | None, now: datetime) -> int:
    """Store the credited figures of ``report`` (in the caller's transaction, which holds the
    session row); the session's credited playing time after it."""
    if report is None:
        return s["watch_ms"]
    c = credit(s, report, duration, now)
    repo.save_qoe(conn, s["id"], c, now)
    return c.watch_ms


def reaches_view(s: dict, owner_id: str, watch_ms: int) -> bool:
    """Whether this session is now a view to decide on: not decided yet, not the owner's, and
    credited the minimum playing time."""
    return (s["viewed_at"] is None and s["user_id"] != owner_id
            and watch_ms >= 1000 * int(current_app.config["VIEW_MIN_WATCH_SECONDS"]))


def decide_view(conn, s: dict, now: datetime) -> bool:
    """Count the session's view unless the viewer's last counted view of the video is more
    recent than VIEW_REPEAT_MINUTES; its own transaction, after the session's is committed
    (so the video row is never locked while the session row is: an edit of the video locks
    them the other way round). True when counted."""
    counted = repo.record_view(conn, s["id"], s["video_id"], s["user_id"], now,
                               int(current_app.config["VIEW_REPEAT_MINUTES"]))
    if counted is None:         # a concurrent request of this session decided it
        conn.rollback()
        return False
    conn.commit()
    return counted
