// The strength hint of every new-password field (input[data-strength]): asks the server's own
// rules (POST /api/auth/password-check, nothing stored) a moment after typing stops, fills the
// meter and says in words what is wrong. The server checks again on submit.
"use strict";
(() => {
  const WORDS = ["Very weak", "Weak", "Fair", "Strong", "Very strong"];
  for (const input of document.querySelectorAll("input[data-strength]")) {
    const hint = document.getElementById(input.dataset.strength);
    const meter = input.parentElement.querySelector(".meter");
    const form = input.form;
    let timer = null, asked = 0;
    const field = (name) => (form.elements[name] ? form.elements[name].value : "");
    async function check() {
      const password = input.value, mine = ++asked;
      if (!password) { hint.textContent = ""; meter.dataset.score = "0"; meter.firstElementChild.style.width = "0"; return; }
      try {
        const v = await SV.api("/api/auth/password-check", { method: "POST",
          body: { password, username: field("username"), email: field("email") } });
        if (mine !== asked) return;   // an older answer arriving late
        meter.dataset.score = String(v.score);
        meter.firstElementChild.style.width = `${(v.score + 1) * 20}%`;
        hint.textContent = v.ok ? `${WORDS[v.score]}: this password is accepted.`
                                : `${WORDS[v.score]}: ${v.errors.join(" ")} ${v.suggestions.join(" ")}`.trim();
      } catch (e) {
        hint.textContent = "";   // the hint is a help, never a blocker: the server decides on submit
      }
    }
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 300); });
  }
})();
