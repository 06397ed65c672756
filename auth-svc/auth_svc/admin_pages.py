"""The admin users page (/admin/users): search, paging, role, disable/enable (effective at
once: tokens revoked, playback ended), the upload quota (storage used beside it) and one-time
reset links; plain forms, so it works from the keyboard without script. The same operations
as the admin API (accounts.py)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, current_app, request

from svcommon import quota
from svcommon.auth import admin_page, csrf_form_error, csrf_ok
from svcommon.errors import APIError
from svcommon.params import arg_int, ascii_uint
from svcommon.web import flash_redirect

from . import accounts
from . import schemas as S
from .pages import form_errors, render, safe_redirect, signed_in_user

bp = Blueprint("admin_users_page", __name__)
PER_PAGE = 25


def _users_page(status: int = 200, **ctx):
    if request.method == "POST":
        # A form answered in place (reset link, errors) shows the list the admin was looking
        # at: the search and page of the page the form came from (its ``back`` field).
        back = urlsplit(request.form.get("back", ""))
        came_from = parse_qs(back.query)
        here = f"/admin/users?{back.query}" if back.query else "/admin/users"
        search = came_from.get("q", [""])[0][:100]
        page = ascii_uint(came_from.get("page", ["1"])[0]) or 1
        page = page if page <= 100_000 else 1
    else:
        search = request.args.get("q", "")[:100]
        page = arg_int("page", 1, maximum=100_000)
        here = request.full_path.rstrip("?")
    users, pages, total = accounts.user_page(page, PER_PAGE, search)
    return render("admin_users.html", status, users=users, page=page, pages=pages, total=total, search=search,
                  roles=S.ROLES, here=here, default_quota=quota.in_force(
                      None, int(current_app.config["UPLOAD_QUOTA_BYTES"]), "viewer"), **ctx)


def _quota_field(text: str) -> int | None:
    """The quota form's field: empty = the server default, else a size ('20 GiB'; 0 = unlimited)."""
    if not text.strip():
        return None
    try:
        return quota.parse_bytes(text[:40])
    except ValueError as exc:
        raise APIError(400, "invalid_input", f"Upload quota: {exc}.", fields={"quota": [f"Upload quota: {exc}."]})


@bp.get("/admin/users")
@admin_page
def users():
    return _users_page()


@bp.post("/admin/users/<user_id>")
@admin_page
def update(user_id: str):
    if not csrf_ok():
        return _users_page(403, errors=[csrf_form_error()])
    admin, action = signed_in_user(), request.form.get("action", "")
    try:
        if action == "role":
            role = request.form.get("role", "")
            if role not in S.ROLES:
                raise APIError(400, "invalid_input", f"role must be one of {', '.join(S.ROLES)}")
            accounts.admin_update_user(admin.user_id, user_id, role, None)
        elif action in ("disable", "enable"):
            accounts.admin_update_user(admin.user_id, user_id, None, action == "disable")
        elif action == "quota":
            accounts.admin_update_user(admin.user_id, user_id, None, None, _quota_field(request.form.get("quota", "")))
        elif action == "reset-link":
            return _users_page(issued=accounts.reset_link(admin.user_id, user_id))
        else:
            raise APIError(400, "invalid_input", "unknown action")
    except APIError as err:
        return _users_page(err.status, errors=form_errors(err))
    return flash_redirect(safe_redirect(request.form.get("back"), "/admin/users"), "user_updated")
