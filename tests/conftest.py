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
