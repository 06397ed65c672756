"""Forensics API (admin only): submit a suspect copy, follow the detection, read the
result and evidence, look up a session's watermark record. Contract: docs/api.md."""
from __future__ import annotations

import hashlib
import json
import re
import uuid

from flask import Blueprint, current_app, jsonify, request

from svcommon import codeword as cw
from svcommon import ffmpeg as ff
from svcommon import jobqueue as queue
from svcommon.auth import require_principal
from svcommon.bodylimit import FORM_OVERHEAD, body_limit
from svcommon.errors import APIError
from svcommon.params import arg_int
from svcommon.filestore import FORENSICS
from svcommon.openapi import SIGNED_IN, responses

from . import repository as repo
from .extensions import api, db, filestore
from .jobs import DETECTION_PRIORITY
from .forensics.evidence import api_view, session_snapshot
from . import schemas as S

# Attempts cover the detection's own faults and workers killed under it; a storage or
# database outage uses none (svcommon.jobworker.outage: the job waits for it to end).
DETECTION_ATTEMPTS = 3
bp = Blueprint("forensics_api", __name__, url_prefix="/api/forensics")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
DEFAULT_MAX_UPLOAD = 16 * 1024 ** 3
CHUNK = 1024 * 1024


def report_url(det_id: str) -> str:
    return f"/admin/forensics/detections/{det_id}/report"


def _id(value: str, what: str) -> str:
    if not HEX32.match(value or ""):
        raise APIError(404, "not_found", f"no such {what}")
    return value


