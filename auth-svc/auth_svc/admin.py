"""Admin: list users, change role, disable/enable, set the upload quota, issue a one-time
password reset link."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from svcommon.auth import require_principal
from svcommon.errors import APIError
from svcommon.params import arg_int
from svcommon.timeutil import iso
from svcommon.openapi import SIGNED_IN, responses, validated_json

from . import accounts, tokens
from . import repository as repo
from .extensions import api
from . import schemas as S

bp = Blueprint("admin", __name__, url_prefix="/api/admin/users")
MAX_PAGE = 100_000      # keeps OFFSET far inside what SQL accepts


def _user_json(u: dict) -> dict:
    return {**tokens.public_user(u), "disabled": bool(u["disabled"]), "created_at": iso(u["created_at"]),
            "upload_quota_bytes": u["upload_quota_bytes"], "upload_quota_in_force": u["quota_in_force"],
            "used_bytes": u["used_bytes"]}


@bp.get("")
@api.validate(query=S.UserQuery, resp=responses({"HTTP_200": S.AdminUserPage}, 400, 401, 403), tags=["admin"], security=SIGNED_IN)
def list_users():
    require_principal(roles=("admin",))
    page = arg_int("page", 1, maximum=MAX_PAGE)
    per_page = min(200, arg_int("per_page", 50, maximum=1_000_000))
    listing = accounts.user_page(page, per_page, request.args.get("q", "")[:100])
    return jsonify(items=[_user_json(u) for u in listing.users], page=page, pages=listing.pages, total=listing.total)


@bp.patch("/<user_id>")
@api.validate(json=S.AdminUserChange, resp=responses({"HTTP_200": S.AdminUser}, 400, 401, 403, 404, 409), tags=["admin"], security=SIGNED_IN)
def update_user(user_id: str):
    admin = require_principal(roles=("admin",))
    change: S.AdminUserChange = validated_json()
    role, disabled = change.role, change.disabled
    upload_quota = change.upload_quota_bytes if "upload_quota_bytes" in change.model_fields_set else repo.KEEP
    if role is None and disabled is None and upload_quota is repo.KEEP:
        raise APIError(400, "invalid_input", "nothing to change: give 'role', 'disabled' and/or 'upload_quota_bytes'")
    return jsonify(_user_json(accounts.admin_update_user(admin.user_id, user_id, role, disabled, upload_quota)))


@bp.post("/<user_id>/reset-link")
@api.validate(resp=responses({"HTTP_200": S.ResetLink}, 401, 403, 404), tags=["admin"], security=SIGNED_IN)
def reset_link(user_id: str):
    """Mailed to the user when SMTP is configured; otherwise returned for the admin to pass on."""
    admin = require_principal(roles=("admin",))
    return jsonify(accounts.reset_link(admin.user_id, user_id).to_json())
