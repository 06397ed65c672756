// Shared by the viewer pages: CSRF double-submit, JSON API calls with a silent cookie
// refresh on an expired access token, and the logout form's CSRF field.
"use strict";
const SV = (() => {
  function cookie(name) {
    const m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }
  class ApiError extends Error {
    constructor(status, code, message, headers) { super(message); this.status = status; this.code = code; this.headers = headers; }
  }
  let refreshing = null;
  // The sv_access cookie lives 5 minutes; sv_refresh rotates it. Concurrent callers share one refresh.
  function refreshCookies() {
    if (!refreshing) {
      refreshing = fetch("/api/auth/refresh", { method: "POST", credentials: "same-origin",
        headers: { "X-CSRF-Token": cookie("sv_csrf") } })
        // 409: another tab refreshed at the same moment; its new cookies are ours too.
        .then((r) => { if (!r.ok && r.status !== 409) throw new ApiError(401, "login_required", "Your session ended; please log in again."); })
        .finally(() => { refreshing = null; });
    }
    return refreshing;
  }
  function toLogin() {
    location.assign("/auth/login?redirect=" + encodeURIComponent(location.pathname + location.search));
  }
  async function api(path, { method = "GET", body, headers = {}, retried = false } = {}) {
    const h = Object.assign({ Accept: "application/json" }, headers);
    if (method !== "GET" && method !== "HEAD") h["X-CSRF-Token"] = cookie("sv_csrf");
    if (body !== undefined) h["Content-Type"] = "application/json";
    const resp = await fetch(path, { method, headers: h, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
    if (resp.status === 401 && !retried && !h.Authorization) {
      try { await refreshCookies(); } catch (e) { toLogin(); throw e; }
      return api(path, { method, body, headers, retried: true });
    }
    if (!resp.ok) {
      let info = {};
      try { info = await resp.json(); } catch (e) { /* not JSON */ }
      throw new ApiError(resp.status, info.code || "error", info.error || resp.statusText, resp.headers);
    }
    if (resp.status === 204) return null;
    return resp.json();
  }
  function fmtDuration(s) {
    if (s == null) return "";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  }
  document.addEventListener("DOMContentLoaded", () => {
    const f = document.getElementById("logout-csrf");
    if (f) f.value = cookie("sv_csrf");
  });
  return { cookie, api, ApiError, refreshCookies, toLogin, fmtDuration };
})();