@bp.post("/detect")
@body_limit(lambda cfg: int(cfg.get("FORENSICS_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD)) + FORM_OVERHEAD)
@api.validate(form=S.SuspectUpload, skip_validation=True, resp=responses({"HTTP_202": S.DetectionSubmitted}, 400, 401, 403, 404, 413, 415, 422, 429, 503), tags=["forensics"], security=SIGNED_IN)
def submit():
    admin = require_principal(roles=("admin",), scope="forensics")
    limit = int(current_app.config.get("FORENSICS_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD))
    if request.content_length is not None and request.content_length > limit:
        raise APIError(413, "too_large", f"the suspect file may be at most {limit} bytes")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise APIError(400, "invalid_input", "send the suspect copy as multipart field 'file'")
    video_id = (request.form.get("video_id") or "").strip() or None
    conn = db.conn()
    if video_id is not None and (not HEX32.match(video_id) or repo.video_for_forensics(conn, video_id) is None):
        raise APIError(404, "not_found", "video_id is not a processed video")
    upload.stream.seek(0, 2)
    size = upload.stream.tell()
    upload.stream.seek(0)
    if size == 0:
        raise APIError(400, "invalid_input", "the suspect file is empty")
    try:        # playlists, manifests, lists and images are never suspects (they name other files)
        ff.sniff(upload.stream.read(ff.SNIFF_BYTES))
    except ff.UnsupportedContainer as exc:
        raise APIError(422, "not_a_video", f"the suspect is not a video we read: {exc}")
    upload.stream.seek(0)
    det_id = uuid.uuid4().hex
    key = f"{FORENSICS}detections/{det_id}/suspect"
    # The request body is already spooled to a local temp file by werkzeug (constant
    # memory): hash it in one pass, then stream the same file to file-svc.
    digest = hashlib.sha256()
    while chunk := upload.stream.read(CHUNK):
        digest.update(chunk)
    upload.stream.seek(0)
    fs = filestore()
    fs.put_stream(key, upload.stream, length=size)
    try:
        repo.insert_detection(conn, {"id": det_id, "requested_video_id": video_id, "suspect_key": key,
                                     "suspect_name": upload.filename[:255], "suspect_size": size,
                                     "suspect_sha256": digest.hexdigest(), "created_by": admin.user_id})
        queue.enqueue(conn, queue.DETECTION_RUN, {"detection_id": det_id}, subject=det_id,
                      priority=DETECTION_PRIORITY, max_attempts=DETECTION_ATTEMPTS)
        conn.commit()
    except Exception:
        fs.delete(key)                       # no orphaned suspect without its record
        raise
    return jsonify(job_id=det_id, status_url=f"/api/forensics/detect/{det_id}", report_url=report_url(det_id)), 202


@bp.get("/detect/<det_id>")
@api.validate(resp=responses({"HTTP_200": S.Detection}, 401, 403, 404), tags=["forensics"], security=SIGNED_IN)
def status(det_id: str):
    require_principal(roles=("admin",), scope="forensics")
    det = repo.detection(db.conn(), _id(det_id, "detection"))
    if det is None:
        raise APIError(404, "not_found", "no such detection")
    return jsonify(api_view(det, report_url(det_id)))


@bp.delete("/detect/<det_id>")
@api.validate(resp=responses({"HTTP_204": None}, 401, 403, 404, 409), tags=["forensics"], security=SIGNED_IN)
def cancel(det_id: str):
    """Cancel a queued or running detection: its job goes (a running one's worker loses the
    lease and kills its children within a renewal interval); the suspect object is removed,
    the record stays as 'cancelled'."""
    admin = require_principal(roles=("admin",), scope="forensics")
    conn = db.conn()
    det = repo.detection(conn, _id(det_id, "detection"))
    if det is None:
        raise APIError(404, "not_found", "no such detection")
    if not repo.cancel_detection(conn, det_id):
        raise APIError(409, "detection_finished", f"the detection is already {det['status']}")
    queue.forget(conn, det_id)
    conn.commit()
    filestore().delete(det["suspect_key"])
    current_app.logger.info("detection cancelled", extra={"job": det_id, "by": admin.user_id})
    return "", 204


@bp.get("/detect/<det_id>/report.json")
@api.validate(resp=responses({"HTTP_200": S.DetectionReport}, 401, 403, 404), tags=["forensics"], security=SIGNED_IN)
def report_json(det_id: str):
    require_principal(roles=("admin",), scope="forensics")
    det = repo.detection(db.conn(), _id(det_id, "detection"))
    if det is None or det["status"] != "done":
        raise APIError(404, "not_found", "no finished detection with this id")
    view = api_view(det, report_url(det_id))
    view["evidence"] = json.loads(det["result"])
    view["suspect"] = {"name": det["suspect_name"], "size": det["suspect_size"], "sha256": det["suspect_sha256"]}
    return jsonify(view)


@bp.get("/detections")
@api.validate(resp=responses({"HTTP_200": S.Detections}, 401, 403), tags=["forensics"], security=SIGNED_IN)
def list_detections():
    require_principal(roles=("admin",), scope="forensics")
    limit = min(200, arg_int("limit", 50, maximum=1_000_000))
    rows = repo.detections(db.conn(), limit)
    return jsonify(items=[api_view(d, report_url(d["id"])) for d in rows])


@bp.get("/sessions/<sid>")
@api.validate(resp=responses({"HTTP_200": S.SessionRecord}, 401, 403, 404), tags=["forensics"], security=SIGNED_IN)
def session_record(sid: str):
    require_principal(roles=("admin",), scope="forensics")
    snap = session_snapshot(db.conn(), _id(sid, "session"))
    if snap is None:
        raise APIError(404, "not_found", "no such session")
    secret = current_app.config["WATERMARK_SECRET"]
    n = int(snap["codeword_length"] or 0)
    code = cw.Code.of_metadata(snap["video_id"], repo.media_of(db.conn(), snap["video_id"]) or {})
    payload = "".join("AB"[b] for b in cw.codeword(secret, sid, n, code))
    return jsonify(session=snap, codeword_length=n, codeword_scheme=code.scheme, payload=payload,
                   metadata_tag={"issued_at": snap["tag_issued_at"], "format": "iso-bmff uuid box, HMAC-SHA256"})
