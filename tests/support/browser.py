"""Real Chromium (Debian's) driven by Python playwright — never a downloaded browser."""
from __future__ import annotations

import contextlib
import json
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# A browser set to block every site's cookies and site data (Settings > Privacy > Cookies).
BLOCK_COOKIES = {"profile": {"default_content_setting_values": {"cookies": 2}}}


@contextlib.contextmanager
def chromium_page(extra_args: tuple[str, ...] = (), preferences: dict | None = None, javascript: bool = True):
    """A page of a fresh Chromium profile; ``preferences``: that profile's settings as the
    browser's own Preferences file holds them (e.g. cookies blocked: BLOCK_COOKIES);
    ``javascript=False``: pages' scripts off, as a browser set to block them."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        if preferences:
            (Path(profile) / "Default").mkdir()
            (Path(profile) / "Default" / "Preferences").write_text(json.dumps(preferences))
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=[*ARGS, *extra_args],
                                                    headless=True, java_script_enabled=javascript)
        try:
            yield ctx.pages[0] if ctx.pages else ctx.new_page()
        finally:
            ctx.close()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test" / "screenshots"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def screenshots(page, name: str) -> None:
    """Full-page PNGs of the current page at desktop and phone sizes, for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
    if before:
        page.set_viewport_size(before)


def watch_until(page, predicate: str, timeout_s: float = 30) -> None:
    """Poll a watch page with page.evaluate (CDP, not subject to our strict CSP, unlike
    wait_for_function) until ``predicate`` holds; on timeout, say where the player was."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            state = page.evaluate("({t: document.getElementById('video')?.currentTime, "
                                  "stats: window.svPlayback && {...svPlayback, epochs: [...svPlayback.epochs], "
                                  "usedEpochs: [...svPlayback.usedEpochs]}, "
                                  "overlay: document.getElementById('overlay')?.hidden === false "
                                  "&& document.getElementById('overlay').innerText})")
            raise AssertionError(f"timed out waiting for {predicate}: {state}")
        time.sleep(0.1)
