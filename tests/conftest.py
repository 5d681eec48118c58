"""Fixtures shared by every test module (plain helpers live in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import impls
from tests.helpers import ROOT

FAULTY = ROOT / "tests" / "fixtures" / "faulty_impl.py"


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def faulty(monkeypatch) -> str:
    """Register tests/fixtures/faulty_impl.py ("faulty": modes crash, hang, raise, diverge)
    through impls.EXTRA_ENV, here and in every child process; returns its name."""
    monkeypatch.setenv(impls.EXTRA_ENV, str(FAULTY))
    return "faulty"


@pytest.fixture
def no_png(monkeypatch):
    """Figures are still built, but not drawn into PNGs: an empty file stands in for each.

    For tests that read only report.md's text (or a file's existence): drawing and encoding
    the five PNGs is about two thirds of a render (~6 of ~9 s on a 2-core CPU). The tests
    that look at the figures themselves (test_report.py's full run) draw them for real.
    """
    from harness.report import plots

    def save(fig, out_dir: Path, name: str) -> str:
        plots.plt.close(fig)
        plots.atomic_write(Path(out_dir) / name, b"")
        return name

    monkeypatch.setattr(plots, "save", save)


def pytest_collection_modifyitems(items):
    """The tests marked slow (subprocesses, compiles) first, each group in its own order: with
    several pytest processes (`make test`'s TEST_JOBS), the long ones start early instead of
    leaving one process busy at the end. The same order in every process (xdist needs it)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
