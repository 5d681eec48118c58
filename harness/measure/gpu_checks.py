"""Will a GPU run mean what it says? Checks that tell before the run wastes its time, and
after each cell, what its read-back record says against what its mode asks.

    from harness.measure import gpu_checks, machine
    found = gpu_checks.before_run(machine.gpus(), series)     # the machine, the toolchain
    found += gpu_checks.of_record(series_one, info)           # one cell's info() when it stops
    if gpu_checks.failing(found): ...                         # stop early, say why
    print(gpu_checks.render(found))

Each check returns Findings: `fail` means the run would waste its time or record something
false (an exclusive compute mode fails every GPU process after the first; TF32 where the
mode asks for full float32 makes every "float32" figure a TF32 one); `warn` means the run
is worth doing but its figures need the note (another process on the GPU, a MIG slice,
persistence off, a power limit below the default). Nothing here imports a framework:
`before_run` reads nvidia-smi's facts (harness/measure/machine.py) and the C toolchain
Triton builds its launchers with (impls/readback.py); `of_record` reads the dict an
implementation's info() returned in the cell's own process, when its worker stopped.
The GPU machine never lent here: every check is tested with fakes (tests/test_gpu_checks.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from harness.measure.spec import Series
from impls import readback

# Modes that need Triton to build C launchers on a GPU (torch.compile's).
TRITON_MODES = {("torch", "compile"), ("torch", "reduce-overhead")}
# JAX on the CPU: the dispatch each mode asks for (impls/jax_impl.py).
JAX_CPU_DISPATCH = {"jit": "synchronous", "nojit": "synchronous", "jit-async": "asynchronous"}
COMPILE_THREADS_ENV = "TORCHINDUCTOR_COMPILE_THREADS"


@dataclass(frozen=True)
class Finding:
    check: str  # "compute mode", "processes", "MIG", "persistence", "power", "toolchain",
    #             "device", "precision", "dispatch", "CUDA graphs", "compile threads",
    #             "nvidia-smi"
    severity: str  # "fail" | "warn"
    text: str
    series: str = ""  # "impl/mode/device" it is about; "" for the machine

    def line(self) -> str:
        where = f"{self.series}: " if self.series else ""
        return f"{self.severity.upper()} {self.check}: {where}{self.text}"


def failing(found: Iterable[Finding]) -> list[Finding]:
    return [f for f in found if f.severity == "fail"]


def render(found: Iterable[Finding]) -> str:
    return "\n".join(f.line() for f in found) or "no findings"


# ---- before the run ------------------------------------------------------------------------
def machine_findings(gpus: list[dict] | None, own_pids: Iterable[int] = ()) -> list[Finding]:
    """From machine.gpus(): what would fail or distort a run of many GPU processes at once.
    `own_pids`: this run's own processes, not counted as others."""
    if not gpus:
        return [Finding("nvidia-smi", "warn", "nvidia-smi lists no GPU (or is missing): the "
                        "GPU's setup cannot be checked or recorded")]
    own, out = {str(p) for p in own_pids}, []
    for i, g in enumerate(gpus):
        name = f"GPU {g.get('index', i)} ({g.get('name')})"
        mode = str(g.get("compute_mode") or "")
        if mode.lower().startswith("exclusive"):
            out.append(Finding("compute mode", "fail", f"{name} is in compute mode {mode}: "
                               "only one process may use it at a time, and a run starts "
                               "several (workers, the check, the peak) at once"))
        elif mode.lower() == "prohibited":
            out.append(Finding("compute mode", "fail", f"{name} is in compute mode Prohibited: "
                               "no process may use it"))
        procs = g.get("processes")
        others = [p for p in procs or [] if str(p.get("pid")) not in own]
        if others:
            listed = ", ".join(f"{p.get('name')} (pid {p.get('pid')}, {p.get('memory')})"
                               for p in others)
            out.append(Finding("processes", "fail", f"{name} is in use by {listed}: its time "
                               "and memory would be shared with this run's, unrecorded"))
        elif procs is None:
            out.append(Finding("processes", "warn", f"{name}: nvidia-smi did not list the "
                               "processes on it; a neighbour would go unnoticed"))
        if str(g.get("mig") or "").lower() == "enabled":
            out.append(Finding("MIG", "warn", f"{name} has MIG enabled: a run measures the slice"
                               " it was given, not the whole GPU (the report must say so)"))
        if str(g.get("persistence") or "").lower() == "disabled":
            out.append(Finding("persistence", "warn", f"{name} has persistence mode off: each "
                               "process start pays the driver's initialisation again"))
        limit, default = _watts(g.get("power_limit")), _watts(g.get("power_default_limit"))
        if limit is not None and default is not None and limit < 0.95 * default:
            out.append(Finding("power", "warn", f"{name} has a power limit of "
                               f"{g['power_limit']}, below its default {g['power_default_limit']}:"
                               " its peak is this setting's, not the GPU's"))
    return out


