"""`python -m harness site`: what the pages say, read from the HTML (the browser test,
test_site_browser.py, checks what a reader sees). Built from the committed runs, from a history
of synthetic runs with planted regressions, and from damaged folders."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from harness import cli
from harness.site import paths
from harness.site.command import build
from harness.store import CellKey, read_csv
from tests.fixtures import site_runs
from tests.helpers import ROOT


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _visible(html: str) -> str:
    """The page's words, tags and script aside (close enough for asserting on them)."""
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.ids |= {a["id"]} if a.get("id") else set()
        for name in ("href", "src"):
            if a.get(name) is not None:
                self.refs.append((tag, a[name]))


def assert_every_link_resolves(site: Path) -> int:
    """Every href and src of every page: a file of the site (no network, nothing outside it),
    and every #fragment an id of its page. Returns how many were checked."""
    pages = {}
    for page in site.rglob("*.html"):
        pages[page.resolve()] = parser = _Refs()
        parser.feed(_text(page))
    checked = 0
    for page, parser in pages.items():
        for tag, ref in parser.refs:
            url = urlparse(ref)
            assert not url.scheme and not url.netloc and ref, f"{page}: {tag} {ref!r}"
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            assert target.is_file(), f"{page}: {tag} {ref} resolves to nothing"
            assert site.resolve() in target.parents, f"{page}: {ref} leaves the site"
            if url.fragment:
                assert url.fragment in pages[target].ids, f"{page}: {ref}: no such id"
            checked += 1
    return checked


@pytest.fixture(scope="module")
def committed_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    summary = build(ROOT / "results", out)
    return out, summary


def test_every_committed_run_and_cell_has_its_page(committed_site):
    out, summary = committed_site
    runs = sorted(p for p in (ROOT / "results").iterdir() if p.is_dir())
    index = _text(out / "index.html")
    assert summary["runs"] == len(runs) and not summary["problems"]
    for run in runs:
        assert f'href="runs/{run.name}/index.html"' in index
        page = _text(out / "runs" / run.name / "index.html")
        assert run.name in page and "Report" in page
        for table in ("cells.csv", "scaling.csv"):
            for row in read_csv(run / table):
                if table == "cells.csv":
                    assert (out / paths.series_file(CellKey.of(row))).is_file()
    keys = {CellKey.of(r) for run in runs for r in read_csv(run / "cells.csv")}
    assert summary["series"] == len(keys) == len(list((out / "series").glob("*.html")))
    assert assert_every_link_resolves(out) > 6 * len(keys)  # each page: 3 assets, 3 in the nav, ...


def test_the_index_names_kind_profile_machine_time_commit_versions_and_cells(committed_site):
    out, _ = committed_site
    words = _visible(_text(out / "index.html"))
    assert "bench default AMD EPYC on vm 2026-11-27 03:41:37 98ee35d262" in words
    assert "scaling scaling AMD EPYC on vm 2026-11-27 03:43:46 98ee35d262 (uncommitted" in words
    assert "numpy 2.4.6, torch 2.13.0+cpu, jax 0.10.2, scikit-learn 1.9.1 19 of 19" in words


def test_a_run_page_has_its_report_figures_and_data(committed_site):
    out, _ = committed_site
    run = next(p for p in (ROOT / "results").iterdir() if p.name.endswith("-default"))
    page = out / "runs" / run.name
    html = _text(page / "index.html")
    for png in re.findall(r"\]\(([^)]+\.png)\)", _text(run / "report.md")):
        assert f'src="{png}"' in html and (page / png).read_bytes() == (run / png).read_bytes()
    assert '<table class="sortable">' in html and "<h3>Gradient agreement</h3>" in html
    assert 'id="plot-step"' in html and 'id="plot-speedup"' in html
    assert (page / "cells.csv").read_bytes() == (run / "cells.csv").read_bytes()
    assert "<script>" not in _text(run / "report.md") and "&lt;" not in html.split("<main>")[0]


def test_plotly_ships_once_and_pages_stay_small(committed_site):
    out, summary = committed_site
    copies = [p for p in out.rglob("*.js") if p.stat().st_size > 1_000_000]
    assert copies == [out / "assets" / "plotly.min.js"]
    for page in out.rglob("*.html"):
        html = _text(page)
        assert page.stat().st_size < 300_000, page
        assert not re.search(r"https?://[^\"' ]+\.(js|css)", html), page  # nothing from a network
        if "Plotly.newPlot" in html:
            up = "../" * (len(page.relative_to(out).parts) - 1)
            assert f'<script src="{up}assets/plotly.min.js"></script>' in html
    assert summary["bytes"] < 8 * 2**20


