"""python -m harness site [RESULTS] --out DIR  -- a static site of every run under RESULTS.

    python -m harness site --out site           # from results/; open site/index.html
    python -m harness site results --out /tmp/site

An index of runs, one page per run (its report in HTML, its plots, sortable tables) and one
page per series across runs, with compare's verdict between consecutive runs of one machine
(harness/site/__init__.py describes the site). It opens from file:// with no server and no
network: pages link plotly.js, the stylesheet and the table script from DIR/assets/ (plotly.js
once, from the installed plotly package), and carry their data inline.

DIR is built beside itself under a temporary name and then moved into place: a reader never
sees half a site, and a failed build leaves the previous one. DIR must be new, empty, or a site
this command built (it holds the marker file .backprop-bench-site); anything else is refused,
never overwritten. A run folder that cannot be read whole is listed with its problems; it never
stops the build. Exit 0 when the site was written, 2 for bad arguments.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from harness import options
from harness.errors import UsageError
from harness.site import charts, index, paths, run_page, series_page
from harness.site.history import collect
from harness.site.html import esc, page
from harness.site.runs import scan

MARKER = paths.MARKER
STATIC = Path(__file__).parent / "static"


def add_arguments(parser) -> None:
    parser.add_argument("results", nargs="?", default="results", metavar="RESULTS",
                        help="the folder holding run folders (default: results/)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="where to write the site (new, empty, or a site built before)")


def main(args) -> int:
    started = time.perf_counter()
    summary = build(Path(args.results), args.out)
    seconds = time.perf_counter() - started
    for name, problems in summary["problems"].items():
        print(f"{name}: " + "; ".join(problems))
    print(f"site: {summary['runs']} runs ({len(summary['problems'])} with problems),"
          f" {summary['series']} series, {summary['files']} files, {summary['bytes'] / 2**20:.1f}"
          f" MiB ({summary['plotly_bytes'] / 2**20:.1f} MiB of it plotly.js, once) in"
          f" {seconds:.1f} s: open {args.out / 'index.html'}")
    return 0


def _check_out(out: Path) -> None:
    options.out_folder("--out", out)
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise UsageError(f"--out {out} is a folder that holds other files (not a site this"
                         " command built): choose a new or empty folder")


def build(results: Path, out: Path) -> dict:
    """Write the site of every run under `results` into `out`; a summary of what was done."""
    out = Path(out)
    _check_out(out)
    runs = scan(results)
    series = collect(runs)
    built = (f"Built {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S')} UTC from"
             f" {results} by python -m harness site.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the site from other users
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror})") from None
    try:
        _write_all(tmp, runs, series, str(results), built)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = [p for p in out.rglob("*") if p.is_file()]
    return {"runs": len(runs), "series": len(series), "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "plotly_bytes": (out / "assets" / "plotly.min.js").stat().st_size,
            "problems": {r.name: r.problems for r in runs if r.problems}}


def _write_all(site: Path, runs, series, root: str, built: str) -> None:
    assets = site / "assets"
    assets.mkdir()
    shutil.copyfile(charts.plotly_js(), assets / "plotly.min.js")
    for name in ("site.css", "site.js"):
        shutil.copyfile(STATIC / name, assets / name)
    (site / "index.html").write_text(index.render(runs, series, root, built), encoding="utf-8")
    keys = set(series)
    for run in runs:
        folder = site / paths.run_dir(run.slug)
        folder.mkdir(parents=True)
        try:
            html, files = run_page.render(run, keys, built)
        except Exception as exc:  # noqa: BLE001  one run's page never stops the site
            html, files = _failed(f"Run {run.name}", exc, run_page.DEPTH, built), {}
        for name, source in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / name)
        (folder / "index.html").write_text(html, encoding="utf-8")
    (site / "series").mkdir()
    for key, points in series.items():
        try:
            html = series_page.render(key, points, built)
        except Exception as exc:  # noqa: BLE001
            html = _failed(paths.series_title(key), exc, series_page.DEPTH, built)
        (site / paths.series_file(key)).write_text(html, encoding="utf-8")
    (site / MARKER).write_text("built by python -m harness site\n", encoding="utf-8")


def _failed(title: str, exc: Exception, depth: int, built: str) -> str:
    return page(title, f'<div class="problems">This page could not be built:'
                       f" {esc(type(exc).__name__)}: {esc(exc)}</div>", depth, built=built)


def _publish(tmp: Path, out: Path) -> None:
    """Move the new site into place; the old one (if any) goes only once the new one is in."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
        out.replace(old / "site")
    tmp.replace(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