def _watts(value) -> float | None:
    try:
        return float(str(value).split()[0])
    except (ValueError, IndexError):
        return None


def toolchain_findings(series: Iterable[Series]) -> list[Finding]:
    """Compiled torch modes on a GPU need Triton's C launchers built at run time: a C compiler
    and Python.h (impls/readback.py, c_toolchain). Missing, every such cell would fail after
    its graph compiled (tens of seconds each); torch_impl.available() says so too."""
    missing = readback.c_toolchain()
    return [Finding("toolchain", "fail", f"torch.compile on a GPU: Triton cannot build its "
                    f"launchers ({missing})", str(s))
            for s in series if missing and s.device == "gpu" and (s.impl, s.mode) in TRITON_MODES]


def before_run(gpus: list[dict] | None, series: Iterable[Series],
               own_pids: Iterable[int] = ()) -> list[Finding]:
    """Everything that can be told before any GPU process starts: cheap (nvidia-smi's answer,
    a look at PATH and the Python headers), for the smoke and `bench` to call first."""
    series = list(series)
    found = toolchain_findings(series)
    if any(s.device == "gpu" for s in series):
        found = machine_findings(gpus, own_pids) + found
    return found


# ---- after a cell: its record against its mode ------------------------------------------------
def asks_tf32(mode: str) -> bool:
    """What a mode asks for, from its name (the one thing a name may decide): TF32 matmuls for
    the `-tf32` modes, full float32 for every other."""
    return mode.endswith("tf32")


def checks_of(series: Series, info: dict, compile_threads_bound: int | None = None
              ) -> list[str]:
    """The checks of_record makes of this series' record, in its order (a Finding of each
    name, or none where the check passed): what a table shows as its steps."""
    out = ["device", "precision"] if series.device == "gpu" else []
    if series.impl == "jax" and series.device == "cpu" and series.mode in JAX_CPU_DISPATCH:
        out.append("dispatch")
    if series.mode == "reduce-overhead" and series.device == "gpu":
        out.append("CUDA graphs")
    if compile_threads_bound is not None and isinstance(info.get("compile_threads"), int):
        out.append("compile threads")
    return out


