"""The one error class of the command line: a usage problem, reported in one line with exit 2.

    from harness.errors import UsageError
    raise UsageError("--threads must be between 1 and 2, got 3")

Bad input through the Python API raises `impls.contract.ContractError` (a
ValueError) instead; the command line treats both alike (harness/cli.py).
"""


class UsageError(Exception):
    """A bad command line, config or path: reported as one line, exit code 2."""
