"""Score every session of a video against the soft bits, with an exact error bound.

Statistic. Segment i gives a soft bit z_i (> 0: the copy carries variant A). Each
session j was served variant A or B by its keyed codeword bit b_j(i); with
c_j(i) = +1 for A and -1 for B its score is

    T_j = sum_i q_i * sign(z_i) * c_j(i),   q_i = round(Q * min(|z_i|, Z_CAP) / Z_CAP)

an integer-weighted vote: confident segments count more, but no single segment can
outweigh many (the cap: |z| = 6 is already a ~1e-9 chance of a wrong bit).

False accusation. An innocent session's codeword is a keyed pseudo-random function
of its id, independent of the copy (its bits were never in it). Given the observed
z's, its score is therefore sum_i q_i * e_i with independent fair signs e_i, whose
distribution we compute *exactly* (a product of two-point laws, convolved on the
integer grid). p_j = P(null >= T_j) holds whatever the noise, the attack or the
video's content. Testing M sessions, the probability that any innocent one scores
that high is at most M * p (Bonferroni): that is the reported false-accusation
probability. Accusation needs it below the threshold; otherwise "no match".

Collusion: a copy mixed from sessions A and B (segment by segment, or frames averaged)
depends only on their codewords, so every other session is still innocent in the sense
above and keeps the bound. Every session at or below the threshold is accused (verdict.py),
and the bound holds for that set: P(some innocent is accused) <= sum over innocents of
P(p_j <= threshold / M) <= threshold. What collusion costs is evidence, not correctness:
with two colluders each agrees with the copy on ~3/4 of segments mixed from both (where
their variants differ, the copy follows the other half the time), and averaged frames
cancel the watermark where they differ (a weight-0 segment), so more footage is needed to
name them (bench/results/forensics-collusion.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svcommon import codeword as cw

Z_CAP = 6.0
Q_LEVELS = 12


@dataclass(frozen=True)
class SessionScore:
    session_id: str
    score: int                  # T_j
    max_score: int              # sum of weights (all segments agree)
    agree: int                  # segments whose sign matches the served variant
    counted: int                # segments with non-zero weight
    p_value: float              # P(innocent score >= T_j)
    false_accusation: float     # min(1, sessions tested * p_value)


def weights(z: np.ndarray) -> np.ndarray:
    return np.rint(Q_LEVELS * np.minimum(np.abs(z), Z_CAP) / Z_CAP).astype(np.int64)


def null_tail(q: np.ndarray) -> tuple[np.ndarray, int]:
    """Survival function of sum q_i e_i (fair signs): tail[t + total] = P(S >= t)."""
    total = int(q.sum())
    pmf = np.zeros(2 * total + 1)
    pmf[total] = 1.0
    for w in q[q > 0]:
        w = int(w)
        nxt = np.zeros_like(pmf)
        nxt[w:] += 0.5 * pmf[:len(pmf) - w]
        nxt[:len(pmf) - w] += 0.5 * pmf[w:]
        pmf = nxt
    tail = np.cumsum(pmf[::-1])[::-1]
    return np.minimum(tail, 1.0), total


def signs_of(secret: bytes, session_id: str, indices: list[int]) -> np.ndarray:
    """+1 where the session was served A, -1 where B (svcommon.codeword: bit 0 = A)."""
    return np.array([1 - 2 * cw.codeword_bit(secret, session_id, i) for i in indices], np.int64)


def score_sessions(z: np.ndarray, indices: list[int], session_ids: list[str], secret: bytes,
                   sessions_tested: int | None = None) -> list[SessionScore]:
    """Scores of every session, best first. sessions_tested (>= len(session_ids)) is
    the Bonferroni count when several videos' sessions are being tested."""
    z = np.asarray(z, np.float64)
    q = weights(z)
    vote = q * np.sign(z).astype(np.int64)
    tail, total = null_tail(q)
    m = max(len(session_ids), sessions_tested or 0, 1)
    counted = int((q > 0).sum())
    out = []
    for sid in session_ids:
        c = signs_of(secret, sid, indices)
        t = int((vote * c).sum())
        agree = int(((vote * c) > 0).sum())
        p = float(tail[t + total]) if total > 0 else 1.0
        out.append(SessionScore(sid, t, total, agree, counted, p, min(1.0, m * p)))
    out.sort(key=lambda s: (-s.score, s.session_id))
    return out
