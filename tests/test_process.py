"""harness/process.py, the one way a process is run: messages on their own pipes, the thread
budget and pinning, time limits that name their phase, and nothing left behind: not the
process group, not a grandchild that left it with os.setsid(), not what a killed owner left.

Every child here is a few lines of Python; no time is asserted (a limit only bounds a hang).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from harness import process
from harness.process import (
    ChildError,
    Group,
    Limit,
    signals,  # noqa: F401  (process.signals)
)
from tests.helpers import ROOT

PY = sys.executable

ECHO = textwrap.dedent("""
    from harness import process
    cpus = process.child_setup()
    ch = process.channel()
    print("framework chatter on stdout, {not json")
    while (msg := ch.receive()) is not None:
        if msg.get("op") == "stop":
            break
        ch.send({"echo": msg, "cpus": cpus, "threads": __import__("os").environ.get("OMP_NUM_THREADS")})
""")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not _gone(pid):
        time.sleep(0.05)
    return _gone(pid)


def test_messages_travel_on_their_own_pipes_with_the_thread_budget_and_cpus(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))[:1]
    with Group(str(tmp_path)) as group:
        child = group.start([PY, "-c", ECHO], threads=1, cpus=cpus, channel=True)
        reply = child.ask({"op": "hello", "n": 3}, Limit(60, "start-up"))
        assert reply == {"echo": {"op": "hello", "n": 3}, "cpus": cpus, "threads": "1"}
        assert child.ask({"op": "again"}, Limit(60))["echo"] == {"op": "again"}
        child.send({"op": "stop"})
        assert child.wait(Limit(60)) == 0
        assert "chatter" in Path(child.files["stdout"]).read_text()  # in a file, not the pipe
    assert not group.dir.exists()


def test_each_limit_names_its_phase_and_its_figure(tmp_path):
    slow_start = "import time; time.sleep(60)"
    with Group(str(tmp_path)) as group:
        child = group.start([PY, "-c", slow_start], channel=True)
        with pytest.raises(ChildError) as err:
            child.receive(Limit(0.5, "start-up (import, set-up)"))
        assert err.value.status == "timeout"
        assert str(err.value) == "killed after 0.5 s of start-up (import, set-up)"
        assert _wait_gone(child.pid)
        hang = "from harness import process; ch = process.channel(); ch.send({'ready': 1}); " \
               "ch.receive(); import time; time.sleep(60)"
        child = group.start([PY, "-c", hang], channel=True)
        assert child.receive(Limit(60, "start-up")) == {"ready": 1}
        with pytest.raises(ChildError, match=r"^killed after 0.25 s of work \(one block\)$"):
            child.ask({"op": "block"}, Limit(0.25, "work (one block)"))


def test_a_crash_and_garbage_on_the_channel_are_one_line_failures(tmp_path):
    with Group(str(tmp_path)) as group:
        crash = group.start([PY, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"],
                            channel=True)
        with pytest.raises(ChildError) as err:
            crash.receive(Limit(60))
        assert (err.value.status, err.value.reason) == ("failed", "exit code 3: boom")
        garbage = ("import os; w = int(os.environ['BACKPROP_BENCH_CHANNEL'].split(',')[1]);"
                   " os.write(w, b'not json\\n')")
        with pytest.raises(ChildError, match="broke the protocol"):
            group.start([PY, "-c", garbage], channel=True).receive(Limit(60))


ESCAPE = textwrap.dedent("""
    import os, sys, time
    if os.fork() == 0:          # a grandchild that leaves the process group and the session
        os.setsid()
        if os.fork() == 0:
            sys.stdout.write(f"{os.getpid()}\\n"); sys.stdout.flush()
            time.sleep(600)
        os._exit(0)
    time.sleep(600)
""")


def _grandchild(child) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = Path(child.files["stdout"]).read_text().strip()
        if text:
            return int(text)
        time.sleep(0.05)
    raise AssertionError("the grandchild never started")


def test_close_kills_a_grandchild_that_left_the_session(tmp_path):
    with Group(str(tmp_path)) as group:
        child = group.start([PY, "-c", ESCAPE])
        escaped = _grandchild(child)
        assert os.getpgid(escaped) != child.pid  # out of the group: killpg alone misses it
        assert child.close() == 0
        assert _wait_gone(child.pid) and _wait_gone(escaped)


OWNER = textwrap.dedent("""
    import sys, time
    from harness import process
    group = process.Group(sys.argv[1])
    child = group.start([sys.executable, "-c", "import time; time.sleep(600)"])
    print(child.pid, group.dir, flush=True)
    time.sleep(600)
