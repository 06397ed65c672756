"""Where `make test`'s time goes: the seconds of each test module (setup, calls and teardown
summed, as pytest's JUnit report gives them), largest first.

    .venv/bin/python scripts/test_times.py [var/test/junit.xml] [--top 30]
"""
from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import Counter


def module_seconds(path: str) -> Counter:
    totals: Counter = Counter()
    for case in ET.parse(path).getroot().iter("testcase"):
        parts = case.get("classname", "?").split(".")
        if len(parts) > 1 and parts[-1].startswith("Test"):      # a test class: its module
            parts = parts[:-1]
        totals[".".join(parts)] += float(case.get("time") or 0)
    return totals


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report", nargs="?", default="var/test/junit.xml")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    totals = module_seconds(args.report)
    print(f"{sum(totals.values()):8.0f} s  all modules (summed over workers)")
    for name, seconds in totals.most_common(args.top):
        print(f"{seconds:8.1f} s  {name}")


if __name__ == "__main__":
    main()
