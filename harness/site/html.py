"""The site's HTML pieces: the page shell, tables, escaping, and report.md as HTML.

    from harness.site.html import page, table, esc, Cell
    page("Runs", body, depth=0, plots=True)     # a whole document; depth: folders below the root
    table(["run", "time"], [[link, Cell("1.2 ms", sort=0.0012, cls="num")]])

Every page links its stylesheet and scripts relatively (`../assets/...`), so the site opens from
file:// with no server: no page fetches anything (a file:// page may not), its data is in it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from markdown_it import MarkdownIt

TITLE = "backprop-bench results"


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Cell:
    """A table cell: its HTML, the key it sorts by (a number sorts as a number), a class."""

    html: str
    sort: object = None
    cls: str = ""


def _td(cell) -> str:
    if not isinstance(cell, Cell):
        cell = Cell(esc(cell))
    attrs = ""
    if cell.sort is not None:
        attrs += f' data-sort="{esc(cell.sort)}"'
    if cell.cls:
        attrs += f' class="{esc(cell.cls)}"'
    return f"<td{attrs}>{cell.html}</td>"


def table(head: Iterable[str], rows: Iterable[Iterable], row_classes: Iterable[str] = (),
          sortable: bool = True, table_id: str = "") -> str:
    """A table; plain strings are escaped, Cells are taken as HTML."""
    classes = list(row_classes)
    body = []
    for i, row in enumerate(rows):
        rc = classes[i] if i < len(classes) and classes[i] else ""
        body.append(f"<tr{f' class={chr(34)}{rc}{chr(34)}' if rc else ''}>"
                    + "".join(_td(c) for c in row) + "</tr>")
    attrs = (' class="sortable"' if sortable else "") + (f' id="{esc(table_id)}"' if table_id
                                                          else "")
    return (f'<div class="scroll"><table{attrs}><thead><tr>'
            + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "\n".join(body) + "</tbody></table></div>")


def prose(text: str) -> str:
    """A sentence from a note (load.py's are markdown): escaped, `code` as <code>, one end stop."""
    out = esc(str(text).strip().rstrip("."))
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def link(href: str, text: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def badge(text: str, kind: str) -> str:
    return f'<span class="badge {esc(kind)}">{esc(text)}</span>'


def page(title: str, body: str, depth: int, plots: bool = False, built: str = "") -> str:
    """A whole HTML document. `depth`: how many folders below the site's root it lies."""
    up = "../" * depth
    plotly = f'<script src="{up}assets/plotly.min.js"></script>\n' if plots else ""
    footer = f'<p class="note">{esc(built)}</p>' if built else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} - {esc(TITLE)}</title>
<link rel="stylesheet" href="{up}assets/site.css">
{plotly}<script src="{up}assets/site.js"></script>
</head>
<body>
<header class="top"><a class="home" href="{up}index.html">{esc(TITLE)}</a>
<a href="{up}index.html#runs">runs</a><a href="{up}index.html#series">series</a></header>
<main>
<h1>{esc(title)}</h1>
{body}
{footer}
</main>
</body>
</html>
"""


def markdown(text: str, target: Callable[[str], str | None]) -> str:
    """report.md as HTML: headings one level down (the page has its h1), tables made sortable,
    raw HTML escaped (never run), and every link and image target passed through `target`
    (which returns the href to use, or None: not in the site, and a link becomes its text)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for block in tokens:
        if block.type in ("heading_open", "heading_close"):  # under the page's own h1
            block.tag = f"h{min(int(block.tag[1]) + 1, 6)}"
        stack = []  # the link_open tokens whose link_close is still to come
        for tok in block.children or ():
            if tok.type == "image":
                src = target(str(tok.attrs.get("src", "")))
                if src is None:  # not in the site: say so, never an empty src
                    tok.type, tok.content = "text", f"[image not in the site: {tok.content}]"
                else:
                    tok.attrs["src"] = src
            elif tok.type == "link_open":
                stack.append(tok)
                href = target(str(tok.attrs.get("href", "")))
                if href is None:  # not in the site: the link's text only, in a span
                    tok.tag, tok.attrs = "span", {"class": "dead-link",
                                                  "title": "not part of the site"}
                else:
                    tok.attrs["href"] = href
            elif tok.type == "link_close" and stack:
                tok.tag = stack.pop().tag
    out = md.renderer.render(tokens, md.options, {})
    return out.replace("<table>", '<div class="scroll"><table class="sortable">').replace(
        "</table>", "</table></div>")
