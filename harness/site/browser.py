"""Headless Chromium for the site's browser tests and its screenshots, driven by playwright.

    from harness.site import browser
    exe = browser.chromium()          # a path, or None (and browser.why_not() says why)
    with browser.open_browser() as b:  # playwright's Browser, started headless, offline
        page = b.new_page()

    python -m harness.site.browser SITE docs/ [SERIES.html]   # docs/site-index.png, site-series.png

The browser is the system's Chromium (Debian's `chromium`; BACKPROP_BENCH_CHROMIUM names
another): playwright's own browser download cannot be used where there is no network. The flags
are those this machine needs: no sandbox (root in a container), no GPU, and none of Chromium's
background connections (refused here, many at a time, and each one a console error).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def chromium() -> str | None:
    """The Chromium executable to use, or None."""
    named = os.environ.get("BACKPROP_BENCH_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def why_not() -> str | None:
    """None when a browser test can run; else the reason it cannot (for pytest.skip)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; pyproject's test extra)"
    if chromium() is None:
        return ("no Chromium on this machine (apt-get install chromium; or set"
                " BACKPROP_BENCH_CHROMIUM to a Chromium executable)")
    return None


@contextlib.contextmanager
def open_browser():
    """playwright's Browser: the system Chromium, headless."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def screenshots(site: Path, out: Path, series: str | None = None) -> list[Path]:
    """The index, and a series page (`series`, a file name under series/; default: the one
    with most runs among those with a regression) with the mouse on a point of its first plot
    (the regression's, where there is one), as out/site-index.png and out/site-series.png."""
    site, out = Path(site), Path(out)
    pages = sorted((site / "series").glob("*.html"))
    if not pages:
        raise SystemExit(f"{site} has no series pages: build it with python -m harness site")
    if series is None:
        marked = [p for p in pages if "regression (compare)" in p.read_text(encoding="utf-8")]
        chosen = max(marked or pages, key=lambda p: p.read_text(encoding="utf-8").count("<tr"))
    else:
        chosen = site / "series" / series
    written = [out / "site-index.png", out / "site-series.png"]
    with open_browser() as b:
        tab = b.new_page(viewport={"width": 1300, "height": 900})
        tab.goto((site / "index.html").resolve().as_uri())
        tab.screenshot(path=str(written[0]))
        tab.goto(chosen.resolve().as_uri())
        plot = tab.locator(".js-plotly-plot").first
        points = plot.locator(".scatterlayer .trace:last-child path.point")
        points.first.wait_for()
        box = points.first.bounding_box()
        tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tab.wait_for_selector(".hoverlayer .hovertext")
        tab.screenshot(path=str(written[1]))
    return written


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit("usage: python -m harness.site.browser SITE_DIR OUT_DIR [SERIES.html]")
    for path in screenshots(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:]):
        print(f"wrote {path}")
