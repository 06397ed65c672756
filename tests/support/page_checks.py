"""What every page must satisfy in real Chromium, at desktop, phone and the narrowest phone
sizes: its assets load, nothing overflows sideways, the named controls are visible inside the
viewport and enabled, axe-core finds no serious or critical violation; and a screenshot for a
person to look at. Keyboard: ``tab_to`` reaches a control with Tab and checks its focus shows.

axe-core comes from npm (auth-svc/package.json, a dev dependency installed by scripts/setup.sh)
and is evaluated through DevTools, so the pages' CSP need not allow it and no app serves it."""
from __future__ import annotations

import contextlib
from pathlib import Path

from tests.support.browser import SCREENSHOTS, SIZES

NARROWEST = 360   # the smallest phone the pages must fit
CHECKED_SIZES = {**SIZES, "narrow": (NARROWEST, 740)}
AXE = Path(__file__).resolve().parents[2] / "auth-svc" / "node_modules" / "axe-core" / "axe.min.js"


@contextlib.contextmanager
def asset_log(page):
    """Every asset request of the page that failed (or answered >= 400) while inside."""
    failed: list[str] = []
    assets = ("stylesheet", "script", "image", "font")

    def answered(resp):
        if resp.status >= 400 and resp.request.resource_type in assets:
            failed.append(f"{resp.status} {resp.url}")

    def lost(req):   # (API calls a navigation cuts short are not assets)
        if req.resource_type in assets:
            failed.append(f"failed {req.url}")
    page.on("response", answered)
    page.on("requestfailed", lost)
    try:
        yield failed
    finally:
        page.remove_listener("response", answered)
        page.remove_listener("requestfailed", lost)


# Elements with the hidden attribute that a CSS rule displays anyway (sv.css's
# `[hidden] { display:none !important }` is what every page relies on).
SHOWN_HIDDEN = """() => [...document.querySelectorAll('[hidden]')]
  .filter((e) => getComputedStyle(e).display !== 'none').map((e) => e.outerHTML.slice(0, 120))"""


# The input's placeholder, measured in the input's font, fits inside its content box (a cut-off
# placeholder reads as unfinished).
_PLACEHOLDER_FITS = """(el) => { const s = getComputedStyle(el), ctx = document.createElement('canvas').getContext('2d');
    ctx.font = `${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
    return ctx.measureText(el.placeholder).width <= el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); }"""


def assert_placeholder_fits(page, selector: str) -> None:
    """At every checked size, the placeholder of ``selector`` shows whole."""
    for size, (width, height) in CHECKED_SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        assert page.eval_on_selector(selector, _PLACEHOLDER_FITS), f"{selector}: placeholder cut off at {size}"
    page.set_viewport_size({"width": SIZES["desktop"][0], "height": SIZES["desktop"][1]})


def axe_violations(page) -> list[dict]:
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;true")
    return page.evaluate("""async () => {
        const r = await axe.run(document, { resultTypes: ["violations"] });
        return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")) }));
    }""")


def check_page(page, name: str, controls: tuple[str, ...] = (), stylesheet: bool = True) -> None:
    """The page as loaded now, at each size: layout facts, axe, screenshot (<name>-<size>.png).
    ``stylesheet``: the page links one (all but the gateway's self-contained 503 page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # A control can be found while the page a form post led to is still loading its
    # stylesheet (seen once in CI after "Reset link"): judge the page once it has loaded.
    page.wait_for_load_state("load")
    sheets = page.evaluate("() => [...document.styleSheets].map(s => s.href).filter(Boolean)")
    assert sheets or not stylesheet, f"{name}: no stylesheet"
    assert not page.evaluate(SHOWN_HIDDEN), f"{name}: elements marked hidden are shown: {page.evaluate(SHOWN_HIDDEN)}"
    for size, (width, height) in CHECKED_SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {size}: {overflow}px of horizontal overflow"
        for selector in controls:
            loc = page.locator(selector).first
            assert loc.is_visible() and loc.is_enabled(), f"{name} at {size}: {selector} not usable"
            box = loc.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, \
                f"{name} at {size}: {selector} outside the viewport ({box})"
        violations = axe_violations(page)
        assert not violations, f"{name} at {size}: {violations}"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
    page.set_viewport_size({"width": SIZES["desktop"][0], "height": SIZES["desktop"][1]})


def login(page, gw: str, user: dict, target: str = "/") -> None:
    """Sign in through the login form, landing on ``target``."""
    page.goto(f"{gw}/auth/login?redirect={target}")
    page.fill("input[name=username]", user["username"])
    page.fill("input[name=password]", user["password"])
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{gw}{target}")


# True when the focused element shows where the focus is: an outline, or a box shadow or border
# that differs from the same element unfocused (measured by blurring and focusing it again).
_FOCUS_SHOWN = """(el) => {
    const look = () => { const s = getComputedStyle(el);
        return [s.outlineStyle, s.outlineWidth, s.boxShadow, s.borderColor, s.backgroundColor].join("|"); };
    const s = getComputedStyle(el);
    if (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) return true;
    const focused = look();
    el.blur();
    const plain = look();
    el.focus({ focusVisible: true });
    return focused !== plain;
}"""


def tab_to(page, selector: str, max_tabs: int = 80, backwards: bool = False) -> None:
    """Press Tab (Shift+Tab) until the element matching ``selector`` has the focus, asserting it
    gets there and that its focus is visible: the page's main actions work from the keyboard."""
    target = page.locator(selector).first
    for _ in range(max_tabs):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if target.evaluate("el => el === document.activeElement"):
            assert page.evaluate("() => document.activeElement.matches(':focus-visible')"), \
                f"{selector}: focused by Tab but not :focus-visible"
            assert target.evaluate(_FOCUS_SHOWN), f"{selector}: the focus does not show"
            return
    active = page.evaluate("() => document.activeElement && document.activeElement.outerHTML.slice(0, 120)")
    raise AssertionError(f"{selector} not reached with {max_tabs} Tab presses (focus on {active})")
