"""The ambiguity warning stays readable however many near-duplicates the catalogue holds
(pure: no stack)."""
from __future__ import annotations

from watermark_svc.forensics.verdict import UNREAD_NAMED, ambiguity


def _attempt(video_id: str, present: bool) -> dict:
    return {"video_id": video_id, "accused": False, "watermark_present": present}


def test_the_warning_names_every_video_read_and_a_few_not_read():
    chosen = _attempt("chosen", True)
    read = [chosen, _attempt("twin", False)]
    unread = [f"dup{n:02d}" for n in range(12)]
    w = ambiguity(chosen, read, unread)
    assert w["runner_up_video_id"] == "twin"
    text = w["warning"]
    assert "twin (its watermark is absent)" in text
    assert all(f"dup{n:02d} (not read)" in text for n in range(UNREAD_NAMED))
    assert f"dup{UNREAD_NAMED:02d}" not in text and "9 more videos not read" in text
    assert "only the watermark tells them apart" in text and "trace the copy again naming that video" in text
    few = ambiguity(chosen, [chosen], ["dup00", "dup01"])["warning"]
    assert "dup01 (not read)" in few and "more video" not in few
    assert ambiguity(chosen, [chosen], []) is None
    assert "naming" not in ambiguity(chosen, read, [])["warning"]        # every close one was read
