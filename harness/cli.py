"""The command line: `python -m harness COMMAND ...`.

Each command lives in its own module, which provides

    add_arguments(parser)      # argparse options of the command
    main(args) -> int          # exit code: 0 ok, 1 a finding (disagreement, regression)

Usage errors (bad options, bad config values, missing files) are reported as
one line on stderr with exit code 2 and no traceback: modules raise
`harness.errors.UsageError`, and the contract's validation raises `ContractError`. Any other
exception is a bug and keeps its traceback. Only the module of the command
being run is imported, so one command's missing dependency never breaks another.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.errors import UsageError
from impls.contract import ContractError

# command -> (module, one-line help)
COMMANDS = {
    "check": ("harness.check.command",
              "prove every implementation computes the same gradients and trajectory"),
    "zoo": ("harness.check.zoo", "run the gradient checker on a zoo of real backprop bugs"),
    "grade": ("harness.grade.command",
              "grade a class's backprop submissions, sandboxed: grades.csv, feedback, summary"),
    "bench": ("harness.bench.command",
              "time every implementation over a sweep of sizes; write a run folder"),
    "compare": ("harness.report.compare", "compare two runs cell by cell; exit 1 on a regression"),
    "smoke": ("harness.bench.smoke",
              "every GPU code path once at a tiny size, each a pass/FAIL row (`make gpu-smoke`)"),
    "stability": ("harness.bench.stability",
                  "run a benchmark twice (A/A) and show how far its figures move"),
    "report": ("harness.report.command", "render report.md and plots for a stored run"),
    "site": ("harness.site.command",
             "a static site of every run under results/ (index, runs, series across runs)"),
    "lessons": ("harness.lessons.command",
                "cost of change and vanishing gradients (figures for the teaching docs)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints usage first)
        raise UsageError(message)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported to add its options."""
    parser = _Parser(prog="python -m harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        if name == command:
            _load(module).add_arguments(p)
    return parser


def _load(module: str):
    return importlib.import_module(module)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = build_parser(command).parse_args(argv)
        return int(_load(args._module).main(args))
    except (UsageError, ContractError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
