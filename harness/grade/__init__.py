"""`python -m harness grade`: a whole class's backprop graded, each submission sandboxed.

    rubric.py       what is checked and what it is worth (a TOML file; the default)
    submissions.py  the class: a folder or a .zip, one entry per student
    score.py        the jobs a submission runs, and its rows -> tests, points, status
    feedback.py     feedback/<name>.md and Gradescope's results.json
    summary.py      summary.md and its plot, for the teacher
    folder.py       DIR: records, resume, the lock, the views
    command.py      the command: several submissions at once, signals, progress
    benchmark.py    submissions per minute on this machine
"""
