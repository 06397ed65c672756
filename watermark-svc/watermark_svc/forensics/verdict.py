"""From the candidates' readouts to a verdict people can act on: match, inconclusive or
no match, and a warning when the fingerprint could not tell near-duplicate videos apart.

Near-duplicates. Two videos sharing footage (the same file uploaded twice, a re-edit, a
series intro) have the same fingerprint over that footage, so the fingerprint cannot pick
between them; their watermark patterns are keyed by video id, so the watermark can. Every
close candidate is read, and:
  - exactly one candidate has a decisive session (false-accusation probability at or below
    the threshold): that session is accused, the others are reported as read and not matching;
  - more than one has: both are reported and no one is accused;
  - none has: the candidate whose watermark is present (below) is the video, and the
    verdict is inconclusive or no match for it.

Collusion. Every session of the video at or below the threshold is accused, not only the top
one: a copy mixed or averaged from several sessions' streams can make more than one decisive
(match_words). Then the residual stage (up to RESIDUAL_ROUNDS times): the segments whose symbol
no accused session was served came from someone else (scoring.residual); every other session
is scored on those alone and accused at its share of the threshold. A colluder whose share of
a mix is too small to stand out over all the segments agrees on nearly all of these. The
threshold is split: the first stage accuses at (1 - RESIDUAL_SHARE) x max_fap, each residual
round at RESIDUAL_SHARE / RESIDUAL_ROUNDS of it, every test at the Bonferroni level, so the
whole set of accused holds an innocent with probability at most max_fap.

Watermark present. Under "this copy does not carry this video's watermark" each segment's z
is a standard normal draw (detector.py: standardised by the residual's own far-shift
correlations), so sum z^2 over k segments is chi-square with k degrees of freedom. The
readout picked the shift and placement (and the lag between near-equal fingerprint peaks)
with the most energy, so the tail is multiplied by that many hypotheses. This test is blind
to the bits' signs: it says the video's watermark is there, never whose it is.

Inconclusive. The watermark is present but no session is decisive: the clip is too short, or
too damaged, or its session is not among those tested. The best session is named as the best
candidate so far -- never accused -- with its agreement (N of M segments) and an estimate of how
much more footage like this would decide: with the per-segment evidence rate observed so far,
the number of segments at which its expected score reaches the threshold under the normal
approximation of the innocent-score null (mean 0, variance sum of squared weights), refined
with the exact null tail (scoring.null_tail) when that is cheap.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy.stats import chi2, norm

from svcommon import codeword as cw

from .readout import SHIFT_RADIUS
from .scoring import SessionScore, Votes, null_tail, residual, score_sessions, served_bits

PRESENCE_MAX_P = 1e-3        # chi-square tail (after the hypotheses) below this: watermark present
EXACT_ESTIMATE_MAX_SEGMENTS = 600   # the exact null tail costs O(n^2) grid steps: refine up to this
# A second video is a near-duplicate candidate when its fingerprint peak stands out at least
# this fraction as far as the best one's (identical content gives ~1.0; the benchmark's
# distinct videos never came within a third).
NEAR_DUPLICATE_RATIO = 0.5


def readout_hypotheses(lags: int) -> int:
    """How many placements the readout's energy maximum was chosen among: the registered and
    the full frame, every shift within SHIFT_RADIUS, at each probed lag."""
    return 2 * (2 * SHIFT_RADIUS + 1) ** 2 * max(1, lags)


def presence_p(z: np.ndarray, hypotheses: int) -> float:
    """Probability that a copy without this video's watermark reads this much energy."""
    if len(z) == 0:
        return 1.0
    return float(min(1.0, hypotheses * chi2.sf(float(np.sum(np.square(z))), len(z))))


RESIDUAL_SHARE = 0.1         # of max_fap, for the residual rounds together (Collusion above)
RESIDUAL_ROUNDS = 2


