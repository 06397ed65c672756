// Library grid: search, pagination (state kept in the URL), lock icons for password videos.
"use strict";
(() => {
  const grid = document.getElementById("grid"), status = document.getElementById("status");
  const pager = document.getElementById("pager"), tpl = document.getElementById("card-tpl");
  const q = document.getElementById("q");
  function fmtDuration(s) {
    if (s == null) return "";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  }
  const params = new URLSearchParams(location.search);
  let page = Math.max(1, parseInt(params.get("page") || "1", 10) || 1);
  q.value = params.get("q") || "";

  async function load() {
    status.textContent = "Loading…";
    const url = `/api/library?q=${encodeURIComponent(q.value.trim())}&page=${page}`;
    let data;
    try { data = await SV.api(url); } catch (e) { status.textContent = "Could not load the library: " + e.message; return; }
    grid.replaceChildren();
    for (const v of data.items) {
      const li = tpl.content.firstElementChild.cloneNode(true);
      li.dataset.videoId = v.id;
      li.querySelector("a").href = "/watch/" + encodeURIComponent(v.id);
      li.querySelector(".title").textContent = v.title;
      li.querySelector(".duration").textContent = fmtDuration(v.duration);
      li.querySelector(".views").textContent = `${v.views} view${v.views === 1 ? "" : "s"}`;
      li.querySelector(".uploaded").append(SV.timeEl(v.created_at));
      if (v.thumbnail_url) li.querySelector(".thumb").style.backgroundImage = `url("${v.thumbnail_url}")`;
      if (v.locked) { li.querySelector(".lock").hidden = false; li.classList.add("locked"); }
      grid.append(li);
    }
    status.textContent = data.total ? `${data.total} video${data.total === 1 ? "" : "s"}` +
      (data.q ? ` matching “${data.q}”` : "") : (data.q ? `Nothing matches “${data.q}”.` : "No videos yet.");
    pager.hidden = data.pages <= 1;
    document.getElementById("pageinfo").textContent = `Page ${data.page} of ${data.pages}`;
    document.getElementById("prev").disabled = data.page <= 1;
    document.getElementById("next").disabled = data.page >= data.pages;
    const u = new URLSearchParams();
    if (q.value.trim()) u.set("q", q.value.trim());
    if (page > 1) u.set("page", page);
    history.replaceState(null, "", "/" + (u.toString() ? "?" + u : ""));
  }
  document.getElementById("search").addEventListener("submit", (e) => { e.preventDefault(); page = 1; load(); });
  document.getElementById("prev").addEventListener("click", () => { page -= 1; load(); });
  document.getElementById("next").addEventListener("click", () => { page += 1; load(); });
  load();
})();
