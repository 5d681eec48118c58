"""Mallory: tries every trick. Each one must end in a verdict for Mallory alone."""

import os
import signal
import subprocess
import time


def grads(params, X, T, loss):
    # 1. Copy a classmate's answer (bubblewrap: the file is not there to read).
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        with open(os.path.join(here, "alice_numpy.py")) as f:
            namespace = {}
            exec(f.read(), namespace)
        copied = namespace["grads"](params, X, T, loss)
    except OSError:
        copied = None
    # 2. Leave a daemon behind, in a session of its own (the odd number lets a test find it).
    subprocess.Popen(["sleep", "600.0613"], start_new_session=True)
    # 3. Scribble over the grader's output, if it can find it.
    try:
        with open("../grades.csv", "w") as f:
            f.write("mallory,pass,100\n")
    except OSError:
        pass
    # 4. Kill whoever started it, and wait to be stopped.
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(60)
    return copied
