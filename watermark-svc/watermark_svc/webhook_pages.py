"""The webhooks page (/webhooks): an owner's endpoints with their last attempts, a form to
register one (the secret shown once), and per endpoint "Send test event", "Rotate secret",
"Delete" and per attempt "Redeliver" (static/webhooks.js over /api/webhooks). Administrators
see every account's endpoints and may register one for every video's events."""
from __future__ import annotations

from flask import Blueprint, render_template

from svcommon import webhooks
from svcommon.auth import current_principal, page_login_required

bp = Blueprint("webhook_pages", __name__, static_folder="static", static_url_path="/webhooks/static",
               template_folder="templates")


@bp.get("/webhooks")
@page_login_required
def page():
    return render_template("webhooks.html", user=current_principal(), event_types=webhooks.EVENT_TYPES), 200, \
        {"Cache-Control": "no-store"}
