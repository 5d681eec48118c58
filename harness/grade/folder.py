"""The grade folder DIR: the only reader and writer of what `grade` stores.

    from harness.grade.folder import GradeFolder
    with GradeFolder.open(out, meta, resume=False) as folder:   # created, or resumed; locked
        folder.done()                      # {submission: record} already graded
        folder.add(record)                 # records/<name>.json, written whole, at once
        folder.write_views(rubric)         # grades.csv, feedback/, gradescope/, summary.md/.png

    DIR/grade.json             what this folder grades (rubric text, function, source): a
                               --resume with anything else is refused
    DIR/records/<name>.json    one per graded submission: what --resume keeps
    DIR/grades.csv ...         views, rewritten from the records (never read back)

Every file is written atomically (a crash leaves the old file or the new one). A second
`grade` into a folder another one is writing is refused at once (an flock the kernel drops
when its holder dies, even by SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from harness.errors import UsageError
from harness.grade import feedback
from harness.grade.rubric import Rubric
from harness.grade.submissions import safe_name
from harness.grade.summary import summary
from harness.store.files import atomic_write, csv_text

COLUMNS = ("submission", "status", "score", "max_score", "checks_passed", "checks_total",
           "diagnosis", "seconds", "file")
META = "grade.json"


class GradeFolder:
    def __init__(self, path: Path, meta: dict):
        self.path, self.meta = Path(path), meta

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path, meta: dict, resume: bool):
        """DIR created (refused if it holds anything and resume is False), or resumed (refused
        if it grades something else); locked while the block runs."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {path}: exists and is not a folder")
        if resume and not (path / META).exists():
            raise UsageError(f"--resume: {path} holds no grades to resume ({META} is missing)")
        if not resume and path.exists() and any(p.name != ".lock" for p in path.iterdir()):
            raise UsageError(f"--out {path}: exists and is not empty (--resume finishes it, or "
                             "choose a new folder)")
        path.mkdir(parents=True, exist_ok=True)
        with _lock(path):
            if resume:
                old = json.loads((path / META).read_text(encoding="utf-8"))
                changed = [k for k in ("rubric", "function", "source") if old.get(k) != meta[k]]
                if changed:
                    raise UsageError(f"--resume: {path} was graded with another "
                                     f"{changed[0]} ({META}); grade into a new folder")
            (path / "records").mkdir(exist_ok=True)
            atomic_write(path / META, json.dumps({k: meta[k] for k in ("rubric", "function",
                                                                        "source")}, indent=1))
            yield cls(path, meta)

    def done(self) -> dict[str, dict]:
        out = {}
        for f in sorted((self.path / "records").glob("*.json")):
            record = json.loads(f.read_text(encoding="utf-8"))
            out[record["submission"]] = record
        return out

    def add(self, record: dict) -> None:
        atomic_write(self.path / "records" / f"{safe_name(record['submission'])}.json",
                     json.dumps(record, indent=1, sort_keys=True))

    def write_views(self, rubric: Rubric) -> None:
        """grades.csv, feedback/, gradescope/ and summary.md from the records (sorted)."""
        records = sorted(self.done().values(), key=lambda r: r["submission"])
        atomic_write(self.path / "grades.csv", csv_text(COLUMNS, records))
        for sub in ("feedback", "gradescope"):
            (self.path / sub).mkdir(exist_ok=True)
        for r in records:
            name = safe_name(r["submission"])
            atomic_write(self.path / "feedback" / f"{name}.md", feedback.markdown(r, rubric))
            (self.path / "gradescope" / name).mkdir(exist_ok=True)
            atomic_write(self.path / "gradescope" / name / "results.json",
                         json.dumps(feedback.gradescope(r, rubric), indent=1))
        atomic_write(self.path / "summary.md",
                     summary(records, self.meta, self.path / "summary.png"))


@contextlib.contextmanager
def _lock(path: Path):
    import fcntl

    lock = path / ".lock"
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise UsageError(f"--out {path} is being written by another grade (pid {holder}); "
                             "wait for it to finish") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
