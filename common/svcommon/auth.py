"""Who is calling: a ``Principal`` from a bearer token (an access JWT, or an API token:
svcommon.api_tokens), a DPoP-bound token + proof, or the browser's access cookie (then
CSRF-checked on state-changing methods). An API token authorises only routes that name one
of its scopes (``require_principal(scope=)``); every other route and page refuses it."""
from __future__ import annotations

import functools
import hmac
import logging
from dataclasses import dataclass, field
from urllib.parse import quote

from flask import Flask, current_app, g, redirect, request

from . import api_tokens, security_events
from .dpop import ReplayEntry, db_replay_check, insert_proof, record_proof, replay_entry, verify_proof
from .errors import APIError, error_response
from .jwks import JWKSVerifier, TokenError, http_fetcher
from .logs import loggable_path

ACCESS_COOKIE = "sv_access"
REFRESH_COOKIE = "sv_refresh"
CSRF_COOKIE = "sv_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# The CSRF form field is read only from a small urlencoded body (an HTML form post): reading
# a multipart or streamed body would consume it before the view (an upload) gets it.
FORM_CSRF_MAX_BYTES = 16 * 1024
log = logging.getLogger("svcommon.auth")


@dataclass
class Principal:
    user_id: str
    username: str
    role: str
    via: str                      # "bearer" | "dpop" | "cookie" | "api_token"
    jkt: str | None = None        # device key thumbprint when DPoP-bound
    device_id: str | None = None
    claims: dict = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()      # an API token's scopes (empty for a login)
    token_id: str | None = None               # the API token's id

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def init_app(app: Flask, verifier: JWKSVerifier | None = None) -> None:
    app.extensions["svcommon.verifier"] = verifier or JWKSVerifier(
        http_fetcher(app.config["JWKS_URL"]), app.config["JWT_ISSUER"], app.config["JWT_AUDIENCE"])
    app.after_request(_record_unclaimed_proof)


def verifier() -> JWKSVerifier:
    return current_app.extensions["svcommon.verifier"]


def _unauthorized(reason: str, code: str = "unauthorized", scheme: str = "Bearer"):
    return APIError(401, code, reason, {"WWW-Authenticate": f'{scheme} error="invalid_token"'})


def _keys_unavailable() -> APIError:
    """auth-svc could not give the signing keys (it, or its database, is down): the token may
    well be good, so not a 401 (a client would drop it and log out) but a 503 to retry."""
    return APIError(503, "auth_unavailable", "Sign-in cannot be checked right now; retry in 5 s.",
                    {"Retry-After": "5", "Cache-Control": "no-store"})


def _refuse(kind: str, exc: TokenError, scheme: str = "Bearer"):
    if exc.code == "jwks_unavailable":
        return _keys_unavailable()
    security_events.record(kind, exc.reason)
    return _unauthorized(exc.reason, exc.code, scheme)


