"""How a video row is shown to its owner (JSON)."""
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


def message(v: dict) -> str:
    if v["status_message"]:
        return v["status_message"]
    return {"uploading": "uploading", "queued": "waiting for processing", "processing": v.get("job_step") or "processing",
            "ready": "ready to watch", "failed": "processing failed"}[v["status"]]


def video_json(v: dict) -> dict:
    return {"id": v["id"], "owner_id": v["owner_id"], "title": v["title"], "description": v["description"],
            "visibility": v["visibility"], "has_password": bool(v["password_hash"]), "status": v["status"],
            "progress": progress(v), "message": message(v), "size": int(v["size_bytes"]),
            "duration": v["duration"], "width": v["width"], "height": v["height"], "video_codec": v["video_codec"],
            "audio_codec": v["audio_codec"], "container": v["container"], "original_filename": v["original_filename"],
            "thumbnail_url": f"/api/videos/{v['id']}/thumbnail" if v["thumbnail_key"] else None,
            "views": int(v["views"]), "created_at": iso(v["created_at"]), "updated_at": iso(v["updated_at"]),
            "ready_at": iso(v["ready_at"])}
