"""bench/results/forensics-scale.{json,md}: written after every step (a cut run keeps its data)."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS_JSON = ROOT / "bench" / "results" / "forensics-scale.json"
RESULTS_MD = RESULTS_JSON.with_suffix(".md")


def write_report(state: dict, a) -> None:
    state.update(when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), host=platform.node(),
                 cpus=os.cpu_count(), load=[round(x, 2) for x in os.getloadavg()],
                 settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()
                           if k not in ("admin_password",)})
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(state, indent=1))
    RESULTS_MD.write_text("# Forensics at catalogue scale (placeholder)\n")
