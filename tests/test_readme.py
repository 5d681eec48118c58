"""The README's first screen works as written (issue 19, item 4): its Python API block runs as it
stands, its commands use the project's environment, every implementation's every mode and every
command is listed, and no module it runs with `python -m` is missing from this tree."""

from __future__ import annotations

import importlib.util
import re

import pytest

import impls
from harness import cli
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
FIRST_SCREEN = README.split("\n## ", 1)[0]


def block_after(marker: str, lang: str = "python") -> str:
    """The first fenced block of `lang` after `marker`."""
    after = README.split(marker, 1)[1]
    return re.search(rf"```{lang}\n(.*?)```", after, re.S).group(1)


def test_the_api_block_runs_as_it_stands():
    pytest.importorskip("torch")  # the block uses impls.get("torch")
    code = block_after("The Python API")
    namespace: dict = {}
    exec(compile(code, "README.md (the Python API)", "exec"), namespace)  # noqa: S102
    assert {"params", "X", "T", "loss", "grads", "params2", "history"} <= set(namespace)
    # what its comments say it shows
    assert namespace["X"].shape == (64, 2) and namespace["T"].shape == (64, 1)
    assert sorted(namespace["params"]) == ["W1", "W2", "b1", "b2"]
    assert str(impls.names()) in code and len(namespace["history"]) == 20


def test_the_api_block_names_where_its_inputs_come_from():
    code = block_after("The Python API")
    for name in ("X", "T", "params"):
        assert re.search(rf"^{name}\b.*=|^.*\b{name}\b[^=\n]*=", code, re.M), name
    assert "from harness.data import make" in code and "init_params" in code


def test_the_first_screen_runs_commands_in_the_projects_environment():
    """A bare `python -m harness` fails with the system's Python (no libraries): the first screen
    writes `.venv/bin/python -m ...`, or `make` (which uses .venv), and says how to activate."""
    table = FIRST_SCREEN.split("| command | what it does | time", 1)[1].split("\n\n", 1)[0]
    commands = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert len(commands) >= 8 and all(c.startswith(("make ", ".venv/bin/python -m "))
                                      for c in commands), commands
    assert [c for c in commands if c.startswith(".venv/bin/python")]
    assert "source .venv/bin/activate" in FIRST_SCREEN


def test_every_mode_of_every_implementation_is_listed():
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| `impls/\w+\.py` \|(.*)$",
                                                        README, re.M)}
    assert set(rows) == set(impls.names())
    for name in impls.names():
        listed = re.findall(r"`([\w-]+)`", rows[name].split("|")[-2])
        assert set(impls.get(name).modes) <= set(listed), (name, listed)


def test_every_command_is_in_the_first_screen():
    listed = set(re.findall(r"^\| `(\w+)[^`]*` \|", FIRST_SCREEN, re.M))
    assert set(cli.COMMANDS) <= listed, set(cli.COMMANDS) - listed


def test_every_module_the_readme_runs_exists():
    """`python -m X` and `-m X` in the README name modules of this tree or of a library: none
    of a layout that moved (impls.parallel became dataparallel)."""
    modules = set(re.findall(r"(?:python3?|\.venv/bin/python) (?:-u )?-m ([\w.]+)", README))
    modules |= set(re.findall(r"\s-m ([a-z_]+\.[\w.]+)", README))
    modules = {m.rstrip(".") for m in modules}  # "dataparallel.<engine>": the package
    ours = {m for m in modules if m.split(".")[0] in ("harness", "impls", "dataparallel")}
    assert ours and "harness" in ours
    missing = sorted(m for m in ours if importlib.util.find_spec(m) is None)
    assert missing == [], missing
    assert "impls/parallel" not in README and "impls.parallel" not in README


def test_no_figure_is_left_as_a_placeholder():
    """Every time and figure in the README is one a run printed; none is left as @@NAME@@."""
    assert re.findall(r"@@\w+@@", README) == []
