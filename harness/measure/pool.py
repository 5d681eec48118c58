"""The parent's handle on a long-lived benchmark worker (harness/measure/worker.py).

    w = Worker.start(job, env, timeout=120)     # set up, first call, warm-up: w.ready
    w.block(3, timeout=60)                      # [seconds per step] x 3, or raises WorkerError
    w.stop(timeout=30)                          # {"status": "ok", "final_loss": ..., "info": ...}

Each worker runs in its own process group (its own session), so a hung worker and
anything it forked (compiler processes) are killed together; `close()` always does
that. A crash, a hang past its timeout, or garbage on the protocol raises WorkerError
with a one-line reason: the caller records it and goes on.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time

from harness.codec import to_dict
from harness.measure.launch import REPO, UNSET_VARS
from harness.measure.spec import Job
from harness.measure.worker import MARKER


class WorkerError(RuntimeError):
    """A worker that crashed, hung or broke the protocol; `status` is failed or timeout."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class Worker:
    def __init__(self, proc: subprocess.Popen, err):
        self.proc, self.err = proc, err
        self.ready: dict = {}
        self._buffer = b""

    @classmethod
    def start(cls, job: Job, env: dict, timeout: float, on_start=None) -> Worker:
        """Start a worker and wait until it is set up and warm (or failed: WorkerError).
        `on_start(pid)` hears of the worker's process group as soon as it exists."""
        full = {k: v for k, v in os.environ.items() if k not in UNSET_VARS}
        full.update(env)
        full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full.get("PYTHONPATH")]))
        err = tempfile.TemporaryFile()  # a file, not a pipe: a chatty worker never blocks
        proc = subprocess.Popen([sys.executable, "-m", "harness.measure.worker"], cwd=REPO,
                                env=full, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, start_new_session=True)
        if on_start is not None:
            on_start(proc.pid)
        worker = cls(proc, err)
        try:
            worker.ready = worker._ask(to_dict(job), timeout)
        except BaseException:
            worker.close()
            raise
        if worker.ready.get("status") != "ready":
            worker.close()
        return worker

    def block(self, samples: int, timeout: float) -> list[float]:
        """Time `samples` samples (each steps_per_sample steps and one sync): seconds per step."""
        reply = self._ask({"op": "block", "samples": samples}, timeout)
        if "samples" not in reply:
            raise WorkerError("failed", reply.get("reason", f"unexpected reply {reply}"))
        return [float(x) for x in reply["samples"]]

    def cpu_seconds(self) -> float | None:
        """CPU time the worker's process has used so far (all its threads), from /proc."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_quiet(self, window: float = 0.02, max_s: float = 1.0) -> float:
        """Wait until the worker uses no CPU for `window` seconds (at most `max_s`); return the
        seconds waited. After a block, thread pools keep spinning for a while: measured here,
        OpenBLAS ~0.1-0.2 s of a whole core after a large GEMM, torch's OpenMP ~10 ms, XLA
        ~2 ms; then nothing. A block started meanwhile would share its cores with them. Where
        /proc is missing, waits `max_s / 4`."""
        start = time.monotonic()
        last = self.cpu_seconds()
        if last is None:
            time.sleep(max_s / 4)
            return max_s / 4
        quiet_since = start
        while time.monotonic() - start < max_s:
            time.sleep(0.005)
            now = self.cpu_seconds()
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= window:
                break
        return time.monotonic() - start

    def stop(self, timeout: float) -> dict:
        """The final loss and the implementation's info; the process then exits."""
        try:
            return self._ask({"op": "stop"}, timeout)
        finally:
            self.close()

    def _ask(self, message: dict, timeout: float) -> dict:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerError("failed", self._died()) from None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while True:
                line, sep, rest = self._buffer.partition(b"\n")
                if sep:
                    self._buffer = rest
                    text = line.decode(errors="replace")
                    if text.startswith(MARKER):
                        return json.loads(text[len(MARKER):])
                    continue  # framework chatter on stdout
                left = deadline - time.monotonic()
                if left <= 0:
                    self.close()
                    raise WorkerError("timeout", f"killed after {timeout:g} s")
                if sel.select(left):
                    chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
                    if not chunk:
                        raise WorkerError("failed", self._died())
                    self._buffer += chunk

    def _died(self) -> str:
        code = self.proc.wait()
        self.err.seek(0)
        last = (self.err.read().decode(errors="replace").strip().splitlines() or ["no output"])
        self.close()
        return f"exit code {code}: {last[-1][:300]}"

    def close(self) -> None:
        """Kill the worker's whole process group (idempotent). Also after the worker itself
        exited: a compiler process it forked may still be alive in its group."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: pgid == pid
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.err):
            try:
                stream.close()
            except OSError:
                pass
