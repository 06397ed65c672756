"""The one rule for user text shown to other people (titles, descriptions, file names):
no control characters and no invisible formatting characters. Bidi overrides and
isolates (U+202A-202E, U+2066-2069) make ``invoice\u202ekcp.mp4`` display as
``invoicepck.mp4``-style lies; zero-width characters (U+200B-200F, U+FEFF, U+2060-2064)
hide text; C0/C1 controls break logs and headers. Free text refuses them, file names
(display only) have them stripped."""
from __future__ import annotations

import re

# C0 except tab/LF/CR (the callers decide about those), DEL, C1, zero-width and bidi
# marks, line/paragraph separators, bidi embeddings/overrides/isolates, word joiner and
# invisible operators, the BOM, the Arabic letter mark and the Mongolian vowel separator.
INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f"
                       "\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")


def has_invisible(text: str) -> bool:
    return INVISIBLE.search(text) is not None


def strip_invisible(text: str) -> str:
    return INVISIBLE.sub("", text)
