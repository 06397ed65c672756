"""Admin: list users, change role, disable/enable, issue a one-time password reset link."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from svcommon.auth import require_principal
from svcommon.errors import APIError
from svcommon.params import arg_int, json_body
from svcommon.timeutil import iso

from . import repository as repo
from . import accounts, mailer, tokens, validation
from .extensions import db

bp = Blueprint("admin", __name__, url_prefix="/api/admin/users")
MAX_PAGE = 100_000      # keeps OFFSET far inside what SQL accepts


def _user_json(u: dict) -> dict:
    return {**tokens.public_user(u), "disabled": bool(u["disabled"]),
            "created_at": iso(u["created_at"])}


@bp.get("")
def list_users():
    require_principal(roles=("admin",))
    page = arg_int("page", 1, maximum=MAX_PAGE)
    per_page = min(200, arg_int("per_page", 50, maximum=1_000_000))
    conn = db.conn()
    total = repo.count_users(conn)
    users = repo.list_users(conn, per_page, (page - 1) * per_page)
    return jsonify(items=[_user_json(u) for u in users], page=page, pages=max(1, -(-total // per_page)), total=total)


@bp.patch("/<user_id>")
def update_user(user_id: str):
    require_principal(roles=("admin",))
    data = json_body()
    role = data.get("role")
    disabled = data.get("disabled")
    if role is not None and role not in validation.ROLES:
        raise APIError(400, "invalid_input", f"role must be one of {', '.join(validation.ROLES)}")
    if disabled is not None and not isinstance(disabled, bool):
        raise APIError(400, "invalid_input", "'disabled' must be true or false")
    if role is None and disabled is None:
        raise APIError(400, "invalid_input", "nothing to change: give 'role' and/or 'disabled'")
    conn = db.conn()
    user = repo.user_by_id(conn, user_id) if len(user_id) <= 64 else None
    if user is None:
        raise APIError(404, "not_found", "no such user")
    losing_admin = user["role"] == "admin" and (disabled or (role is not None and role != "admin"))
    if losing_admin and repo.count_active_admins(conn) <= 1:
        raise APIError(409, "last_admin", "the last active admin cannot be demoted or disabled")
    repo.update_user(conn, user_id, role, disabled)
    if disabled:
        repo.revoke_user_tokens(conn, user_id)  # logged out everywhere at the next refresh
        # Access tokens stay valid up to 5 minutes: streaming-svc also checks `disabled` on
        # every call, and playback ends now rather than at the next heartbeat.
        repo.end_playback_sessions(conn, user_id)
    conn.commit()
    return jsonify(_user_json(repo.user_by_id(conn, user_id)))


@bp.post("/<user_id>/reset-link")
def reset_link(user_id: str):
    """Mailed to the user when SMTP is configured; otherwise returned for the admin to pass on."""
    admin = require_principal(roles=("admin",))
    user, token, expires = accounts.issue_reset_link(admin.user_id, user_id)
    url = f"{request.host_url.rstrip('/')}/auth/reset/{token}"
    if mailer.enabled():
        mailer.send(user["email"], "Reset your StreamVault password",
                    f"An administrator issued a password reset link for {user['username']}.\n\n{url}\n\n"
                    f"It works once, until {iso(expires)} (UTC).")
        return jsonify(sent_to=user["email"], expires_at=iso(expires))
    return jsonify(url=url, expires_at=iso(expires))