def test_a_history_marks_regressions_between_runs_of_one_machine(tmp_path):
    results = tmp_path / "results"
    site_runs.history(results)
    summary = build(results, tmp_path / "site")
    assert summary["runs"] == 4 and summary["problems"] == {}
    numpy_tiny = _text(tmp_path / "site" / "series" / "numpy-default-cpu-float32-tiny.html")
    rows = re.findall(r"<tr( class=\"[a-z]+\")?>(.*?)</tr>", numpy_tiny, flags=re.S)[1:]
    verdicts = [(cls, _visible(row)) for cls, row in rows]
    assert [c for c, _ in verdicts] == ["", "", "", ' class="regression"'] or \
        [c for c, _ in verdicts] == ["", "", ' class="regression"', ""]
    text = " ".join(v for _, v in verdicts)
    assert "first run of this machine" in text  # CPU A's first run and CPU B's only one
    assert text.count("first run of this machine") == 2  # machines are never compared
    assert "regression: slower B/A 1.3" in text and "same B/A" in text
    assert "aaaaaaaaaa" in text and "cccccccccc" in text  # the commit of each point
    assert "regression (compare)" in numpy_tiny  # the red crosses' trace
    assert_every_link_resolves(tmp_path / "site")
    torch_tiny = _visible(_text(tmp_path / "site" / "series" / "torch-eager-cpu-float32-tiny.html"))
    assert "regression: broken" in torch_tiny and "crashed (planted)" in torch_tiny
    index = _text(tmp_path / "site" / "index.html")
    assert index.count('class="regression"') == 2 and "2 with a regression marked" in index
    jax_small = _text(tmp_path / "site" / "series" / "jax-jit-cpu-float32-small.html")
    assert "regression" not in _visible(jax_small).replace("Regressions are marked", "")


def test_damaged_folders_are_listed_with_their_problem_and_never_stop_the_build(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    site_runs.committed(results)
    said = site_runs.damaged(results)
    assert cli.main(["site", str(results), "--out", str(tmp_path / "site")]) == 0
    index = _visible(_text(tmp_path / "site" / "index.html"))
    for name, problem in said.items():
        assert name in index
        row = index.split(name, 1)[1][:2000]
        assert problem in row, (name, problem, row[:300])
        assert (tmp_path / "site" / "runs" / name / "index.html").is_file()
    assert "torn" in index and "half-written" in index and "a lock file" in index
    old = _visible(_text(tmp_path / "site" / "runs" / "20261120-000003-oldschema" / "index.html"))
    assert "(no interval)" in old  # its cells shown, without the columns it never had
    assert_every_link_resolves(tmp_path / "site")
    good = sorted(p.name for p in (ROOT / "results").iterdir() if p.is_dir())
    assert all(f"runs/{g}/index.html" in _text(tmp_path / "site" / "index.html") for g in good)


def test_out_is_replaced_only_when_it_is_a_site(tmp_path, capsys):
    results = tmp_path / "results"
    site_runs.history(results)
    out = tmp_path / "site"
    assert cli.main(["site", str(results), "--out", str(out)]) == 0
    (out / "stale.html").write_text("from an older build")
    assert cli.main(["site", str(results), "--out", str(out)]) == 0  # a site: rebuilt whole
    assert not (out / "stale.html").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    capsys.readouterr()
    assert cli.main(["site", str(results), "--out", str(other)]) == 2
    err = capsys.readouterr().err
    assert "holds other files" in err and len(err.strip().splitlines()) == 1
    assert (other / "thesis.tex").read_text() == "precious"
    assert cli.main(["site", str(tmp_path / "nope"), "--out", str(tmp_path / "s2")]) == 2
    assert "is not a directory" in capsys.readouterr().err and not (tmp_path / "s2").exists()
    assert cli.main(["site", str(results), "--out", str(other / "thesis.tex")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_page_that_fails_is_said_on_it_and_the_rest_is_built(tmp_path, monkeypatch):
    from harness.site import run_page

    results = tmp_path / "results"
    runs = site_runs.history(results)
    real = run_page.render

    def flaky(run, keys, built=""):
        if run.name == runs[1].name:
            raise KeyError("planted")
        return real(run, keys, built)

    monkeypatch.setattr(run_page, "render", flaky)
    assert build(results, tmp_path / "site")["runs"] == 4
    broken = _visible(_text(tmp_path / "site" / "runs" / runs[1].name / "index.html"))
    assert "This page could not be built: KeyError: 'planted'" in broken
    assert "Report" in _text(tmp_path / "site" / "runs" / runs[2].name / "index.html")


def test_a_run_folder_alone_and_a_site_among_the_runs(tmp_path):
    results = tmp_path / "results"
    runs = site_runs.history(results)
    build(results, results / "site")  # a site inside the results root ...
    again = build(results, tmp_path / "site2")
    assert again["runs"] == 4 and again["problems"] == {}  # ... is not taken for a run
    alone = build(runs[0], tmp_path / "one")  # a run folder itself: its site alone
    assert alone["runs"] == 1 and (tmp_path / "one" / "runs" / runs[0].name / "index.html").exists()


def test_report_links_leave_neither_the_run_nor_the_machine(tmp_path):
    results = tmp_path / "results"
    (run,) = site_runs.history(results)[:1]
    (run / "secret.txt").write_text("not linked")
    (run / "report.md").write_text(
        "# R\n\n[ok](cells.csv) [up](../x) [abs](/etc/passwd) [web](https://example.invalid/a.js)"
        " [js](javascript:alert(1)) [anchor](#top) ![img](data:image/png;base64,AAAA)\n\n<script>"
        "alert(1)</script>\n")
    build(results, tmp_path / "site")
    html = _text(tmp_path / "site" / "runs" / run.name / "index.html")
    report = html.split('<div class="report">')[1].split("</div>")[0]
    assert '<a href="cells.csv">ok</a>' in report
    assert report.count("<a ") == 1 and report.count('class="dead-link"') == 4
    assert "href=\"javascript" not in report  # markdown-it refuses it: left as text
    assert "<img" not in report and "[image not in the site: img]" in report
    assert "<script>" not in report and "&lt;script&gt;" in report
    assert not (tmp_path / "site" / "runs" / run.name / "secret.txt").exists()
    assert_every_link_resolves(tmp_path / "site")