def accuse(z, indices: list[int], session_ids: list[str], secret: bytes, sessions_tested: int,
           max_fap: float, code: cw.Code = cw.UNIFORM_CODE) -> tuple[list[SessionScore], list[SessionScore]]:
    """The first stage's scores of every session (best first) and the sessions accused, in
    the order found: the first stage's, then each residual round's (``stage`` 2, 3)."""
    bits = {sid: served_bits(secret, sid, indices, code) for sid in session_ids}   # derived once
    scores = score_sessions(z, indices, session_ids, secret, sessions_tested, code, bits=bits)
    found = [s for s in scores if s.false_accusation <= max_fap * (1 - RESIDUAL_SHARE)]
    for stage in range(2, 2 + RESIDUAL_ROUNDS):
        if not found:
            break
        keep = residual(z, [bits[s.session_id] for s in found])
        named = {s.session_id for s in found}
        rest = [sid for sid in session_ids if sid not in named]
        if not keep.any() or not rest:
            break
        more = [replace(s, stage=stage)
                for s in score_sessions(z, indices, rest, secret, sessions_tested, code, keep, bits)
                if s.false_accusation <= max_fap * RESIDUAL_SHARE / RESIDUAL_ROUNDS]
        if not more:
            break
        found += more
    return scores, found


def near_duplicates(significances: list[float]) -> bool:
    """True when the second-best fingerprint candidate is as plausible as the best one."""
    if len(significances) < 2 or significances[0] <= 0:
        return False
    return significances[1] >= NEAR_DUPLICATE_RATIO * significances[0]


