"""Where each page of the site lives, and the relative link to it from a page at `depth`
folders below the root (every link is relative: the site opens from file://, and moves whole).

    DIR/index.html                     the runs and the series
    DIR/runs/<run>/index.html          one page per run, with its report's figures beside it
    DIR/series/<impl>-<mode>-<device>-<dtype>-<size>.html
    DIR/assets/                        plotly.min.js (once), site.css, site.js
"""

from __future__ import annotations

import re

from harness.store import CellKey

MARKER = ".backprop-bench-site"  # in a site's root: what `site --out` may replace, scan skips


def run_dir(slug: str) -> str:
    return f"runs/{slug}"


def run_href(slug: str, depth: int) -> str:
    return "../" * depth + f"runs/{slug}/index.html"


def series_file(key: CellKey) -> str:
    name = "-".join(re.sub(r"[^A-Za-z0-9._]", "_", str(part)) for part in key)
    return f"series/{name}.html"


def series_href(key: CellKey, depth: int) -> str:
    return "../" * depth + series_file(key)


def series_title(key: CellKey) -> str:
    return f"{key.impl} {key.mode} · {key.device} · {key.dtype} · {key.size}"
