"""A benchmark's Markdown report, rewritten by each run without losing what people wrote in it.

The figures of a report are generated; the accounts are not: what a run meant, what was
compared in the same hour, what was tried and dropped. Those sections have headings that begin
``## Account`` and a rewrite keeps every one of them, in their order, after the new text (so a
rerun cannot silently delete the reasoning behind earlier figures)."""
from __future__ import annotations

from pathlib import Path

ACCOUNT_HEADING = "## Account"


def accounts(text: str) -> list[str]:
    """The hand-written sections of a report: each from a line beginning ``## Account`` up to
    the next first- or second-level heading that does not (its ``###`` subsections go with it)."""
    kept: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith(("# ", "## ")):
            if current:
                kept.append("".join(current))
            current = [line] if line.startswith(ACCOUNT_HEADING) else None
        elif current is not None:
            current.append(line)
    if current:
        kept.append("".join(current))
    return [section.rstrip("\n") + "\n" for section in kept]


def write_markdown(path: Path, generated: str) -> None:
    """Write ``generated`` to ``path``, followed by the accounts of the report it replaces."""
    kept = accounts(path.read_text()) if path.exists() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([generated.rstrip("\n") + "\n", *kept]))
