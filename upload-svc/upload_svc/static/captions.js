// Caption tracks in the uploader dashboard's video editor: the video's tracks (language,
// label, cue count) each with Delete, and a form adding one (language, label, a WebVTT or
// SRT file; the server checks it and names the line of a malformed cue). dashboard.js calls
// CaptionPanel.open(li, video, ui) when the editor opens. User data goes in as textContent.
const CaptionPanel = (() => {
  "use strict";
  const $ = (sel, root) => root.querySelector(sel);
  const base = (v) => "/api/videos/" + encodeURIComponent(v.id) + "/captions";

  async function upload(v, form) {
    const resp = await SV.fetch(base(v), { method: "POST", body: new FormData(form), headers: { Accept: "application/json" } });
    const info = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new SV.ApiError(resp.status, info.code || "error", info.error || resp.statusText);
    return info.caption;
  }

  function render(panel, v, tracks, ui) {
    const list = $(".caption-list", panel);
    list.replaceChildren(...tracks.map((t) => {
      const item = document.createElement("li");
      item.dataset.lang = t.lang;
      const text = document.createElement("span");
      text.textContent = t.label + " (" + t.lang + ") \u00b7 " + t.cues + (t.cues === 1 ? " cue" : " cues")
        + (t.source_format === "srt" ? " \u00b7 converted from SRT" : "");
      const del = document.createElement("button");
      del.type = "button"; del.className = "caption-delete";
      del.textContent = "Delete";
      del.setAttribute("aria-label", "Delete the " + t.label + " captions");
      del.addEventListener("click", async () => {
        try {
          await SV.api(base(v) + "/" + encodeURIComponent(t.id), { method: "DELETE" });
          ui.toast("Deleted the " + t.label + " captions of \u201c" + v.title + "\u201d.");
          load(panel, v, ui).then(() => $("input[name=lang]", panel).focus());
        } catch (err) { ui.showError($(".error", panel), "Not deleted: " + err.message); }
      });
      item.append(text, " ", del);
      return item;
    }));
    $(".caption-none", panel).hidden = tracks.length > 0;
  }

  async function load(panel, v, ui) {
    try {
      const data = await SV.api(base(v));
      render(panel, v, data.items, ui);
    } catch (err) { ui.showError($(".error", panel), "Could not load the captions: " + err.message); }
  }

  function open(li, v, ui) {
    const panel = $(".captions-panel", li), form = $(".caption-form", panel), error = $(".error", panel);
    panel.hidden = false;
    error.hidden = true;
    if (!form.dataset.wired) {
      form.dataset.wired = "1";
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const submit = $("button[type=submit]", form);
        submit.disabled = true;
        try {
          const t = await upload(v, form);
          error.hidden = true;
          document.getElementById("toast-alert").textContent = "";    // the refusal it follows is moot
          form.reset();
          ui.toast("Added the " + t.label + " captions (" + t.cues + " cues) to \u201c" + v.title + "\u201d.");
          await load(panel, v, ui);
        } catch (err) { ui.showError(error, "Captions not added: " + err.message); }
        finally { submit.disabled = false; }
      });
    }
    return load(panel, v, ui);
  }

  const close = (li) => { $(".captions-panel", li).hidden = true; };
  return { open, close };
})();
