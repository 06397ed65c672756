"""The account page (/auth/account): profile, password change, API tokens (created, shown
once, revoked), devices, live playback sessions, sign out everywhere; and the password reset
page an admin's one-time link opens. Plain forms (CSRF field), so every action works without
script and from the keyboard."""
from __future__ import annotations

from flask import Blueprint, request

from svcommon.auth import REFRESH_COOKIE, csrf_form_error, csrf_ok, page_login_required
from svcommon.errors import APIError
from svcommon.openapi import validate_as
from svcommon.web import flash_redirect

from . import accounts, api_tokens, cookies
from . import schemas as S
from . import repository as repo
from .extensions import db
from .pages import form_errors, render, signed_in_user

bp = Blueprint("account", __name__, url_prefix="/auth")


@bp.after_request
def _never_cached(resp):
    # The account page lists devices, addresses and sessions; a reset page carries its token.
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _account_page(status: int = 200, **ctx):
    p = signed_in_user()
    conn = db.conn()
    profile = repo.user_by_id(conn, p.user_id)
    return render("account.html", status, profile=profile,
                  devices=repo.devices_of(conn, p.user_id), sessions=repo.live_sessions_of(conn, p.user_id),
                  current_device=p.device_id, api_tokens=[{**api_tokens.to_json(t), "last_used": t["last_used_at"]}
                                                           for t in api_tokens.listed(p.user_id)],
                  token_scopes=api_tokens.scopes_for(profile["role"]), expiry_choices=api_tokens.EXPIRY_CHOICES,
                  default_expiry=api_tokens.DEFAULT_EXPIRY_DAYS, max_name=api_tokens.MAX_NAME_LENGTH, **ctx)


@bp.get("/account")
@page_login_required
def account():
    return _account_page()


@bp.post("/account/password")
@page_login_required
def change_password():
    if not csrf_ok():
        return _account_page(403, errors=[csrf_form_error()])
    try:
        accounts.change_password(signed_in_user().user_id, request.form.get("current_password", "")[:256],
                                 request.form.get("new_password", "")[:1024], request.cookies.get(REFRESH_COOKIE))
    except APIError as err:
        resp = _account_page(err.status, errors=form_errors(err), invalid=set(err.fields))
        resp.headers.update(err.headers)     # Retry-After of a throttled re-authentication
        return resp
    return flash_redirect("/auth/account", "password_changed")


@bp.post("/account/tokens")
@page_login_required
def create_api_token():
    """The new token is on this response's page only (never cached, never stored): shown once."""
    if not csrf_ok():
        return _account_page(403, errors=[csrf_form_error()])
    days = request.form.get("expires_in_days", "")
    form = {"name": request.form.get("name", "")[:1000], "scopes": request.form.getlist("scopes")[:10],
            "expires_in_days": int(days) if days.isascii() and days.isdigit() and len(days) < 5 else -1}
    try:
        issued = api_tokens.create(signed_in_user(), validate_as(S.NewApiToken, form))
    except APIError as err:
        return _account_page(err.status, errors=form_errors(err), invalid=set(err.fields), token_form=form)
    return _account_page(issued_token=issued.secret, issued_name=issued.record["name"])


@bp.post("/account/tokens/<token_id>/revoke")
@page_login_required
def revoke_api_token(token_id: str):
    if not csrf_ok():
        return _account_page(403, errors=[csrf_form_error()])
    api_tokens.revoke(signed_in_user(), token_id)
    return flash_redirect("/auth/account#api-tokens", "api_token_revoked")


@bp.post("/account/devices/<device_id>/revoke")
@page_login_required
def revoke_device(device_id: str):
    if not csrf_ok():
        return _account_page(403, errors=[csrf_form_error()])
    accounts.revoke_device(device_id, owner_id=signed_in_user().user_id)
    return flash_redirect("/auth/account#devices", "device_revoked")


@bp.post("/account/sessions/<session_id>/end")
@page_login_required
def end_session(session_id: str):
    if not csrf_ok():
        return _account_page(403, errors=[csrf_form_error()])
    conn = db.conn()
    if len(session_id) > 64 or repo.end_playback_session(conn, session_id, signed_in_user().user_id,
                                                         "ended_by_user") == 0:
        raise APIError(404, "not_found", "no such live playback session")
    conn.commit()
    return flash_redirect("/auth/account#sessions", "session_ended")


@bp.post("/account/sign-out-everywhere")
@page_login_required
def sign_out_everywhere():
    if not csrf_ok():
        return _account_page(403, errors=[csrf_form_error()])
    accounts.sign_out_everywhere(signed_in_user().user_id)
    resp = flash_redirect("/auth/login", "logged_out_everywhere")
    cookies.clear_session_cookies(resp)
    return resp


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    # (The token is a secret in the path: svcommon.logs and the gateway's log redact it.)
    if request.method != "POST":        # GET (and HEAD)
        return _reset_page(token)
    if not csrf_ok():
        return _reset_page(token, 403, errors=[csrf_form_error()])
    try:
        accounts.reset_password(token, request.form.get("password", "")[:1024])
    except APIError as err:
        if err.code == "invalid_reset_link":
            return flash_redirect("/auth/login", "reset_link_invalid")
        return _reset_page(token, err.status, errors=form_errors(err), invalid=set(err.fields))
    resp = flash_redirect("/auth/login", "password_reset")
    cookies.clear_session_cookies(resp)
    return resp


def _reset_page(token: str, status: int = 200, **ctx):
    """The form of a still-valid link, else back to the login page saying it is not."""
    user = accounts.reset_user(token)
    if user is None:
        return flash_redirect("/auth/login", "reset_link_invalid")
    return render("reset.html", status, reset_user=user, user=None, **ctx)
