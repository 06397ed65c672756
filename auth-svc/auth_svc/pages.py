"""HTML pages: login (with ?redirect=), signup, logout and the silent refresh bounce, in the
shared layout (svcommon.web; its assets under /auth/sv/, this app's under /auth/static/)."""
from __future__ import annotations

from urllib.parse import quote, urlsplit

from flask import Blueprint, current_app, make_response, redirect, render_template, request

from svcommon.auth import CSRF_COOKIE, REFRESH_COOKIE, csrf_form_error, csrf_ok, principal_or_none
from svcommon.errors import APIError
from svcommon.web import flash_redirect, serve_shared_assets

from . import accounts, cookies, tokens
from .extensions import db

# The gateway routes only /auth/ (and the APIs) here, so every asset of these pages lives under it.
bp = Blueprint("pages", __name__, url_prefix="/auth", static_folder="static", static_url_path="/static")
serve_shared_assets(bp, "/auth")


def safe_redirect(target: str | None, default: str = "/") -> str:
    """Only same-origin relative paths: '/x?y'. Rejects '//host', '/\\host', schemes, control chars."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return default
    if target.startswith("//") or "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7f for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path in ("/auth/login", "/auth/signup"):
        return default   # (back to a login form after logging in would be a loop)
    return target


# The logged-in principal, or None (an expired or bad cookie is simply not logged in).
signed_in_user = principal_or_none


def form_errors(err: APIError) -> list[str]:
    return [m for ms in err.fields.values() for m in ms] or [err.message]


def render(template: str, status: int = 200, **ctx):
    """A page of this app: the form's CSRF token in the page and in its cookie."""
    ctx.setdefault("user", signed_in_user())
    resp = make_response(render_template(template, csrf_token=cookies.csrf_token_for_form(),
                                         signup_enabled=current_app.config["SIGNUP_ENABLED"],
                                         min_length=current_app.config["PASSWORD_MIN_LENGTH"], **ctx), status)
    request.cookies.get(CSRF_COOKIE) or resp.set_cookie(
        CSRF_COOKIE, cookies.csrf_token_for_form(), samesite="Strict", secure=cookies._secure(), path="/")
    return resp


@bp.get("/login")
def login_form():
    target = safe_redirect(request.args.get("redirect"))
    if signed_in_user():
        return redirect(target, 303)   # already logged in: on to where they were going
    return render("login.html", redirect_to=target)


def _signed_in(user: dict, target: str, flash: str | None = None):
    """A new session for the user in cookies, and back to where they were going."""
    conn = db.conn()
    pair = tokens.token_pair(conn, user)
    conn.commit()
    resp = flash_redirect(target, flash) if flash else redirect(target, 303)
    cookies.set_session_cookies(resp, pair)
    return resp


@bp.post("/login")
def login_submit():
    target = safe_redirect(request.form.get("redirect"))
    username = request.form.get("username", "")[:64]
    if not csrf_ok():
        return render("login.html", 403, redirect_to=target, errors=[csrf_form_error()], username=username)
    try:
        user = accounts.authenticate(username, request.form.get("password", "")[:256])
    except APIError as err:
        resp = render("login.html", err.status, redirect_to=target, errors=form_errors(err), username=username)
        resp.headers.update(err.headers)
        return resp
    return _signed_in(user, target)


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if not current_app.config["SIGNUP_ENABLED"]:
        return render("login.html", 403, redirect_to="/", errors=["Sign-up is disabled on this server."])
    target = safe_redirect(request.values.get("redirect"))
    if request.method == "GET":
        return redirect(target, 303) if signed_in_user() else render("signup.html", redirect_to=target)
    form = {k: request.form.get(k, "") for k in ("username", "email", "password")}
    if not csrf_ok():
        return render("signup.html", 403, redirect_to=target, errors=[csrf_form_error()], form=form)
    try:
        user = accounts.sign_up(form)
    except APIError as err:
        resp = render("signup.html", err.status, redirect_to=target, errors=form_errors(err), form=form,
                      invalid=set(err.fields))
        resp.headers.update(err.headers)  # Retry-After of a throttled sign-up
        return resp
    return _signed_in(user, target, "signed_up")


@bp.post("/logout")
def logout():
    if not csrf_ok():
        return render("login.html", 403, redirect_to="/", errors=["Logout refused: missing CSRF token."])
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        tokens.revoke_refresh_token(token)
    resp = flash_redirect("/auth/login", "logged_out")
    cookies.clear_session_cookies(resp)
    return resp


@bp.get("/refresh")
def refresh_bounce():
    """A page request with an expired access cookie lands here and goes straight back."""
    target = safe_redirect(request.args.get("redirect"))
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        try:
            pair = tokens.rotate_refresh_token(token)
        except APIError as err:
            if err.code == "refresh_token_superseded":
                # Another tab refreshed a moment ago: its new cookies are (about to be) in the
                # browser; go back with them rather than clearing them.
                return redirect(target, 303)
            pair = None
        if pair:
            resp = redirect(target, 303)
            cookies.set_session_cookies(resp, pair)
            return resp
    resp = redirect("/auth/login?redirect=" + quote(target, safe=""), 303)
    cookies.clear_session_cookies(resp)
    return resp
