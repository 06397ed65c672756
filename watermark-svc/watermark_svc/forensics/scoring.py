"""Score every session of a video against the soft bits, with an exact error bound.

Statistic. Segment i gives a soft bit z_i (> 0: the copy carries variant A), read as the
copy's symbol y_i (A or B) with weight q_i = round(Q * min(|z_i|, Z_CAP) / Z_CAP): confident
segments count more, but no single segment can outweigh many (the cap: |z| = 6 is already a
~1e-9 chance of a wrong bit). Session j was served its codeword bit x_j(i) (svcommon.codeword),
and scores

    T_j = sum_i q_i * (gain_i if x_j(i) = y_i else -loss_i)

an integer-weighted vote. Under the uniform code gain = loss = 1 (a plain agreement count).
Under the Tardos code (scheme tardos-n3) position i has a known bias, and an innocent
session's bit equals y_i with probability pi_i (the bias of y_i's symbol there): agreeing on
a rare symbol (pi < 1/2) gains 4 and disagreeing costs 1, the reverse for a common one
(symmetric Tardos scores sqrt((1-pi)/pi) and sqrt(pi/(1-pi)), 3.73 : 1, in integers).

False accusation. An innocent session's codeword is a keyed pseudo-random function of its
id, independent of the copy (its bits were never in it). Given the observed copy, its
score is therefore a sum of independent two-point draws (+q gain w.p. pi, -q loss
otherwise; +-q with fair signs under the uniform code), whose distribution we compute
*exactly* (convolved on the integer grid). p_j = P(null >= T_j) holds whatever the noise,
the attack or the video's content. Testing M sessions, the probability that any innocent
one scores that high is at most M * p (Bonferroni): that is the reported false-accusation
probability. Accusation needs it below the threshold; otherwise "no match".

Collusion. A copy mixed from several sessions' streams depends only on their codewords, so
every other session is still innocent in the sense above and keeps the bound (verdict.py
accuses every session at or below the threshold). Mixing costs evidence: with two colluders
under the uniform code each agrees with the copy on ~3/4 of the segments, and averaged frames
cancel the watermark where their variants differ. Once some sessions are accused, the
segments where the copy's symbol differs from every accused session's bit (``residual``)
must have come from someone else: scored on those alone, a further colluder agrees on nearly
all of them while an innocent's bits there are still independent draws, so the same exact
null holds (verdict.accuse splits the threshold between the stages).
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
    max_score: int              # sum of gains (all segments agree)
    agree: int                  # segments whose sign matches the served variant
    counted: int                # segments with non-zero weight
    p_value: float              # P(innocent score >= T_j)
    false_accusation: float     # min(1, sessions tested * p_value)
    stage: int = 1              # 1: scored on every segment; 2+: on a residual (verdict.accuse)


RARE_GAIN = 4               # Tardos: agreeing on a rare symbol (and disagreeing on a common one)


@dataclass(frozen=True)
class Votes:
    """What a copy's segments say, per segment read: the copy's symbol, and what a session
    agreeing with it gains, disagreeing loses, and the chance an innocent session agrees."""
    symbol: np.ndarray        # 0 (A) or 1 (B)
    gain: np.ndarray          # int64 >= 0 (0: a segment that carries no evidence)
    loss: np.ndarray          # int64 >= 0
    agree_p: np.ndarray       # float64: P(an innocent session's bit equals symbol)

    def only(self, keep: np.ndarray) -> "Votes":
        """The same votes with every segment outside ``keep`` weighted 0."""
        return Votes(self.symbol, np.where(keep, self.gain, 0), np.where(keep, self.loss, 0), self.agree_p)

    def tiled(self, n: int) -> "Votes":
        """These segments repeated to ``n`` (verdict.segments_to_decide's projection)."""
        return Votes(*(np.resize(a, n) for a in (self.symbol, self.gain, self.loss, self.agree_p)))


def weights(z: np.ndarray) -> np.ndarray:
    return np.rint(Q_LEVELS * np.minimum(np.abs(z), Z_CAP) / Z_CAP).astype(np.int64)


def votes(z: np.ndarray, indices: list[int], secret: bytes, code: cw.Code = cw.UNIFORM_CODE) -> Votes:
    z = np.asarray(z, np.float64)
    q = weights(z)
    symbol = (z < 0).astype(np.int64)
    p_b = np.array([cw.bias_threshold(secret, code, i) for i in indices], np.float64) / 2.0 ** 32
    agree_p = np.where(symbol == 1, p_b, 1.0 - p_b) if len(z) else np.zeros(0)
    gain = q * np.where(agree_p < 0.5, RARE_GAIN, 1)
    loss = q * np.where(agree_p > 0.5, RARE_GAIN, 1)
    return Votes(symbol, gain, loss, agree_p)


def null_tail(gain: np.ndarray, loss: np.ndarray | None = None,
              agree_p: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Survival function of an innocent's score, sum of independent draws (+gain_i with
    probability agree_p_i, else -loss_i; fair +-gain_i by default): tail[t + low] = P(S >= t),
    t from -low (every segment lost) to the sum of gains."""
    gain = np.asarray(gain, np.int64)
    loss = gain if loss is None else np.asarray(loss, np.int64)
    agree_p = np.full(len(gain), 0.5) if agree_p is None else np.asarray(agree_p, np.float64)
    low, high = int(loss.sum()), int(gain.sum())
    pmf = np.zeros(low + high + 1)
    pmf[low] = 1.0
    size = len(pmf)
    for g, l_, p in zip(gain.tolist(), loss.tolist(), agree_p.tolist()):
        if g == 0 and l_ == 0:
            continue
        nxt = np.zeros_like(pmf)
        nxt[g:] += p * pmf[:size - g]            # agree: +g
        nxt[:size - l_] += (1.0 - p) * pmf[l_:]  # disagree: -l
        pmf = nxt
    tail = np.cumsum(pmf[::-1])[::-1]
    return np.minimum(tail, 1.0), low


def served_bits(secret: bytes, session_id: str, indices: list[int], code: cw.Code = cw.UNIFORM_CODE) -> np.ndarray:
    """The session's codeword bits (1 = B) at the segments read."""
    return np.array(cw.codeword_bits(secret, session_id, indices, code), np.int64)


def score_sessions(z: np.ndarray, indices: list[int], session_ids: list[str], secret: bytes,
                   sessions_tested: int | None = None, code: cw.Code = cw.UNIFORM_CODE,
                   keep: np.ndarray | None = None, bits: dict[str, np.ndarray] | None = None) -> list[SessionScore]:
    """Scores of every session, best first. sessions_tested (>= len(session_ids)) is
    the Bonferroni count when several videos' sessions are being tested; ``keep``: score
    only these segments (the residual stage), the others weighted 0; ``bits``: the sessions'
    served_bits when the caller already derived them."""
    v = votes(z, indices, secret, code)
    if keep is not None:
        v = v.only(keep)
    tail, low = null_tail(v.gain, v.loss, v.agree_p)
    total = int(v.gain.sum())
    m = max(len(session_ids), sessions_tested or 0, 1)
    live = (v.gain > 0) | (v.loss > 0)
    counted = int(live.sum())
    out = []
    for sid in session_ids:
        served = bits[sid] if bits is not None else served_bits(secret, sid, indices, code)
        agrees = served == v.symbol
        t = int(np.where(agrees, v.gain, -v.loss).sum())
        p = float(tail[t + low]) if counted else 1.0
        out.append(SessionScore(sid, t, total, int((agrees & live).sum()), counted, p, min(1.0, m * p)))
    out.sort(key=lambda s: (-s.score, s.session_id))
    return out


def residual(z: np.ndarray, accused_bits: list[np.ndarray]) -> np.ndarray:
    """The segments whose symbol no accused session (their served_bits) was served: someone
    else's, or misread."""
    symbol = (np.asarray(z, np.float64) < 0).astype(np.int64)
    keep = np.ones(len(symbol), bool)
    for served in accused_bits:
        keep &= served != symbol
    return keep