def of_record(series: Series, info: dict, compile_threads_bound: int | None = None
              ) -> list[Finding]:
    """One cell's info() (read back in its own process, when it stops) against what its
    mode asks: a GPU series ran on a GPU (its device read back is not the CPU), TF32 exactly
    where asked on a GPU (and elsewhere a matmul_precision read back as "highest": full
    float32, not some third thing), the JAX CPU dispatch its mode asks for, no skipped CUDA
    graphs under reduce-overhead, and inductor's compile pool no larger than
    `compile_threads_bound` (None: not checked). A record that lacks the read-back key fails:
    it cannot show the mode did what it says. checks_of names the checks made."""
    out, where = [], str(series)
    if series.device == "gpu":
        device = str(info.get("device") or "")
        if device in ("", "cpu") or str(info.get("backend") or "") == "cpu":
            out.append(Finding("device", "fail", f"a GPU series, but info() reads back device "
                               f"{device or 'none'!r} (backend {info.get('backend')!r})", where))
        want = asks_tf32(series.mode)
        got = info.get("tf32")
        if not isinstance(got, bool):
            out.append(Finding("precision", "fail", "info() records no read-back `tf32` "
                               f"(matmul_precision {info.get('matmul_precision')!r})", where))
        elif got != want or not (want or str(info.get("matmul_precision")).startswith("highest")):
            out.append(Finding("precision", "fail", f"the mode asks for "
                               f"{'TF32' if want else 'full float32'} matmuls, but the library "
                               f"reads back {info.get('matmul_precision')!r}"
                               + _override_note(info), where))
    if series.impl == "jax" and series.device == "cpu" and series.mode in JAX_CPU_DISPATCH:
        want, got = JAX_CPU_DISPATCH[series.mode], info.get("cpu_dispatch")
        if got != want:
            out.append(Finding("dispatch", "fail", f"the mode asks for {want} CPU dispatch; JAX's "
                               f"CPU client is {got or 'not read back'} "
                               f"({info.get('cpu_dispatch_evidence', 'no evidence recorded')})",
                               where))
    if series.mode == "reduce-overhead" and series.device == "gpu":
        skips = info.get("cudagraph_skips")
        if not isinstance(skips, int):
            out.append(Finding("CUDA graphs", "fail", "info() records no cudagraph_skips", where))
        elif skips:
            why = "; ".join(info.get("cudagraph_skip_reasons") or []) or "no reason captured"
            out.append(Finding("CUDA graphs", "fail", f"inductor skipped CUDA graphs {skips} "
                               f"time(s): {why}", where))
    threads = info.get("compile_threads")
    if compile_threads_bound is not None and isinstance(threads, int) \
            and threads > compile_threads_bound:
        out.append(Finding("compile threads", "warn", f"inductor's compile pool has {threads} "
                           f"workers ({info.get('compile_threads_from')}), above the bound "
                           f"{compile_threads_bound}", where))
    return out


def _override_note(info: dict) -> str:
    value = info.get("tf32_override")
    return f" (NVIDIA_TF32_OVERRIDE={value})" if value is not None else ""


# ---- for whoever starts many compiles at once ------------------------------------------------
def compiles_cold(series: Series) -> bool:
    """torch.compile's modes: a fresh process compiles the step cold (tens of seconds, with
    inductor's pool of compile workers), the slowest start of any series."""
    return (series.impl, series.mode) in TRITON_MODES


def compile_threads(cpus: int, compiles_at_once: int) -> int:
    """A compile pool size for each of `compiles_at_once` cold torch.compile processes sharing
    `cpus` cores: their fair share, at least 1 (1: inductor compiles in its own process, no
    pool). Set as TORCHINDUCTOR_COMPILE_THREADS in their environment; torch_impl records it."""
    return max(1, cpus // max(1, compiles_at_once))


def compile_threads_env(cpus: int, compiles_at_once: int) -> dict:
    """{TORCHINDUCTOR_COMPILE_THREADS: n} unless the caller's environment already sets it."""
    if COMPILE_THREADS_ENV in os.environ:
        return {}
    return {COMPILE_THREADS_ENV: str(compile_threads(cpus, compiles_at_once))}


def compile_threads_bound(env: dict, threads: int) -> int:
    """The compile pool a process started with `env` (and this environment) should have:
    TORCHINDUCTOR_COMPILE_THREADS where either sets it (torch reads it itself), else the thread
    budget, which torch_impl holds inductor's pool to. of_record's compile_threads_bound."""
    value = env.get(COMPILE_THREADS_ENV, os.environ.get(COMPILE_THREADS_ENV))
    try:
        return max(1, int(str(value).strip()))
    except ValueError:
        return threads
