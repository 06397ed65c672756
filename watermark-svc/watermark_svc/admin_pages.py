"""Admin pages of the forensics console: trace a leak, the printable evidence report."""
from __future__ import annotations

import json
from flask import Blueprint, abort, render_template

from svcommon.auth import admin_page, current_principal
from svcommon.errors import APIError
from svcommon.web import serve_shared_assets

from . import repository as repo
from .extensions import db
from .forensics_api import HEX32, report_url

bp = Blueprint("admin_pages", __name__, static_folder="static", static_url_path="/admin/forensics/static",
               template_folder="templates")
serve_shared_assets(bp, "/admin/forensics")


@bp.get("/admin/forensics")
@admin_page
def trace_page():
    return render_template("forensics.html", user=current_principal())


@bp.get("/admin/forensics/detections/<det_id>/report")
@admin_page
def report(det_id: str):
    det = repo.detection(db.conn(), det_id) if HEX32.match(det_id) else None
    if det is None:
        abort(404)
    if det["status"] != "done":
        raise APIError(409, "not_ready", f"the detection is {det['status']}; the report exists once it is done")
    result = json.loads(det["result"])
    return render_template("report.html", det=det, r=result, robust=result.get("robust") or {},
                           match=result.get("match"), url=report_url(det_id), user=current_principal())