def segments_to_decide(votes: Votes, score: int, sessions_tested: int, max_fap: float) -> int | None:
    """Total segments (read so far + more) at which footage like what was read would make the
    best session decisive; None when the evidence rate is not above chance."""
    n = len(votes.gain)
    gain, loss = votes.gain.astype(np.float64), votes.loss.astype(np.float64)
    p = votes.agree_p
    null_mean = float(np.mean(p * gain - (1 - p) * loss)) if n else 0.0     # an innocent's, a segment
    null_var = float(np.mean(p * (1 - p) * (gain + loss) ** 2)) if n else 0.0
    rate = score / n - null_mean if n else 0.0  # the best session's lead a segment, in weight units
    gain_sum = int(votes.gain.sum())
    if rate <= 0 or null_var == 0 or gain_sum == 0:
        return None
    z_star = float(norm.isf(max_fap / max(1, sessions_tested)))
    estimate = max(n + 1, math.ceil((z_star / rate) ** 2 * null_var))
    if estimate > EXACT_ESTIMATE_MAX_SEGMENTS:
        return estimate

    def decides(total: int) -> bool:            # exact tail, the observed segments repeated
        tiled = votes.tiled(total)
        tail, low = null_tail(tiled.gain, tiled.loss, tiled.agree_p)
        high = int(tiled.gain.sum())
        # The expected score: the same share of the (tiled) gains as so far, rounded up in
        # integers (a float product can land a hair above an integer).
        need = -(-high * score // gain_sum)
        return need <= high and sessions_tested * tail[need + low] <= max_fap

    lo, hi = n + 1, estimate
    while not decides(hi) and hi < EXACT_ESTIMATE_MAX_SEGMENTS:
        lo, hi = hi + 1, min(EXACT_ESTIMATE_MAX_SEGMENTS, hi * 2)
    if not decides(hi):
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        if decides(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def match_words(accused: list[dict], sessions_tested: int, max_fap: float) -> str:
    """The match verdict in words. Several sessions at or below the threshold is a collusion:
    each is named with its own evidence. The bound covers the whole set: every session was
    tested at its stage's share of max_fap over sessions_tested (accuse, Bonferroni), so the
    chance that *any* innocent session is among the accused is at most max_fap, however many
    are named."""
    def facts(s: dict) -> str:
        where = ("" if s.get("stage", 1) == 1 else
                 " of the segments no session accused before it was served (the rest of the mix)")
        return (f"{s['agree']} of {s['counted']} segments{where} agree; "
                f"false-accusation probability {s['false_accusation']:.2e}")
    if len(accused) == 1:
        return f"match: {facts(accused[0])} over {sessions_tested} sessions tested"
    each = "; ".join(f"session {s['session_id']}: {facts(s)}" for s in accused)
    return (f"match: {len(accused)} sessions accused: several sessions contributed to this copy "
            f"(a collusion, e.g. streams mixed or averaged). {each}. Over {sessions_tested} sessions "
            f"tested, the probability that any innocent session is among those accused is at most "
            f"{max_fap:g}")


def inconclusive(attempt: dict, max_fap: float, segment_seconds: float, video_segments: int) -> dict:
    """The inconclusive verdict's facts for the chosen video's readout, in data and words."""
    best, runner = attempt["best"], attempt["runner_up"]
    read = attempt["segments_read"]
    tied = attempt["tied_with_best"]
    out = {"best_candidate": {"session_id": best["session_id"]} if best else None,
           "tied_with": tied, "segments_read": read,
           "segments_agreeing": best["agree"] if best else 0,
           "false_accusation_probability": best["false_accusation"] if best else None,
           "more_segments_needed": None, "more_seconds_needed": None, "whole_video_may_not_decide": False}
    if best is None:
        out["explanation"] = "the watermark is present but nobody has watched this video"
        return out
    total = attempt["segments_to_decide"]
    agree = f"{best['agree']} of {read} segments read agree with session {best['session_id']}"
    if tied:
        agree += f" ({tied} other session{'s' if tied > 1 else ''} score{'' if tied > 1 else 's'} the same)"
    words = (f"inconclusive: the watermark is present; {agree}, the best candidate so far, not an "
             f"accusation: its false-accusation probability {best['false_accusation']:.2g} is above "
             f"the threshold {max_fap:g}")
    if total is None:
        words += ("; more footage is not expected to decide, since the best session agrees no more "
                  "than chance (its session may not be among those tested, or the copy mixes sessions)")
    else:
        more = total - read
        out.update(more_segments_needed=more, more_seconds_needed=round(more * segment_seconds, 1))
        words += (f"; about {more} more segments ({out['more_seconds_needed']:g} s) of footage like this "
                  f"would decide")
        if total > video_segments:
            out["whole_video_may_not_decide"] = True
            words += f", more than the whole video holds ({video_segments} segments)"
    if runner is not None and not tied:
        words += f"; runner-up {runner['session_id']} agrees on {runner['agree']} of {runner['counted']}"
    out["explanation"] = words
    return out


UNREAD_NAMED = 3           # close matches not read, named in the ambiguity warning


def ambiguity(chosen: dict, attempts: list[dict], unread: list[str]) -> dict | None:
    """The warning when the fingerprint matched more than one video closely."""
    others = [a for a in attempts if a is not chosen]
    if not others and not unread:
        return None
    runner = others[0]["video_id"] if others else unread[0]
    said = []
    for a in others:
        state = ("its watermark matches a session too" if a["accused"] else
                 "its watermark is present, no session decisive" if a["watermark_present"] else
                 "its watermark is absent")
        said.append(f"{a['video_id']} ({state})")
    # Every video read is named (at most MAX_CANDIDATES); of those not read, a few: a catalogue
    # sharing footage (a series' intro) can match dozens, which would bury the warning.
    said += [f"{v} (not read)" for v in unread[:UNREAD_NAMED]]
    if len(unread) > UNREAD_NAMED:
        more = len(unread) - UNREAD_NAMED
        said.append(f"{more} more video{'s' if more > 1 else ''} not read (the report's identification lists "
                    "the closest)")
    # What to do about the unread ones: a trace naming a video reads that one.
    todo = "; to read one not read, trace the copy again naming that video" if unread else ""
    return {"runner_up_video_id": runner,
            "warning": (f"video identification was ambiguous: the copy's fingerprint also matches "
                        f"{', '.join(said)}; only the watermark tells them apart{todo}")}
