"""Control traces and the calibration of the detector's false-accusation probability (issue 19
item 5), shared by bench/forensics/controls.py and its CI smoke test (tests/test_forensics_controls.py).

A control trace scores a window of evidence (per-segment soft bits z read from a copy) against
sessions with the detector's own code: verdict.accuse (scoring.score_sessions, then the
accusation decision with its residual rounds). Its innocent sessions' p-values go into a Tally, which keeps counts on fixed
grids (about a million p-values reduce to a few dozen numbers):

- per innocent session: how many have p <= x. The exact null (scoring.py) says P(p <= x) <= x,
  below x where the integer score grid is coarse (short windows, few weight levels);
- per innocent session: how many have a standardised score T / sqrt(sum q^2) >= y, against the
  normal tail the score approaches for long windows;
- per trace: how many have the best innocent's false-accusation probability (the number the
  verdict reports, M x p) <= x; Bonferroni says at most x.

svg() draws both tails on log axes with no plotting library (none is installed here).
"""
from __future__ import annotations

import math
from html import escape

import numpy as np
from scipy.stats import norm

from watermark_svc.forensics import verdict
from watermark_svc.forensics.scoring import weights

P_GRID = [10 ** (-k / 4) for k in range(1, 25)]      # 10^-0.25 ... 1e-6
Z_GRID = [k / 4 for k in range(0, 29)]               # standardised score 0 ... 7
DECADES = [10.0 ** -k for k in range(1, 7)]          # the table's rows: 1e-1 ... 1e-6


class Tally:
    """Counts over the grids above; merge() adds another tally, as_dict()/from_dict() store it."""

    def __init__(self) -> None:
        self.innocents = 0
        self.traces = 0
        self.accused_innocents = 0
        self.min_p = 1.0
        self.max_std = -math.inf
        self.p_le = [0] * len(P_GRID)
        self.std_ge = [0] * len(Z_GRID)
        self.fap_le = [0] * len(P_GRID)

    def add(self, p: np.ndarray, std: np.ndarray, best_fap: float, accused: int) -> None:
        p, std = np.asarray(p, np.float64), np.asarray(std, np.float64)
        self.traces += 1
        self.innocents += len(p)
        self.accused_innocents += accused
        if len(p):
            self.min_p = min(self.min_p, float(p.min()))
            self.max_std = max(self.max_std, float(std.max()))
        self.p_le = [c + int((p <= x).sum()) for c, x in zip(self.p_le, P_GRID)]
        self.std_ge = [c + int((std >= y).sum()) for c, y in zip(self.std_ge, Z_GRID)]
        self.fap_le = [c + (best_fap <= x) for c, x in zip(self.fap_le, P_GRID)]

    def merge(self, other: "Tally") -> "Tally":
        for k in ("innocents", "traces", "accused_innocents"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.min_p = min(self.min_p, other.min_p)
        self.max_std = max(self.max_std, other.max_std)
        for k in ("p_le", "std_ge", "fap_le"):
            setattr(self, k, [a + b for a, b in zip(getattr(self, k), getattr(other, k))])
        return self

    def as_dict(self) -> dict:
        return {"innocents": self.innocents, "traces": self.traces, "accused_innocents": self.accused_innocents,
                "min_p": self.min_p, "max_std": None if self.max_std == -math.inf else self.max_std,
                "p_grid": P_GRID, "p_le": self.p_le, "std_grid": Z_GRID, "std_ge": self.std_ge,
                "fap_le": self.fap_le}

    @classmethod
    def from_dict(cls, d: dict) -> "Tally":
        t = cls()
        for k in ("innocents", "traces", "accused_innocents", "min_p", "p_le", "std_ge", "fap_le"):
            setattr(t, k, d[k])
        t.max_std = -math.inf if d["max_std"] is None else d["max_std"]
        return t

    def p_table(self) -> list[dict]:
        """One row a decade: innocents with p <= x, traces whose best innocent's FAP <= x."""
        rows = []
        for x in DECADES:
            k = min(range(len(P_GRID)), key=lambda i: abs(math.log10(P_GRID[i] / x)))
            rows.append({"x": x, "innocent_p_le": self.p_le[k],
                         "innocent_fraction": self.p_le[k] / self.innocents if self.innocents else None,
                         "traces_fap_le": self.fap_le[k],
                         "trace_fraction": self.fap_le[k] / self.traces if self.traces else None})
        return rows

    def std_table(self, at=(2.0, 3.0, 4.0, 4.5, 5.0, 5.5)) -> list[dict]:
        rows = []
        for y in at:
            c = self.std_ge[Z_GRID.index(y)]
            rows.append({"y": y, "innocent_std_ge": c, "fraction": c / self.innocents if self.innocents else None,
                         "normal_tail": float(norm.sf(y))})
        return rows


def control_trace(z, indices: list[int], sessions: list[str], secret: bytes, innocent: set[str],
                  max_fap: float, tally: Tally) -> dict:
    """Score one window with the detector's code and add its innocents to the tally. `innocent`:
    the sessions that did not contribute to the copy (every scored one except colluders)."""
    z = np.asarray(z, np.float64)
    scores, found = verdict.accuse(z, indices, sessions, secret, len(sessions), max_fap)
    accused = [s.session_id for s in found]
    inn = [s for s in scores if s.session_id in innocent]
    spread = math.sqrt(float(np.sum(weights(z).astype(np.float64) ** 2)))
    p = np.array([s.p_value for s in inn])
    std = np.array([s.score for s in inn], np.float64) / spread if spread else np.zeros(len(inn))
    best_fap = inn[0].false_accusation if inn else 1.0     # scores are best first
    wrong = [s for s in accused if s in innocent]
    tally.add(p, std, best_fap, len(wrong))
    return {"segments": len(z), "sessions": len(sessions), "innocents": len(inn), "innocents_accused": wrong,
            "best_innocent_fap": float(f"{best_fap:.3g}"),
            "others": {s.session_id: float(f"{s.false_accusation:.3g}") for s in scores if s.session_id not in innocent},
            "accused": accused}


# --- the figure ----------------------------------------------------------------------------

def _axis(lo: float, hi: float, log: bool):
    if log:
        a, b = math.log10(lo), math.log10(hi)
        return lambda v: (math.log10(max(v, lo)) - a) / (b - a)
    return lambda v: (v - lo) / (hi - lo)


def _panel(x0, y0, w, h, title, xlabel, ylabel, xr, yr, xlog, series, xticks, yticks, fmt_x) -> list[str]:
    fx, fy = _axis(*xr, xlog), _axis(*yr, True)
    px = lambda v: x0 + w * fx(v)                                  # noqa: E731
    py = lambda v: y0 + h * (1 - fy(v))                            # noqa: E731
    out = [f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#333"/>',
           f'<text x="{x0 + w / 2}" y="{y0 - 10}" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
           f'<text x="{x0 + w / 2}" y="{y0 + h + 36}" text-anchor="middle">{escape(xlabel)}</text>',
           f'<text transform="translate({x0 - 48},{y0 + h / 2}) rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>']
    for t in xticks:
        out.append(f'<line x1="{px(t):.1f}" y1="{y0}" x2="{px(t):.1f}" y2="{y0 + h}" stroke="#ddd"/>'
                   f'<text x="{px(t):.1f}" y="{y0 + h + 16}" text-anchor="middle" font-size="11">{fmt_x(t)}</text>')
    for t in yticks:
        out.append(f'<line x1="{x0}" y1="{py(t):.1f}" x2="{x0 + w}" y2="{py(t):.1f}" stroke="#ddd"/>'
                   f'<text x="{x0 - 6}" y="{py(t) + 4:.1f}" text-anchor="end" font-size="11">1e{round(math.log10(t))}</text>')
    for k, (label, pts, colour, dashed) in enumerate(series):
        pts = [(x, y) for x, y in pts if y > 0 and xr[0] <= x <= xr[1]]
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        if pts:
            line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            if not dashed:
                out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in pts]
        ly = y0 + 16 + 16 * k
        out.append(f'<line x1="{x0 + 10}" y1="{ly - 4}" x2="{x0 + 34}" y2="{ly - 4}" stroke="{colour}" '
                   f'stroke-width="2"{dash}/><text x="{x0 + 40}" y="{ly}" font-size="11">{escape(label)}</text>')
    return out


