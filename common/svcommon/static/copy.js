// Copy buttons (button[data-copy="<input id>"]): the input's value to the clipboard, the button
// then says "Copied". Without a clipboard (permission, insecure origin) the text is selected
// for the user to copy by hand; the input stays readable and selectable either way.
"use strict";
(() => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const input = document.getElementById(button.dataset.copy);
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(input.value);
        button.textContent = "Copied";
      } catch (e) {
        input.focus();
        input.select();
        button.textContent = "Press Ctrl+C";
      }
    });
  }
})();