""")


def test_what_a_sigkilled_owner_left_is_reaped(tmp_path):
    owner = subprocess.Popen([PY, "-c", OWNER, str(tmp_path)], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        pid, folder = owner.stdout.readline().split()
    finally:
        owner.kill()  # SIGKILL: no clean-up runs in the owner
        owner.communicate(timeout=60)
    assert not _gone(int(pid)) and Path(folder).exists()  # the orphan and its folder ...
    other = Group(str(tmp_path))  # a live owner's group is never touched
    try:
        assert process.reap_stale(str(tmp_path)) == [folder]  # ... until the next run starts
        assert _wait_gone(int(pid)) and not Path(folder).exists() and other.dir.exists()
    finally:
        other.close()


INTERRUPTED = textwrap.dedent("""
    import sys, time
    from harness import process
    with process.interrupts(redeliver=True):
        with process.Group(sys.argv[1]) as group:
            child = group.start([sys.executable, "-c", "import time; time.sleep(600)"])
            print(child.pid, group.dir, flush=True)
            time.sleep(600)
""")


def test_sigterm_cleans_up_then_ends_the_process_by_sigterm(tmp_path):
    proc = subprocess.Popen([PY, "-c", INTERRUPTED, str(tmp_path)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    with proc:
        pid, folder = proc.stdout.readline().split()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM  # died of it, as the caller expects
    assert _wait_gone(int(pid)) and not Path(folder).exists()


def test_rlimits_and_a_wrapper_apply_to_the_child(tmp_path):
    """(No preexec_fn: forking a threaded parent to run Python code is unsafe; with JAX's threads
    running here, as in the whole suite, it would warn, and warnings are errors.)"""
    writer = "open('big', 'wb').write(b'x' * 100000)"
    with Group(str(tmp_path)) as group:
        child = group.start(["env", "WRAPPED=1", PY, "-c", writer], cwd=tmp_path, wrapper=[],
                            rlimits={resource.RLIMIT_FSIZE: (10_000, 10_000)})
        assert child.wait(Limit(60)) != 0  # SIGXFSZ or EFBIG past 10 kB
        assert (tmp_path / "big").stat().st_size <= 10_000
        wrapped = group.start([PY, "-c", "import os; print(os.environ['WRAPPED'])"],
                              wrapper=["env", "WRAPPED=yes"])
        assert wrapped.wait(Limit(60)) == 0
        assert Path(wrapped.files["stdout"]).read_text().strip() == "yes"


def test_groups_live_in_the_temp_folder_and_record_their_owner():
    group = Group()
    try:
        assert group.dir.parent == Path(tempfile.gettempdir())
        pid, ctime = (group.dir / "owner").read_text().split()
        assert int(pid) == os.getpid() and float(ctime) == psutil.Process().create_time()
    finally:
        group.close()
    assert not group.dir.exists()


def test_children_started_from_threads_get_tags_of_their_own(tmp_path):
    """The smoke starts workers from threads: two children with one tag would kill each other."""
    from concurrent.futures import ThreadPoolExecutor

    with Group(str(tmp_path)) as group, ThreadPoolExecutor(8) as pool:
        children = list(pool.map(lambda _: group.start([PY, "-c", "pass"]), range(16)))
        assert len({c.tag for c in children}) == 16


@pytest.mark.parametrize("other_thread", [False, True])
def test_a_signal_during_a_clean_up_waits_for_its_end(other_thread):
    """A SIGTERM that arrives while a group is being cleaned up is raised after it, not in the
    middle (which would leave half of it); also when another thread receives it (the main
    thread still runs the handler)."""
    import threading

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    if other_thread:
        helper.start()
    done = []
    try:
        with pytest.raises(process.Interrupted), process.interrupts():
            with process.signals._shielded():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)  # were the signal raised now, the clean-up would stop here
                done.append("clean-up finished")
    finally:
        stop.set()
        if other_thread:
            helper.join()
    assert done == ["clean-up finished"]


# ---- what the student sandbox needs (harness/check/sandbox.py) ----------------------------------
def test_a_forked_callable_gets_its_session_files_channel_and_rlimits(tmp_path):
    def fn():
        from harness import process as p

        ch = p.channel()
        print("to the file")
        fsize = resource.getrlimit(resource.RLIMIT_FSIZE)
        ch.send({"session": os.getsid(0) == os.getpid(), "fsize": list(fsize),
                 "cwd": os.getcwd(), "env": os.environ.get("MINE"),
                 "channel_env": "BACKPROP_BENCH_CHANNEL" in os.environ})
        return 7

    with Group(str(tmp_path)) as group:
        child = group.fork(fn, env={"MINE": "yes"}, channel=True, cwd=str(tmp_path),
                           rlimits={resource.RLIMIT_FSIZE: (50_000, 50_000)})
        said = child.receive(Limit(60))
        assert child.wait(Limit(60)) == 7
        assert said == {"session": True, "fsize": [50_000, 50_000], "cwd": str(tmp_path),
                        "env": "yes", "channel_env": False}
        assert Path(child.files["stdout"]).read_text() == "to the file\n"
    assert os.getsid(0) != child.pid  # this process stayed where it was


def test_rlimits_never_ask_above_the_hard_limit_in_force(tmp_path):
    def fn():
        resource.setrlimit(resource.RLIMIT_FSIZE, (5_000, 5_000))
        process.set_rlimits({resource.RLIMIT_FSIZE: (10**6, 10**6)})  # ValueError if not capped
        return 0 if resource.getrlimit(resource.RLIMIT_FSIZE) == (5_000, 5_000) else 9

    with Group(str(tmp_path)) as group:
        assert group.fork(fn).wait(Limit(60)) == 0


def test_wait_returns_when_asked_and_a_cancel_kills(tmp_path):
    import threading

    flag = tmp_path / "done"
    script = f"import pathlib, time; pathlib.Path({str(flag)!r}).touch(); time.sleep(600)"
    with Group(str(tmp_path)) as group:
        child = group.start([PY, "-c", script])
        assert child.wait(Limit(60), until=flag.exists) is None  # still running, but done
        assert child.poll() is None
        cancel = threading.Event()
        threading.Timer(0.2, cancel.set).start()
        with pytest.raises(process.Cancelled):
            child.wait(Limit(600), cancel=cancel)
        assert _wait_gone(child.pid)


def test_a_channel_is_its_child_s_alone(tmp_path):
    """A grandchild started without a channel must not believe it holds its parent's."""
    grandchild = ("import os; print(os.environ.get('BACKPROP_BENCH_CHANNEL'))")
    middle = textwrap.dedent(f"""
        import sys
        from harness import process
        with process.Group(sys.argv[1]) as group:  # started before this one takes its channel
            c = group.start([sys.executable, "-c", {grandchild!r}])
            c.wait(process.Limit(60))
            process.channel().send({{"grandchild saw": open(c.files["stdout"]).read().strip()}})
    """)
    with Group(str(tmp_path)) as group:
        child = group.start([PY, "-c", middle, str(tmp_path)], channel=True)
        assert child.receive(Limit(60)) == {"grandchild saw": "None"}
        process.progress("a parent without a channel: nothing happens")  # and no error


