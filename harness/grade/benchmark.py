"""How fast `grade` is here: submissions per minute for a class of .py files, and what one
notebook costs.

    python -m harness.grade.benchmark                    # 200 .py submissions, the default jobs
    python -m harness.grade.benchmark --n 50 --notebooks 4 --jobs 2

The class is made from the example class (docs/examples/class/): correct NumPy submissions and
the four NumPy bugs, in turn, each copy under its own name; the notebooks are copies of the
correct one. Each is graded by a real `python -m harness grade` into a temporary folder, with
the default rubric (18 jobs per submission: 10 gradient checks, 4 five-step training runs,
4 float32 checks). Wall-clock time, so the machine's other work counts: say what else ran.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.check import isolation
from impls import contract

ROOT = Path(__file__).resolve().parents[2]
CLASS = ROOT / "docs" / "examples" / "class"
PY = ("alice_numpy.py", "dave_sum.py", "alice_numpy.py", "erin_sign.py", "alice_numpy.py",
      "grace_bias.py")


def grade(folder: Path, out: Path, jobs: int, walls: str) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "harness", "grade", str(folder), "--out",
                             str(out), "--jobs", str(jobs), "--isolation", walls],
                            cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"grade failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help=".py submissions (default 200)")
    parser.add_argument("--notebooks", type=int, default=2, help="notebooks, graded apart")
    parser.add_argument("--jobs", type=int, default=contract.usable_cores())
    parser.add_argument("--isolation", choices=("auto", *isolation.ISOLATIONS), default="auto")
    args = parser.parse_args(argv)
    walls = isolation.choose(args.isolation)[0]
    with tempfile.TemporaryDirectory(prefix="grade-bench-") as tmp:
        tmp = Path(tmp)
        py = tmp / "py"
        py.mkdir()
        for i in range(args.n):
            shutil.copy(CLASS / PY[i % len(PY)], py / f"student{i:04d}.py")
        seconds = grade(py, tmp / "out-py", args.jobs, walls)
        print(f"{args.n} .py submissions in {seconds:.1f} s with --jobs {args.jobs} "
              f"({walls}): {60 * args.n / seconds:.0f} submissions per minute, "
              f"{seconds * args.jobs / args.n:.2f} s of a job slot each")
        if args.notebooks:
            nb = tmp / "nb"
            nb.mkdir()
            for i in range(args.notebooks):
                shutil.copy(CLASS / "carol_notebook.ipynb", nb / f"student{i:04d}.ipynb")
            seconds = grade(nb, tmp / "out-nb", args.jobs, walls)
            print(f"{args.notebooks} notebooks in {seconds:.1f} s with --jobs {args.jobs}: "
                  f"{seconds * args.jobs / args.notebooks:.1f} s of a job slot each "
                  "(a kernel started per notebook)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
