"""The site in a real browser: headless Chromium (the system's, through playwright) opens every
page from file://, with every request that is not a local file refused and recorded.

Checked on every page: no console error and no uncaught exception; no request beyond file://;
every plot drawn (an SVG with points in it); every link, image, script and stylesheet
resolving to a file of the site (and every #fragment to an element); and, on pages with plots,
hover text (the value, its interval, the run and the commit) when the mouse is over a point.
On the index: every run folder listed, and a column sorts when its header is clicked.
Skipped, with the reason, only where Chromium or playwright cannot be had.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from harness.site import browser
from harness.site.command import build
from tests.fixtures import site_runs
from tests.helpers import ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(browser.why_not() is not None, reason=str(browser.why_not()))]


@pytest.fixture(scope="module")
def chromium():
    with browser.open_browser() as b:
        yield b


def _target(url: str) -> tuple[Path | None, str]:
    parsed = urlparse(url)
    return (Path(unquote(parsed.path)) if parsed.scheme == "file" else None), parsed.fragment


class Visit:
    """One tab, page after page (a tab reused loads plotly.js from V8's code cache: a new tab
    per page costs seconds each on a loaded machine); what went wrong on the page now open."""

    def __init__(self, chromium):
        self.errors, self.network = [], []
        self.tab = chromium.new_page(viewport={"width": 1300, "height": 900})
        self.tab.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.tab.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

        def route(r):
            if r.request.url.startswith("file:"):
                r.continue_()
            else:
                self.network.append(r.request.url)
                r.abort()

        self.tab.route("**/*", route)

    def open(self, path: Path) -> Visit:
        self.errors.clear()
        self.network.clear()
        self.tab.goto(path.resolve().as_uri(), wait_until="load")
        return self

    def plots(self) -> int:
        """How many plots the page has, after checking each was drawn with points."""
        divs = self.tab.locator("div.js-plotly-plot")
        for i in range(divs.count()):
            plot = divs.nth(i)
            plot.locator("svg.main-svg").first.wait_for(state="attached", timeout=15_000)
            assert plot.locator(".scatterlayer .trace").count() > 0, f"plot {i}: no trace"
            assert plot.locator(".scatterlayer path.point").count() > 0, f"plot {i}: no point"
            box = plot.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 100, f"plot {i}: {box}"
        return divs.count()

    def hover_first_point(self) -> str:
        point = self.tab.locator("div.js-plotly-plot").first.locator(
            ".scatterlayer path.point").first
        point.scroll_into_view_if_needed()
        box = point.bounding_box()
        self.tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        self.tab.wait_for_selector(".hoverlayer .hovertext", timeout=5_000)
        return self.tab.locator(".hoverlayer .hovertext").first.text_content()

    def links(self) -> list[tuple[str, str]]:
        return self.tab.evaluate("""() => [
            ...[...document.querySelectorAll('a[href]')].map(a => ['a', a.href]),
            ...[...document.querySelectorAll('img')].map(i => ['img', i.src]),
            ...[...document.querySelectorAll('script[src]')].map(s => ['script', s.src]),
            ...[...document.querySelectorAll('link[href]')].map(l => ['link', l.href])]""")

    def images_loaded(self) -> bool:
        return self.tab.evaluate(
            "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")


def _check_site(chromium, site: Path, pages: list[Path] | None = None) -> dict:
    """Every page (or `pages`) checked; what was seen, counted."""
    seen = {"pages": 0, "plots": 0, "hovers": 0, "links": 0, "regression drawn": 0,
            "broken drawn": 0}
    visit = Visit(chromium)
    for page in pages or sorted(site.rglob("*.html")):
        visit.open(page)
        n = visit.plots()
        if n:
            text = visit.hover_first_point()
            assert re.search(r"\d", text) and "run " in text and "commit " in text, text
            assert "[" in text or "no interval" in text, text  # the interval, or why none
            seen["hovers"] += 1
        seen["regression drawn"] += visit.tab.locator(
            ".legendtext", has_text="regression (compare)").count()
        seen["broken drawn"] += visit.tab.locator(".annotation-text",
                                                  has_text="broken: ").count()
        for kind, url in visit.links():
            path, fragment = _target(url)
            assert path is not None, f"{page}: {kind} {url} is not a file of the site"
            assert path.is_file(), f"{page}: {kind} {url} resolves to nothing"
            assert site.resolve() in path.resolve().parents, f"{page}: {url} leaves the site"
            if fragment and path.resolve() == page.resolve():
                assert visit.tab.locator(f"#{fragment}").count() == 1, f"{page}: #{fragment}"
            seen["links"] += 1
        assert visit.images_loaded(), f"{page}: an image did not load"
        assert visit.errors == [], f"{page}: {visit.errors}"
        assert visit.network == [], f"{page}: asked the network for {visit.network}"
        seen["pages"] += 1
        seen["plots"] += n
    visit.tab.close()
    return seen


def test_the_committed_runs_in_a_browser(chromium, tmp_path):
    site = tmp_path / "site"
    build(ROOT / "results", site)
    seen = _check_site(chromium, site)
    runs = sorted(p.name for p in (ROOT / "results").iterdir() if p.is_dir())
    series = len(list((site / "series").glob("*.html")))
    assert seen["pages"] == 1 + len(runs) + series
    assert seen["hovers"] == len(runs) + series  # every run and series page has plots
    # Every regression trace the series pages carry is drawn (compare's verdicts between the
    # committed runs of one machine: between runs days apart, the machine's as much as the code's).
    traces = sum(p.read_text(encoding="utf-8").count('"name": "regression (compare)"')
                 for p in (site / "series").glob("*.html"))
    assert seen["regression drawn"] == traces
    visit = Visit(chromium).open(site / "index.html")
    cells = "#runs-table tbody tr td:first-child"
    assert sorted(visit.tab.locator(cells).all_text_contents()) == runs
    header = visit.tab.locator("#runs-table thead th").first
    header.click()
    header.click()  # descending: the newest folder name first
    assert visit.tab.locator(cells).first.text_content() == runs[-1]
    assert header.get_attribute("aria-sort") == "descending"
    visit.tab.close()


def test_history_and_damaged_folders_in_a_browser(chromium, tmp_path):
    results = tmp_path / "results"
    site_runs.history(results)
    said = site_runs.damaged(results)
    site = tmp_path / "site"
    build(results, site)
    # Each page loads plotly.js anew (~1-3 s): the index, every damaged run's page, one sound
    # run's, and the two series with a regression (test_site.py checks every link statically).
    pages = [site / "index.html", *(site / "runs" / name / "index.html" for name in said),
             site / "runs" / sorted(p.name for p in results.iterdir())[-1] / "index.html",
             site / "series" / "numpy-default-cpu-float32-tiny.html",
             site / "series" / "torch-eager-cpu-float32-tiny.html"]
    seen = _check_site(chromium, site, pages)
    assert seen["pages"] == len(pages) and seen["hovers"] >= 3
    assert seen["regression drawn"] == 2  # numpy tiny slower: its two plots, a red cross each
    assert seen["broken drawn"] == 2  # torch tiny broken: a line in each of its two plots
    visit = Visit(chromium).open(site / "index.html")
    listed = visit.tab.locator("#runs-table tbody tr td:first-child").all_text_contents()
    assert set(said) <= set(listed) and len(listed) == 4 + len(said)
    assert visit.tab.locator("#runs-table tbody tr.problem").count() == len(said)
    visit.tab.close()
