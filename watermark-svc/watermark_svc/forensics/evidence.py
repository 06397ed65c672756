"""The evidence record: who the matched session belongs to, frozen into the result.

The snapshot is taken when the detection finishes and stored with it, so the report
still says who it was after the account, device or video is deleted, and it says
what the database said *then*.
"""
from __future__ import annotations

from svcommon.timeutil import iso

from .. import repository as repo


def session_snapshot(conn, session_id: str) -> dict | None:
    row = repo.session_detail(conn, session_id)
    if row is None:
        return None
    return {
        "session_id": row["session_id"], "video_id": row["video_id"], "video_title": row["video_title"],
        "user": {"id": row["user_id"], "username": row["username"], "email": row["email"]},
        "device_id": row["device_id"],
        "device": {"id": row["device_id"], "key_thumbprint": row["jkt"],
                   "fingerprint": {"user_agent": row["device_user_agent"], "screen": row["screen"],
                                   "timezone": row["timezone"], "language": row["language"]},
                   "first_seen": iso(row["device_first_seen"]), "last_seen": iso(row["device_last_seen"]),
                   "last_ip": row["device_last_ip"], "revoked_at": iso(row["device_revoked_at"])},
        "ip": row["ip"], "user_agent": row["session_user_agent"],
        "started_at": iso(row["started_at"]), "ended_at": iso(row["ended_at"]),
        "last_heartbeat_at": iso(row["last_heartbeat_at"]),
        "codeword_length": row["codeword_length"], "tag_issued_at": row["tag_issued_at"],
    }


def enrich(conn, result: dict, titles: dict[str, str]) -> dict:
    """Add the accused (and runner-up, also-accused, best-candidate) sessions' facts and the
    titles of the videos read (titles: video id -> title) to a trace result."""
    result["video_title"] = titles.get(result.get("video_id"))
    for cand in result.get("candidates", []):
        cand["video_title"] = titles.get(cand["video_id"])
    if result.get("ambiguity"):
        result["ambiguity"]["runner_up_title"] = titles.get(result["ambiguity"]["runner_up_video_id"])
    best = (result.get("inconclusive") or {}).get("best_candidate")
    if best:                               # named as the best candidate so far, never accused
        best["user"] = (session_snapshot(conn, best["session_id"]) or {}).get("user")
    match = result.get("match")
    if match:
        snap = session_snapshot(conn, match["session_id"]) or {"session_id": match["session_id"]}
        match.update(snap)
    robust = result.get("robust") or {}
    runner = robust.get("runner_up")
    if runner:
        snap = session_snapshot(conn, runner["session_id"])
        runner["user"] = (snap or {}).get("user")
    result["also_accused_details"] = [session_snapshot(conn, s) for s in result.get("also_accused", [])]
    return result


def verdict_of(result: dict) -> str:
    """'match', 'inconclusive' or 'no_match' (results stored before verdicts had only a match)."""
    return result.get("verdict") or ("match" if result.get("match") else "no_match")


def _inconclusive_view(inc: dict | None) -> dict | None:
    if inc is None:
        return None
    keys = ("best_candidate", "tied_with", "segments_read", "segments_agreeing", "false_accusation_probability",
            "more_segments_needed", "more_seconds_needed", "whole_video_may_not_decide", "candidates", "explanation")
    return {k: inc.get(k) for k in keys}


def api_view(det: dict, report_url: str) -> dict:
    """The contract's GET /api/forensics/detect/{id} shape (plus progress and step)."""
    import json
    result = json.loads(det["result"]) if det.get("result") else None
    body = {"job_id": det["id"], "status": det["status"], "progress": det["progress"], "step": det["step"],
            "suspect_name": det["suspect_name"], "created_at": iso(det["created_at"]),
            "finished_at": iso(det["finished_at"]), "error": det["error"] if det["status"] in ("failed", "cancelled") else None}
    if result is not None:
        m = result.get("match")
        body["result"] = {
            "video_id": result.get("video_id"), "video_title": result.get("video_title"),
            "match": ({"session_id": m.get("session_id"), "user": m.get("user"), "device_id": m.get("device_id"),
                       "ip": m.get("ip"), "started_at": m.get("started_at")} if m else None),
            "also_accused": result.get("also_accused", []),
            "false_accusation_probability": result.get("false_accusation_probability"),
            "segments_read": result.get("segments_read", 0),
            "metadata_layer": result.get("metadata_layer"),
            "method": result.get("method_used"), "conclusion": result.get("conclusion"),
            "verdict": verdict_of(result), "inconclusive": _inconclusive_view(result.get("inconclusive")),
            "ambiguity": result.get("ambiguity"),
            "report_url": report_url,
        }
    else:
        body["result"] = None
    return body
