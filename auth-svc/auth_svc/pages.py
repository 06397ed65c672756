"""HTML pages: login (with ?redirect=), signup, logout and the silent refresh bounce."""
from __future__ import annotations

from urllib.parse import quote, urlsplit

from flask import Blueprint, current_app, make_response, redirect, render_template, request

from svcommon.auth import CSRF_COOKIE, REFRESH_COOKIE, csrf_ok
from svcommon.errors import APIError

from . import accounts, cookies, tokens, validation
from .extensions import db

bp = Blueprint("pages", __name__, url_prefix="/auth")


def safe_redirect(target: str | None, default: str = "/") -> str:
    """Only same-origin relative paths: '/x?y'. Rejects '//host', '/\\host', schemes, control chars."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return default
    if target.startswith("//") or "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7f for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def _render(template: str, status: int = 200, **ctx):
    resp = make_response(render_template(template, csrf_token=cookies.csrf_token_for_form(),
                                         signup_enabled=current_app.config["SIGNUP_ENABLED"], **ctx), status)
    request.cookies.get(CSRF_COOKIE) or resp.set_cookie(
        CSRF_COOKIE, cookies.csrf_token_for_form(), samesite="Strict", secure=cookies._secure(), path="/")
    return resp


@bp.get("/login")
def login_form():
    return _render("login.html", redirect_to=safe_redirect(request.args.get("redirect")))


def _signed_in(user: dict, target: str):
    """A new session for the user in cookies, and back to where they were going."""
    conn = db.conn()
    pair = tokens.token_pair(conn, user)
    conn.commit()
    resp = redirect(target, 303)
    cookies.set_session_cookies(resp, pair)
    return resp


@bp.post("/login")
def login_submit():
    target = safe_redirect(request.form.get("redirect"))
    if not csrf_ok():
        return _render("login.html", 403, redirect_to=target, error="Your form expired; please try again.")
    username = request.form.get("username", "")[:64]
    try:
        user = accounts.authenticate(username, request.form.get("password", "")[:256])
    except APIError as err:
        resp = _render("login.html", err.status, redirect_to=target, error=err.message, username=username)
        resp.headers.update(err.headers)
        return resp
    return _signed_in(user, target)


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if not current_app.config["SIGNUP_ENABLED"]:
        return _render("login.html", 403, redirect_to="/", error="Sign-up is disabled on this server.")
    target = safe_redirect(request.values.get("redirect"))
    if request.method == "GET":
        return _render("signup.html", redirect_to=target)
    form = request.form.to_dict()
    if not csrf_ok():
        return _render("signup.html", 403, redirect_to=target, error="Your form expired; please try again.", form=form)
    try:
        user = accounts.register(validation.username(form), validation.email(form), validation.new_password(form))
    except APIError as err:
        resp = _render("signup.html", err.status, redirect_to=target, error=err.message, form=form)
        resp.headers.update(err.headers)  # Retry-After of a throttled sign-up
        return resp
    return _signed_in(user, target)


@bp.post("/logout")
def logout():
    if not csrf_ok():
        return _render("login.html", 403, redirect_to="/", error="Logout refused: missing CSRF token.")
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        tokens.revoke_refresh_token(token)
    resp = redirect("/auth/login", 303)
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
