"""How a video row and its caption tracks are shown to the owner (JSON)."""
from __future__ import annotations

from svcommon.timeutil import iso


def progress(v: dict) -> float:
    if v["status"] == "uploading":
        length = v.get("upload_length") or 0
        return round(100.0 * (v.get("upload_offset") or 0) / length, 1) if length else 0.0
    if v["status"] == "ready":
        return 100.0
    if v["status"] == "processing":
        return round(float(v.get("job_progress") or 0), 1)
    return 0.0


def encoding(v: dict) -> bool:
    """Processing work is still to come: waiting or processing, or ready (playable) while its
    higher rungs are still encoded (the worker's stage message stays until the ladder is
    complete; a rung that could not be made leaves a note but no open job)."""
    if v["status"] in ("queued", "processing"):
        return True
    return v["status"] == "ready" and bool(v["status_message"]) and bool(v.get("work_open"))


def encode_progress(v: dict) -> float:
    """Percent of all of the video's processing (planning, audio, every rung's chunks)."""
    if v["status"] == "ready" and not encoding(v):
        return 100.0
    if v["status"] not in ("processing", "ready"):
        return 0.0
    return round(float(v.get("work_progress") or 0), 1)


def live_state(v: dict) -> dict:
    """What the progress stream sends (and what /mine and the video JSON include)."""
    return {"status": v["status"], "progress": progress(v), "message": message(v), "encoding": encoding(v),
            "encode_progress": encode_progress(v),
            "thumbnail_url": f"/api/videos/{v['id']}/thumbnail" if v["thumbnail_key"] else None}


def message(v: dict) -> str:
    if v["status_message"]:
        return v["status_message"]
    return {"uploading": "uploading", "queued": "waiting for processing", "processing": v.get("job_step") or "processing",
            "ready": "ready to watch", "failed": "processing failed"}[v["status"]]


def video_json(v: dict) -> dict:
    return {"id": v["id"], "owner_id": v["owner_id"], "title": v["title"], "description": v["description"],
            "visibility": v["visibility"], "has_password": bool(v["password_hash"]),
            "downloads_allowed": bool(v["downloads_allowed"]), **live_state(v),
            "size": int(v["size_bytes"]),
            "duration": v["duration"], "width": v["width"], "height": v["height"], "video_codec": v["video_codec"],
            "audio_codec": v["audio_codec"], "container": v["container"], "original_filename": v["original_filename"],
            "views": int(v["views"]), "created_at": iso(v["created_at"]), "updated_at": iso(v["updated_at"]),
            "ready_at": iso(v["ready_at"])}


def caption_json(c: dict) -> dict:
    return {"id": c["id"], "lang": c["lang"], "label": c["label"], "source_format": c["source_format"],
            "cues": int(c["cue_count"]), "size": int(c["size_bytes"]), "created_at": iso(c["created_at"])}
