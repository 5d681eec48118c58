"""No dead link or anchor in README.md and docs/*.md: every relative link names a file or folder
of this tree, and every #anchor a heading (GitHub's slug of it) or an HTML id of its target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans (links there are code)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: inline markup dropped, lower case, punctuation removed
    (word characters, hyphens and spaces kept), spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a markdown file: its headings' slugs (GitHub numbers repeats -1, -2,
    ...) and any HTML id or name."""
    text = path.read_text(encoding="utf-8")
    found, seen = set(), {}
    for line in re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M).splitlines():
        if m := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            found.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    found |= set(re.findall(r"""(?:id|name)\s*=\s*["']([^"']+)["']""", text))
    return found


def links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return LINK.findall(text) + HTML.findall(text)


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("//")


CASES = [(doc, target) for doc in DOCS for target in links(doc) if relative(target)]


def test_the_docs_have_links_to_check():
    assert len(CASES) > 30 and any("#" in t for _, t in CASES)


@pytest.mark.parametrize("doc, target", CASES,
                         ids=[f"{d.relative_to(ROOT)}->{t}" for d, t in CASES])
def test_every_relative_link_and_anchor_resolves(doc, target):
    path, _, anchor = target.partition("#")
    file = (doc.parent / path).resolve() if path else doc
    assert file.exists(), f"{doc.relative_to(ROOT)}: {target}: no {path}"
    if anchor and file.suffix == ".md":
        assert anchor in anchors(file), (f"{doc.relative_to(ROOT)}: {target}: no heading with"
                                         f" the anchor #{anchor} in {file.relative_to(ROOT)}")


def test_the_slug_is_githubs():
    assert slug("Scaling: `make bench PROFILE=scaling`") == "scaling-make-bench-profilescaling"
    assert slug("Proof of agreement: `python -m harness check`") == \
        "proof-of-agreement-python--m-harness-check"
    assert slug("3. Meet the zoo") == "3-meet-the-zoo"
    assert slug("反向传播 (backprop)") == "反向传播-backprop"


def _headings(path: Path) -> list[str]:
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", path.read_text(encoding="utf-8"),
                  flags=re.S | re.M)
    return [m.group(1) for m in re.finditer(r"^#{1,6}\s+(.*?)\s*$", text, flags=re.M)]


def test_the_code_names_only_readme_sections_that_exist():
    """A module that sends its reader to the README's "Some section" names a heading there."""
    headings = _headings(ROOT / "README.md")
    named = []
    for package in ("impls", "dataparallel", "harness"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for section in re.findall(r"README(?:'s)?,? \"([^\"]+)\"", path.read_text("utf-8")):
                named.append((path.relative_to(ROOT), section))
    assert named  # the rule has something to check
    dead = [(str(p), s) for p, s in named if not any(s in h for h in headings)]
    assert dead == [], f"README sections named in the code but not in the README: {dead}"
