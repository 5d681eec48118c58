"""`compare --format markdown`: a table for a review comment that says the verdict first, marks
regressions, and leaves the text output as it was."""

from __future__ import annotations

import re
import shlex

import pytest

from harness import cli
from tests.helpers import ROOT
from tests.test_compare import META, _rounds, _run


def _runs(tmp_path, slow: bool, meta_b=None):
    a = _run(tmp_path, "a", {"tiny": ("ok", _rounds(1e-4, 0.05)),
                             "large": ("ok", _rounds(0.1, 0.03, seed=3))})
    b = _run(tmp_path, "b", {"tiny": ("ok", _rounds(1.3e-4 if slow else 1e-4, 0.05, seed=1)),
                             "large": ("ok", _rounds(0.1, 0.03, seed=4))}, meta_b)
    return str(a.path), str(b.path)


def _cells(line: str) -> int:
    """Columns of a markdown table row: unescaped pipes, less one."""
    return len(re.findall(r"(?<!\\)\|", line)) - 1


def _tables_are_well_formed(text: str) -> None:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows and all(_cells(r) == 5 for r in rows), rows


def test_a_regression_comes_first_and_bold(tmp_path, capsys):
    a, b = _runs(tmp_path, slow=True)
    assert cli.main(["compare", a, b, "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"### Benchmark comparison: `{a}` (A) → `{b}` (B)")
    assert "**1 regression** (1 slower, 0 broken, 0 lost)" in out
    regressed = next(line for line in out.splitlines() if "**slower**" in line)
    assert regressed.startswith("| numpy default cpu float32 tiny |")
    assert out.index("**slower**") < out.index("<details>")  # unchanged cells folded below
    assert "| numpy default cpu float32 large |" in out.split("<details>")[1]
    _tables_are_well_formed(out)


def test_no_regression_says_so_and_folds_every_cell(tmp_path, capsys):
    a, b = _runs(tmp_path, slow=False)
    assert cli.main(["compare", a, b, "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "**No regression** in 2 cells" in out and "**slower**" not in out
    assert "<summary>2 cells with no clear change" in out
    _tables_are_well_formed(out)


def test_differing_machines_are_a_quote_not_warning_lines(tmp_path, capsys):
    other = {**META, "machine": {**META["machine"], "cpu_model": "CPU | Y"}}
    a, b = _runs(tmp_path, slow=False, meta_b=other)
    cli.main(["compare", a, b, "--format", "markdown"])
    out = capsys.readouterr().out
    assert "warning:" not in out
    assert "> **The runs differ**" in out and "> - CPU: 'CPU X' in A, 'CPU \\| Y' in B" in out


def test_the_text_output_is_unchanged(tmp_path, capsys):
    a, b = _runs(tmp_path, slow=True)
    assert cli.main(["compare", a, b]) == 1
    default = capsys.readouterr().out
    assert cli.main(["compare", a, b, "--format", "text"]) == 1
    assert capsys.readouterr().out == default
    head = default.splitlines()[0].split()
    assert head[:5] == ["impl", "mode", "device", "dtype", "size"] and "verdict" in head
    assert "1 slower, 0 faster, 0 broken, 0 lost" in default


def test_an_unknown_format_is_exit_2(tmp_path, capsys):
    a, b = _runs(tmp_path, slow=False)
    assert cli.main(["compare", a, b, "--format", "html"]) == 2
    assert "invalid choice: 'html'" in capsys.readouterr().err


def test_the_ci_recipe_is_a_workflow_whose_commands_parse():
    yaml = pytest.importorskip("yaml")
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    workflow = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    steps = workflow["jobs"]["bench"]["steps"]
    assert workflow[True] == {"pull_request": None}  # YAML reads the key `on` as True
    script = "\n".join(s.get("run", "") for s in steps).replace("\\\n", " ")
    commands = [line.strip() for line in script.splitlines() if "python -m harness" in line]
    assert [shlex.split(c)[3] for c in commands] == ["bench", "bench", "compare"]
    for command in commands:
        argv = shlex.split(command.split(">")[0])[3:]
        args = cli.build_parser(argv[0]).parse_args(argv)  # every option exists
        assert args.command in ("bench", "compare")
    assert "--format markdown" in script and "steps.compare.outputs.exit != '0'" in str(steps)