GUARDED = textwrap.dedent("""
    import os, sys, time
    from harness import process

    def work():                       # leaves a grandchild in a session of its own, exits 3
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                print(os.getpid(), flush=True)
                time.sleep(600)
            os._exit(0)
        time.sleep(0.5)
        return 3

    sys.exit(process.guard(work, process.channel()))
""")


def test_the_guard_says_how_its_worker_ended_and_kills_what_it_left(tmp_path):
    with Group(str(tmp_path)) as group:
        child = group.start([PY, "-c", GUARDED], channel=True)
        assert child.wait(Limit(120)) == 0
        escaped = _grandchild(child)
        assert child.pending() == [{"ready": True}, {"end": "exit", "code": 3, "left": 1}]
        assert _wait_gone(escaped)


def test_another_process_s_live_groups_are_never_reaped(tmp_path):
    """Several pytest workers (xdist) each run groups: one's reap_stale() must leave the other's
    live children alone (an earlier reaper did not)."""
    owner = subprocess.Popen([PY, "-c", OWNER, str(tmp_path)], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        pid, folder = owner.stdout.readline().split()
        assert process.reap_stale(str(tmp_path)) == []
        assert not _gone(int(pid)) and Path(folder).exists()
    finally:
        owner.kill()
        owner.communicate(timeout=60)
    assert process.reap_stale(str(tmp_path)) == [folder] and _wait_gone(int(pid))
