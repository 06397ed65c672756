// StreamVault's one browser client, served to every app by svcommon/web.py. It adds the CSRF
// double-submit header to unsafe requests and, when a cookie-authenticated request gets a 401
// (the sv_access cookie lives 5 minutes), refreshes the cookies once (POST /api/auth/refresh with
// the sv_refresh cookie) and retries. Pages use SV.fetch / SV.api and never refresh by themselves.
"use strict";
const SV = (() => {
  function cookie(name) {
    const m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }
  const csrf = () => cookie("sv_csrf");
  class ApiError extends Error {
    constructor(status, code, message, headers) { super(message); this.status = status; this.code = code; this.headers = headers; }
  }

  // The server's clock as this page sees it. A computer's clock may be minutes or hours off (a
  // dual-boot machine keeping local time in its clock, a PC that never synchronises), while the
  // server holds a DPoP proof's iat to 60 s of its own clock: proofs and "5 min ago" use now().
  // The layout says the server's time when it made the page (data-server-time, ms); every
  // answer's Date header corrects it (send(): the clock was changed while the page was open).
  const CLOCK_SLACK_MS = 5000;      // a Date header has a second's precision, plus the trip
  const served = Number(document.documentElement.dataset.serverTime);
  let clockOffset = served ? served - Date.now() : 0;
  const now = () => Date.now() + clockOffset;
  const clockSetters = new WeakSet();    // answers that moved the offset (movedClock)
  // An answer a cache kept (Age) says when it was made, not now.
  function learnClock(resp) {
    if (resp.headers.has("Age")) return;
    const said = Date.parse(resp.headers.get("Date") || "");
    if (!said || Math.abs(said + 500 - now()) < CLOCK_SLACK_MS) return;
    clockOffset = said + 500 - Date.now();
    clockSetters.add(resp);
  }
  // True when this answer set the page's clock: a request it refused for the time may be retried.
  const movedClock = (resp) => clockSetters.has(resp);

  // fetch() for every request of our pages: its answer's Date sets the clock (learnClock), and a
  // failure to get any answer (offline, refused, reset, DNS) is marked ``network``: what pages
  // try again by themselves. A TypeError of a bug or a missing API is not.
  async function send(path, init) {
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      e.network = true;
      throw e;
    }
    learnClock(resp);
    return resp;
  }

  let refreshing = null;
  // Concurrent callers share one refresh. A 409 refresh_token_superseded means another tab
  // rotated the refresh token a moment ago: its new cookies are the browser's, so ours too.
  function refreshCookies() {
    if (!refreshing) {
      refreshing = send("/api/auth/refresh", { method: "POST", credentials: "same-origin",
                                              headers: { "X-CSRF-Token": csrf(), Accept: "application/json" } })
        .then(async (r) => {
          if (r.ok) return;
          const info = await r.json().catch(() => ({}));
          if (r.status === 409 && info.code === "refresh_token_superseded") return;
          throw new ApiError(401, "login_required", "Your session ended; please log in again.");
        })
        .finally(() => { refreshing = null; });
    }
    return refreshing;
  }
  function toLogin() {
    location.assign("/auth/login?redirect=" + encodeURIComponent(location.pathname + location.search));
  }
  // After a failed refresh the session is over: go to the login page (and back afterwards).
  const refreshOrLogin = () => refreshCookies().catch((e) => { toLogin(); throw e; });

  // fetch() with the CSRF header and one refresh-and-retry on a 401. A request carrying its own
  // Authorization (a DPoP token) is not cookie-authenticated, so its 401 is returned as is.
  async function request(path, init = {}) {
    const method = (init.method || "GET").toUpperCase();
    const headers = new Headers(init.headers || {});
    const attempt = () => {
      if (!["GET", "HEAD", "OPTIONS"].includes(method)) headers.set("X-CSRF-Token", csrf());
      return send(path, { ...init, method, headers, credentials: "same-origin" });
    };
    const resp = await attempt();
    if (resp.status !== 401 || headers.has("Authorization")) return resp;
    await refreshOrLogin();
    return attempt();
  }

  // A JSON API call: the parsed body, null for a 204, or an ApiError with the server's code.
  async function api(path, { method = "GET", body, headers = {} } = {}) {
    const h = Object.assign({ Accept: "application/json" }, headers);
    if (body !== undefined) h["Content-Type"] = "application/json";
    const resp = await request(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!resp.ok) {
      const info = await resp.json().catch(() => ({}));
      throw new ApiError(resp.status, info.code || "error", info.error || resp.statusText, resp.headers);
    }
    return resp.status === 204 ? null : resp.json();
  }

  // Short messages for screen readers through the layout's one polite live region.
  function announce(text) {
    const el = document.getElementById("sv-announce");
    if (el) el.textContent = text;
  }

  // Times as every page shows them: relative ("5 min ago"), the exact UTC time in the title.
  function ago(iso) {
    const s = Math.round((now() - Date.parse(iso)) / 1000);
    const abs = Math.abs(s);
    if (abs < 45) return s >= 0 ? "just now" : "in a moment";
    const [n, unit] = abs < 3600 ? [Math.round(abs / 60), "min"] : abs < 86400 ? [Math.round(abs / 3600), "h"]
      : [Math.round(abs / 86400), abs < 2 * 86400 ? "day" : "days"];
    return s >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
  }
  const exactTime = (iso) => iso.replace("T", " ").replace("Z", " UTC");

  function timeEl(iso) {
    if (!iso) return document.createTextNode("\u2014");
    const t = document.createElement("time");
    t.dateTime = iso;
    t.title = exactTime(iso);
    t.textContent = ago(iso);
    return t;
  }

  // A browser that blocks this site's cookies (set to block all, or this site) can never sign
  // in, and its login form was refused as "expired" at every try: said at once, on every page.
  // A cookie written here and read back is the test (navigator.cookieEnabled stays true then).
  function cookiesBlocked() {
    document.cookie = "sv_cookie_probe=1; path=/; max-age=10; SameSite=Strict";
    if (cookie("sv_cookie_probe") !== "1") return true;
    document.cookie = "sv_cookie_probe=; path=/; max-age=0; SameSite=Strict";
    return false;
  }
  // (A form refused meanwhile already says it: with no cookie sent, that is its one error.)
  const blockedNote = document.getElementById("sv-cookies-blocked");
  if (blockedNote && !document.getElementById("form-errors") && cookiesBlocked()) blockedNote.hidden = false;

  // The logout form posts the CSRF token as a field: the page has it (a browser without
  // JavaScript logs out too); the cookie's value when it is submitted, in case it changed since.
  document.addEventListener("submit", (e) => {
    if (e.target.id === "logout-form") e.target.elements.csrf_token.value = csrf();
  });
  return { cookie, csrf, ApiError, refreshCookies, refreshOrLogin, toLogin, fetch: request, api, announce,
           ago, exactTime, timeEl, now, movedClock, send };
})();