def svg(t: Tally, note: str = "") -> str:
    """Two panels: innocent p-value survival vs the model (fraction = x) and the per-trace
    reported false-accusation probability; standardised innocent scores vs the normal tail."""
    floor = 10.0 ** math.floor(math.log10(1 / max(1, t.innocents)))
    yr = (min(1e-7, floor), 1.0)
    yticks = [10.0 ** -k for k in range(0, -int(round(math.log10(yr[0]))) + 1)]
    n, m = max(1, t.innocents), max(1, t.traces)
    left = _panel(80, 50, 360, 300, "Innocent p-values vs the exact null", "x", "fraction <= x", (1e-6, 1.0),
                  yr, True, [
                      ("model: fraction = x", [(x, x) for x in [1e-6, 1.0]], "#888", True),
                      (f"innocent sessions' p ({t.innocents})", [(x, c / n) for x, c in zip(P_GRID, t.p_le)],
                       "#1f77b4", False),
                      (f"best innocent's reported FAP, per trace ({t.traces})",
                       [(x, c / m) for x, c in zip(P_GRID, t.fap_le)], "#d62728", False),
                      ("resolution: 1 / innocents", [(1e-6, 1 / n), (1.0, 1 / n)], "#bbb", True)],
                  [10.0 ** -k for k in range(0, 7)], yticks, lambda v: f"1e{round(math.log10(v))}")
    right = _panel(540, 50, 360, 300, "Innocent standardised scores vs normal", "y = T / sqrt(sum q^2)",
                   "fraction >= y", (0.0, 7.0), yr, False, [
                       ("normal tail", [(y / 10, float(norm.sf(y / 10))) for y in range(0, 71)], "#888", True),
                       ("innocent sessions", [(y, c / n) for y, c in zip(Z_GRID, t.std_ge)], "#1f77b4", False)],
                   list(range(0, 8)), yticks, lambda v: f"{v:g}")
    body = "\n".join(left + right)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="960" height="430" font-family="sans-serif" '
            f'font-size="13">\n<rect width="960" height="430" fill="white"/>\n{body}\n'
            f'<text x="480" y="420" text-anchor="middle" font-size="11">{escape(note)}</text>\n</svg>\n')
