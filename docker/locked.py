"""Print the entries of requirements.lock (with their hashes) that some roots need.

One lock (`uv pip compile --generate-hashes`, see docker/README.md) pins every Python
package of the project; an image installs only the part its service needs, still pinned
and hash-checked. What a package is needed by is read from the lock's `# via` annotations
(uv's `--annotation-style line`), so the lock stays the single source of versions:
  python docker/locked.py requirements.lock svcommon auth-svc setuptools
Roots: `svcommon` (common/pyproject.toml), a service folder (its requirements*.txt), or a
package name."""
from __future__ import annotations

import re
import sys


def entries(text: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (the entry's lines, what it is needed by)."""
    out: dict[str, tuple[str, set[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.strip()):
        name = re.split(r"[=<>\[ ;]", block, maxsplit=1)[0].lower()
        via = re.search(r"# via (.*)", block)
        needers = {v.strip() for v in via.group(1).split(",")} if via else set()
        out[name] = (re.sub(r"\s*# via .*", "", block).rstrip(" \\"), needers)
    return out


def needed(lock: dict[str, tuple[str, set[str]]], roots: list[str]) -> list[str]:
    want = {r.lower() for r in roots}
    keep: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, (_, needers) in lock.items():
            if name in keep:
                continue
            for n in needers:
                ref = n.removeprefix("-r ").split("/")[0].split(" ")[0].lower()
                if name in want or ref in want or ref in keep:
                    keep.add(name)
                    changed = True
                    break
    return [lock[n][0] for n in sorted(keep)]


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        print("\n".join(needed(entries(f.read()), sys.argv[2:])))
