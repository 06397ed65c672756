// Quality of experience of one playback session, measured on the video element (what Mux Data
// reports; docs/api.md "Views and QoE"): startup time (play intent to the first frame),
// playing time (wall-clock time the picture advanced), stalls after the start (count and
// time; a seek's wait is not a stall, nor the player's own reload of a grown ladder), rendition
// switches and the stretches of the video played (for the owner's retention curve). player.js
// sends ``report()`` with heartbeats and with the session's end; the server credits it only
// within its own view of the session.
"use strict";
const QoE = (() => {
  const MAX_RANGES = 200, JUMP = 1.5;   // a position step over JUMP s (times the rate) is a seek

  function create(video) {
    let intentAt = null, startupMs = null, playingSince = null, watchMs = 0;
    let stallSince = null, stalls = 0, stallMs = 0, switches = 0, lastVariant = null;
    let ranges = [], open = null, lastPos = null, seeking = false, reloading = false;
    const now = () => performance.now();

    function pausePlaying() { if (playingSince !== null) { watchMs += now() - playingSince; playingSince = null; } }
    function endStall() { if (stallSince !== null) { stallMs += now() - stallSince; stallSince = null; } }
    function closeRange() { if (open) { ranges.push(open); open = null; } if (ranges.length > MAX_RANGES) merge(); }
    function merge() {
      ranges.sort((a, b) => a[0] - b[0]);
      const out = [];
      for (const r of ranges) {
        if (out.length && r[0] <= out[out.length - 1][1]) out[out.length - 1][1] = Math.max(out[out.length - 1][1], r[1]);
        else out.push([r[0], r[1]]);
      }
      ranges = out.slice(-MAX_RANGES);
    }

    video.addEventListener("playing", () => {
      if (startupMs === null && intentAt !== null) startupMs = Math.round(now() - intentAt);
      endStall();
      seeking = reloading = false;
      if (playingSince === null) playingSince = now();
    });
    video.addEventListener("waiting", () => {
      pausePlaying();
      // A stall is waiting while playing after the first frame, not the wait a seek or a reload causes.
      if (startupMs !== null && !seeking && !reloading && !video.seeking && stallSince === null) {
        stalls += 1; stallSince = now();
      }
    });
    for (const ev of ["pause", "ended"]) {
      video.addEventListener(ev, () => {
        pausePlaying(); endStall(); closeRange(); lastPos = null; reloading = false;
      });
    }
    video.addEventListener("seeking", () => { seeking = true; endStall(); closeRange(); lastPos = null; });
    video.addEventListener("seeked", () => { seeking = false; });
    video.addEventListener("timeupdate", () => {
      const t = video.currentTime;
      if (video.paused || video.seeking || !Number.isFinite(t)) return;
      if (lastPos !== null && t >= lastPos && t - lastPos <= JUMP * Math.max(1, video.playbackRate)) {
        if (open) open[1] = t; else open = [lastPos, t];
      } else {
        closeRange();
      }
      lastPos = t;
    });

    // Figures since the current session began (each session is credited on its own).
    let base = { watch: 0, stalls: 0, stallMs: 0, switches: 0 }, ownStartup = false;
    function totals() {
      return { watch: watchMs + (playingSince !== null ? now() - playingSince : 0), stalls, switches,
               stallMs: stallMs + (stallSince !== null ? now() - stallSince : 0) };
    }
    function newSession(fromIntent) {
      closeRange();
      base = totals(); ranges = []; ownStartup = fromIntent;
      if (fromIntent) { intentAt = now(); startupMs = null; }
    }

    return {
      // A session opened by the viewer's play intent (startup time runs from here to the first
      // frame), or one that replaced an expired session mid-playback (no startup of its own).
      begin() { newSession(true); },
      renewed() { newSession(false); },
      // The player loads the manifest again at the position (a rung joined the ladder): its wait,
      // until the picture plays again, is the player's choice, not a stall.
      reloading() { reloading = true; endStall(); },
      // A shaka variant became active (ABR or the quality menu): a switch unless it is the first.
      variant(id) { if (id == null || id === lastVariant) return; if (lastVariant !== null) switches += 1; lastVariant = id; },
      watchMs() { return totals().watch - base.watch; },
      report() {
        const t = totals(), played = open ? [...ranges, open] : ranges;
        return {
          startup_ms: ownStartup && startupMs !== null ? Math.min(startupMs, 600000) : null,
          watch_ms: Math.round(t.watch - base.watch),
          rebuffer_count: t.stalls - base.stalls,
          rebuffer_ms: Math.round(t.stallMs - base.stallMs),
          bitrate_switches: t.switches - base.switches,
          ranges: played.slice(-MAX_RANGES).map(([a, b]) => [Math.round(a * 1000) / 1000, Math.round(b * 1000) / 1000]),
        };
      },
    };
  }
  return { create };
})();