def csrf_ok() -> bool:
    """Double submit: the ``X-CSRF-Token`` header, or the ``csrf_token`` field of a small
    urlencoded form. Never reads a multipart or unbounded body."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.mimetype == "application/x-www-form-urlencoded" \
            and request.content_length is not None and request.content_length <= FORM_CSRF_MAX_BYTES:
        sent = request.form.get("csrf_token")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), (sent or "").encode())


COOKIES_BLOCKED = ("This browser did not send back this site's cookies: it blocks them. Signing in needs "
                   "cookies; allow them for this site in the browser's settings, then try again.")


def csrf_form_error() -> str:
    """What a page's form refused for its CSRF token says. A request with no cookie at all comes
    from a browser that blocks this site's cookies (the form's token cookie was never kept):
    "expired, try again" would fail the same way for ever."""
    if not request.cookies:
        log.info("form refused: no cookies at all (blocked by the browser)",
                 extra={"path": loggable_path(request.path)})
        return COOKIES_BLOCKED
    return "Your form expired; please try again."


def csrf_refused() -> APIError:
    """What a cookie-authenticated write without the right CSRF token gets."""
    return APIError(403, "csrf_failed", "missing or wrong CSRF token")


def _principal_from_claims(claims: dict, via: str) -> Principal:
    return Principal(user_id=claims["sub"], username=claims.get("name", ""), role=claims.get("role", "viewer"),
                     via=via, jkt=(claims.get("cnf") or {}).get("jkt"), device_id=claims.get("did"), claims=claims)


def _check_binding(claims: dict, token: str) -> None:
    """A token bound to a device key (``cnf.jkt``) is only good with a valid proof from that
    key, whatever carried it (DPoP header, cookie): a stolen device token alone is useless."""
    jkt = (claims.get("cnf") or {}).get("jkt")
    if not jkt:
        raise TokenError("token is not DPoP-bound")
    proof = dpop_proof_for_request(access_token=token)
    if not hmac.compare_digest(proof["jkt"], jkt):
        raise TokenError("DPoP proof signed by another key than the token is bound to", "invalid_dpop_proof")


def _refuse_proof(exc: TokenError, user_id: str | None = None):
    if exc.code == "jwks_unavailable":
        return _keys_unavailable()
    kind = "dpop_replay" if exc.code == "dpop_replay" else "bad_proof"
    security_events.record(kind, exc.reason, user_id)
    return _unauthorized(exc.reason, exc.code, "DPoP")


def _api_token_principal(token: str) -> Principal:
    """The owner of an API token that is live now (svcommon.api_tokens: one query, no cache)."""
    db = current_app.extensions.get("svcommon.db")
    if db is None:                      # a service without the database takes no API token
        raise _unauthorized("API tokens are not accepted here")
    rec = api_tokens.lookup(db.conn(), token)
    reason = "unknown API token" if rec is None else api_tokens.refusal(rec)
    if reason:
        security_events.record("bad_api_token", reason if rec is None else f"{reason}: token {rec.id}",
                               rec.user_id if rec else None)
        raise _unauthorized(reason, "invalid_token")
    if rec.user_disabled:
        security_events.record("disabled_account", f"{request.method} {loggable_path(request.path)} "
                                                   f"with API token {rec.id}", rec.user_id)
        raise APIError(403, "account_disabled", "This account is disabled.")
    ip = request.remote_addr or "?"
    # Its own connection: the view may not have committed what it wrote so far.
    with db.standalone() as conn:
        new_address = api_tokens.note_use(conn, rec, ip)
        conn.commit()
    if new_address:
        security_events.record("api_token_new_address", f"API token {rec.id} used from a new address {ip}",
                               rec.user_id)
    return Principal(user_id=rec.user_id, username=rec.username, role=rec.role, via="api_token",
                     scopes=rec.scopes, token_id=rec.id)


def _authenticate() -> Principal | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and api_tokens.looks_like_token(token):
        return _api_token_principal(token)
    if scheme.lower() == "bearer" and token:
        try:
            claims = verifier().verify(token)
        except TokenError as exc:
            raise _refuse("bad_token", exc)
        if claims.get("cnf"):
            raise _refuse("bad_token", TokenError("a DPoP-bound token must be sent with a DPoP proof"))
        return _principal_from_claims(claims, "bearer")
    if scheme.lower() == "dpop" and token:
        try:
            claims = verifier().verify(token)
            _check_binding(claims, token)
        except TokenError as exc:
            raise _refuse_proof(exc)
        return _principal_from_claims(claims, "dpop")
    if header:
        raise _unauthorized("unsupported Authorization header")
    cookie = request.cookies.get(ACCESS_COOKIE)
    if cookie:
        try:
            claims = verifier().verify(cookie)
        except TokenError as exc:
            if exc.code == "token_expired":
                raise _unauthorized("session expired; please refresh or log in again", "token_expired")
            raise _refuse("bad_token", exc)
        if claims.get("cnf"):
            # We never set a device token as a cookie: one there was planted. Same rule as DPoP.
            try:
                _check_binding(claims, cookie)
            except TokenError as exc:
                raise _refuse_proof(exc, claims.get("sub"))
        if request.method not in SAFE_METHODS and not csrf_ok():
            security_events.record("csrf_refused", f"{request.method} {loggable_path(request.path)}",
                                   claims.get("sub"))
            raise csrf_refused()
        return _principal_from_claims(claims, "cookie")
    return None


def dpop_proof_for_request(access_token: str | None = None) -> dict:
    """The request's DPoP proof, verified once: a proof is single-use (its jti is recorded), so
    verifying it again in the same request (authentication, then the view) would be a false
    replay. Once verified (with or without ``ath``) the same result is returned."""
    if "dpop_proof" not in g:
        from flask import current_app as app
        db = app.extensions["svcommon.db"]
        max_age = int(app.config.get("DPOP_MAX_AGE_SECONDS", 60))
        deferred = g.get("dpop_record_deferred", False)
        g.dpop_proof = verify_proof(
            request.headers.get("DPoP", ""), htm=request.method, htu=request.base_url, access_token=access_token,
            max_age=max_age, replay_check=None if deferred else db_replay_check(db.conn()))
        if deferred:
            g.dpop_unrecorded = replay_entry(g.dpop_proof["jti"], max_age)
    return g.dpop_proof


def defer_proof_record() -> None:
    """For a view that records the request's DPoP proof in its own single write (one round
    trip instead of two: streaming-svc's key endpoint). Call before authenticating; then
    ``claim_proof_record()`` gives the entry to insert into ``dpop_replay`` (a duplicate key
    there is a replay: answer ``replay_refused()``). A request that ends without claiming it
    (any refusal) has its proof recorded after the view (``_record_unclaimed_proof``), so a
    proof is single-use whatever the outcome."""
    g.dpop_record_deferred = True


def claim_proof_record() -> ReplayEntry:
    entry = g.pop("dpop_unrecorded", None)
    if entry is None:
        raise RuntimeError("no deferred DPoP proof to record (defer_proof_record() before authenticating)")
    return entry


def record_claimed_proof(conn, user_id: str | None) -> ReplayEntry:
    """Claim the deferred proof and record it in the caller's transaction, to commit with
    the view's own writes (a heartbeat: no commit of its own). A replay rolls the
    transaction back and is refused (401). ``sweep_replay_store(conn, entry)`` after the
    commit keeps the table small."""
    entry = claim_proof_record()
    try:
        insert_proof(conn, entry)
    except TokenError:
        raise replay_refused(user_id) from None
    return entry


def replay_refused(user_id: str | None = None) -> APIError:
    return _refuse_proof(TokenError("DPoP proof replayed", "dpop_replay"), user_id)


def _record_unclaimed_proof(response):
    """after_request: record a deferred proof the view did not claim. Were it a replay while
    the view answered 2xx (a view that forgot to claim it), the answer becomes the 401."""
    entry = g.pop("dpop_unrecorded", None)
    if entry is not None:
        try:
            record_proof(current_app.extensions["svcommon.db"].conn(), entry)
        except TokenError as exc:
            err = _refuse_proof(exc, getattr(g.get("principal"), "user_id", None))
            if response.status_code < 400:
                return error_response(err.status, err.code, err.message, err.headers)
    return response


def current_principal() -> Principal | None:
    """Who is calling (None: nobody). Authenticated once per request: a refusal is kept and
    raised again, so its security event is recorded once however often the request asks."""
    if "principal" not in g:
        refused = g.get("principal_refused")
        if refused is not None:
            raise refused
        try:
            g.principal = _authenticate()
        except APIError as err:
            g.principal_refused = err
            raise
    return g.principal


def principal_for_display() -> Principal | None:
    """Whom a page's header shows when the page is an error (svcommon.errors): the request's
    principal if it authenticated, else the access cookie's user, checked quietly (signature
    and expiry only: no security event, no CSRF or proof check, so it must never authorise
    anything). An error page must not authenticate: a 404 with a forged cookie is no
    ``bad_token``, and a refusal from authentication itself is recorded once."""
    if g.get("principal") is not None:
        return g.principal
    cookie = request.cookies.get(ACCESS_COOKIE)
    if not cookie:
        return None
    try:
        claims = verifier().verify(cookie)
    except TokenError:
        return None
    return None if claims.get("cnf") else _principal_from_claims(claims, "cookie")


def principal_or_none() -> Principal | None:
    """The caller, or None when not authenticated or the credentials are bad or expired
    (pages that only show who is logged in: never a refusal)."""
    try:
        return current_principal()
    except APIError:
        return None


def insufficient_scope(p: Principal, scope: str | None) -> APIError:
    """What an API token gets on a route its scopes do not cover (``scope`` None: a route no
    API token may use); recorded as a security event."""
    needs = f"the '{scope}' scope" if scope else "a signed-in session, not an API token"
    security_events.record("insufficient_scope", f"{request.method} {loggable_path(request.path)} needs {needs}; "
                                                 f"API token {p.token_id} has {' '.join(sorted(p.scopes))}", p.user_id)
    challenge = f'Bearer error="insufficient_scope", scope="{scope}"' if scope else 'Bearer error="insufficient_scope"'
    return APIError(403, "insufficient_scope", f"This needs {needs}.", {"WWW-Authenticate": challenge})


def require_principal(roles: tuple[str, ...] | None = None, scope: str | None = None) -> Principal:
    """The caller, or 401. ``scope``: the API-token scope (svcommon.api_tokens.SCOPES) this
    route accepts; None (the default) refuses every API token, so a route opts in."""
    p = current_principal()
    if p is None:
        raise _unauthorized("authentication required")
    if p.via == "api_token" and (scope is None or scope not in p.scopes):
        raise insufficient_scope(p, scope)
    if roles and p.role not in roles:
        raise APIError(403, "forbidden", "your role may not do this")
    return p


def page_login_required(view):
    """Page decorator: send the browser to the login page (or a silent refresh) and back."""
    @functools.wraps(view)
    def wrapper(*a, **kw):
        target = request.full_path.rstrip("?")
        try:
            p = current_principal()
        except APIError as err:
            if err.code == "token_expired" and request.cookies.get(REFRESH_COOKIE):
                return redirect("/auth/refresh?redirect=" + quote(target, safe=""), 303)
            p = None
        if p is not None and p.via == "api_token":
            raise insufficient_scope(p, None)       # pages are for people signed in
        if p is None:
            if request.cookies.get(REFRESH_COOKIE):
                return redirect("/auth/refresh?redirect=" + quote(target, safe=""), 303)
            return redirect("/auth/login?redirect=" + quote(target, safe=""), 303)
        return view(*a, **kw)
    return wrapper


def admin_page(view):
    """Page decorator for administrators: login first (redirect, as page_login_required), then
    the admin role (403 page); never cached (users' data, one-time reset links)."""
    @page_login_required
    @functools.wraps(view)
    def wrapper(*a, **kw):
        if not current_principal().is_admin:
            raise APIError(403, "forbidden", "this page is for administrators")
        resp = current_app.make_response(view(*a, **kw))
        resp.headers["Cache-Control"] = "no-store"
        return resp
    return wrapper
