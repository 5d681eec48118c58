"""What a framework really did, read back from the library after it took effect.

A record that says what a mode *asked* for can say one thing while another happens (a switch
set too late, an environment variable that overrides it, a compiler that quietly fell back).
These helpers read the effect instead; each implementation's info() records what they find:

    tf32_override()             NVIDIA_TF32_OVERRIDE as cuBLAS reads it ("0": TF32 off, always)
    hlo_precisions(text)        the precision of every matmul in a compiled (or lowered) program
    returns_before_ready(call)  whether a call returns before its result is ready (async dispatch)
    jax_cpu_dispatch(jax)       that, for JAX's CPU client: "synchronous" or "asynchronous"
    c_toolchain()               what Triton needs to build its launchers: a C compiler, Python.h
    CudaGraphSkips              inductor's "skipping cudagraphs due to ..." messages, captured
    torch_precision(torch, cuda)            torch's TF32 switches and float32 matmul precision
    torch_compile(config, counters, ...)    inductor's compile pool and CUDA-graph skips
    bound_compile_threads(config, budget)   inductor's compile pool held to the thread budget
    jax_precision(found, gpu)               TF32 or full float32, from a program's matmuls
    jax_matmul_precisions(jax, ran, ...)    every matmul's precision in the program JAX ran
    jax_backends_started(jax)               whether XLA has started a backend (read its flags)
    jax_cuda_plugin()                       whether a JAX CUDA plugin is installed

No framework is imported here: the callers pass what they have. The implementations keep
their maths at the top of their files; what is read back about it lives here.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import sysconfig
import time

OVERRIDE = "NVIDIA_TF32_OVERRIDE"


def tf32_override() -> str | None:
    """NVIDIA_TF32_OVERRIDE as set in this process (None: unset). cuBLAS and cuDNN read it:
    "0" turns TF32 off whatever the program asks; any other value changes nothing (it never
    forces TF32 on)."""
    value = os.environ.get(OVERRIDE)
    return None if value is None else value.strip()


def tf32_forbidden() -> bool:
    return tf32_override() == "0"


# One matmul per match. HLO after optimisation: `dot(...)` with `operand_precision={a,b}`
# (left out when both are DEFAULT) or an explicit `algorithm=dot_tf32_tf32_f32`, and on a GPU
# cuBLAS custom calls with a JSON backend config (`"operand_precision":["A","B"]`,
# `"algorithm":"ALG_DOT_..."`, ALG_UNSET when none). StableHLO (a lowering):
# `stablehlo.dot_general` with `precision = [A, B]`.
_MATMUL = re.compile(r"\bdot\(|stablehlo\.dot_general|__cublas\$")
_PRECISION = re.compile(r"operand_precision=\{(\w+),|\"operand_precision\":\[\"(\w+)\"|"
                        r"precision = \[(\w+),")
_ALGORITHM = re.compile(r"algorithm=dot_(\w+)|\"algorithm\":\"ALG_DOT_(\w+)\"")
FULL_FLOAT32 = {"highest", "f32_f32_f32"}  # what full float32 matmuls read back as
TF32 = {"default", "tf32_tf32_f32"}  # TF32 on a GPU (DEFAULT: what XLA picks for float32)


def hlo_precisions(text: str) -> list[str]:
    """The precision of every matmul in an HLO or StableHLO text, lower case, in order: its
    explicit algorithm where it has one ("tf32_tf32_f32", "f32_f32_f32", "bf16_bf16_f32_x3"),
    else its operand precision ("highest", "high", "default"; none named: "default")."""
    out = []
    for line in text.splitlines():
        if _MATMUL.search(line):
            if a := _ALGORITHM.search(line):
                out.append(next(g for g in a.groups() if g).lower())
                continue
            m = _PRECISION.search(line)
            out.append(next(g for g in m.groups() if g).lower() if m else "default")
    return out


def returns_before_ready(call, tries: int = 3) -> dict:
    """Whether `call()` returns before its result is ready, by behaviour: `call` dispatches
    work that takes milliseconds and returns (result, is_ready, wait), e.g. a jitted chain of
    matmuls with `out.is_ready` and `out.block_until_ready`. Synchronous dispatch returns every
    result ready, by construction; asynchronous dispatch returns in microseconds, long before
    the work is done, so one unready result out of `tries` settles it. Returns
    {"asynchronous": bool, "tries": n, "unready": k, "dispatch_s": [...], "done_s": [...]}."""
    unready, dispatch_s, done_s = 0, [], []
    for _ in range(tries):
        t0 = time.perf_counter()
        out, is_ready, wait = call()
        t1 = time.perf_counter()
        ready = bool(is_ready(out))
        wait(out)
        t2 = time.perf_counter()
        unready += not ready
        dispatch_s.append(t1 - t0)
        done_s.append(t2 - t0)
    return {"asynchronous": unready > 0, "tries": tries, "unready": unready,
            "dispatch_s": dispatch_s, "done_s": done_s}


# id of a JAX CPU client -> (the client, what jax_cpu_dispatch found): a client's dispatch
# never changes, and holding it keeps its id from being reused by a later one.
_DISPATCH: dict = {}


def jax_cpu_dispatch(jax) -> dict:
    """What JAX's CPU client does, read back by behaviour (the client has no attribute that
    says): {"dispatch": "synchronous" | "asynchronous", "evidence": ...}. A jitted float32
    768 x 768 matmul (0.9 GFLOP: milliseconds on any CPU; an asynchronous dispatch returns in
    ~0.1 ms) is dispatched three times (returns_before_ready). Once per client: one small
    compile and four runs, ~0.1-0.5 s and a few MB of host memory (in a benchmark worker,
    when it stops: after its timed steps, outside its memory peak)."""
    import numpy as np

    cpu = jax.devices("cpu")[0]
    if id(cpu.client) not in _DISPATCH:
        square = jax.jit(lambda a: jax.numpy.tanh(a @ a))
        a = jax.device_put(np.full((768, 768), 1 / 768, np.float32), cpu)
        square(a).block_until_ready()  # compiled outside the tries
        found = returns_before_ready(
            lambda: (square(a), lambda out: out.is_ready(), lambda out: out.block_until_ready()))
        _DISPATCH[id(cpu.client)] = cpu.client, {
            "dispatch": "asynchronous" if found["asynchronous"] else "synchronous",
            "evidence": f"{found['unready']} of {found['tries']} calls returned before their "
                        f"result was ready; the slowest return took "
                        f"{max(found['dispatch_s']) * 1e3:.2g} ms, the quickest result "
                        f"{min(found['done_s']) * 1e3:.2g} ms"}
    return _DISPATCH[id(cpu.client)][1]


def c_toolchain() -> str:
    """"" when Triton can build its C launchers here, else what is missing. Triton compiles a
    small C module at run time (triton/runtime/build.py: $CC, else gcc, else clang, with the
    include directory of sysconfig's default scheme for Python.h); without them every
    torch.compile on a GPU fails at its first call, after the graph is already compiled."""
    problems = []
    cc = os.environ.get("CC")
    if cc:
        words = shlex.split(cc) or [cc]
        if not shutil.which(words[0]):
            problems.append(f"CC={cc!r} is not an executable on PATH")
    elif not (shutil.which("gcc") or shutil.which("clang")):
        problems.append("no C compiler (Triton looks for $CC, gcc, then clang)")
    scheme = sysconfig.get_default_scheme()
    include = sysconfig.get_paths(scheme="posix_prefix" if scheme == "posix_local"
                                  else scheme)["include"]
    if not os.path.isfile(os.path.join(include, "Python.h")):
        problems.append(f"no Python.h in {include} (the Python development headers)")
    return "; ".join(problems)


class CudaGraphSkips(logging.Handler):
    """Inductor's reasons for not using CUDA graphs, as it logs them (torch/_inductor/
    cudagraph_utils.py, log_cudagraph_skip_and_bump_counter: a warning on the "cudagraphs"
    artifact logger, beside counters["inductor"]["cudagraph_skips"]). Attached to that logger
    directly, so it hears the warning whether or not the artifact is enabled."""

    LOGGER = "torch._inductor.cudagraph_utils.__cudagraphs"

    def __init__(self):
        super().__init__(logging.WARNING)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.reasons.append(record.getMessage())

    @classmethod
    def attached(cls) -> CudaGraphSkips:
        """The handler on the logger (one per process: attached once)."""
        log = logging.getLogger(cls.LOGGER)
        for h in log.handlers:
            if isinstance(h, cls):
                return h
        h = cls()
        log.addHandler(h)
        if log.getEffectiveLevel() > logging.WARNING:
            log.setLevel(logging.WARNING)
        return h


# ---- torch ---------------------------------------------------------------------------------
COMPILE_THREADS_ENV = "TORCHINDUCTOR_COMPILE_THREADS"


def torch_precision(torch, cuda: bool) -> dict:
    """The matmul precision read back from torch's switches as they stand (after the
    session's set-up): cuBLAS's allow_tf32 decides TF32, NVIDIA_TF32_OVERRIDE=0 vetoes it."""
    allow = torch.backends.cuda.matmul.allow_tf32  # cuBLAS's switch: what decides TF32
    try:
        precision = torch.get_float32_matmul_precision()
    except RuntimeError as exc:  # torch >= 2.9 refuses when backends were set inconsistently
        precision = f"unreadable: {str(exc)[:80]}"
    tf32 = cuda and allow and not tf32_forbidden()
    if not cuda:
        shown = ("highest (full float32)" if precision == "highest" else
                 f"{precision} (float32 matmul precision {precision!r}: reduced on some CPUs)")
    elif tf32:
        shown = f"tf32 (allow_tf32 True, float32 matmul precision {precision!r})"
    elif allow:
        shown = "highest (allow_tf32 True, but NVIDIA_TF32_OVERRIDE=0: TF32 off)"
    else:
        shown = f"highest (allow_tf32 False, float32 matmul precision {precision!r}: full float32)"
    return {"matmul_precision": shown, "tf32": tf32, "allow_tf32": allow,
            "float32_matmul_precision": precision,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "tf32_override": tf32_override()}


def bound_compile_threads(config, budget: int | None) -> None:
    """Inductor compiles in a pool of min(32, usable CPUs) worker processes by default
    (torch/_inductor/config.py, decide_compile_threads), each a Python importing torch: many
    cold compiles at once would start dozens. TORCHINDUCTOR_COMPILE_THREADS, where set, is the
    caller's choice (torch reads it itself); otherwise the pool (`config`: torch._inductor's)
    is held to the thread budget. Called before the first compile: the pool reads it then."""
    if COMPILE_THREADS_ENV in os.environ or budget is None or config.compile_threads is None:
        return
    config.compile_threads = max(1, min(config.compile_threads, budget))


def torch_compile(config, counters, mode: str, budget: int | None) -> dict:
    """What inductor did in this process (`config`: torch._inductor.config; `counters`:
    torch._dynamo.utils.counters): its compile pool's size and who chose it; for
    reduce-overhead, how many times it skipped CUDA graphs, and why."""
    env = os.environ.get(COMPILE_THREADS_ENV)
    out = {"compile_threads": config.compile_threads,
           "compile_threads_from": (f"{COMPILE_THREADS_ENV}={env}" if env is not None else
                                    f"set_threads({budget})" if budget is not None
                                    else "torch's default (min(32, usable CPUs))"),
           "inductor_cache_dir": os.environ.get("TORCHINDUCTOR_CACHE_DIR", "(default)")}
    if mode == "reduce-overhead":
        out["cudagraph_skips"] = int(counters["inductor"]["cudagraph_skips"])
        out["cudagraph_skip_reasons"] = list(CudaGraphSkips.attached().reasons)
    return out


# ---- jax -----------------------------------------------------------------------------------
def jax_precision(found: list[str], gpu: bool) -> dict:
    """{"matmul_precision": shown, "tf32": bool} from the precisions of a program's matmuls
    (hlo_precisions, deduplicated): TF32 on a GPU where XLA was left its default (or asked for
    tf32), unless NVIDIA_TF32_OVERRIDE=0 forbids it."""
    tf32 = gpu and bool(TF32 & set(found)) and not tf32_forbidden()
    named = "/".join(found)
    if tf32:
        shown = f"tf32 ({named} on a GPU: TF32 matmuls)"
    elif found and set(found) <= FULL_FLOAT32:
        shown = f"highest ({named}: full float32, TF32 off)"
    elif gpu and set(found) <= TF32 | FULL_FLOAT32:
        shown = f"highest ({named}, but NVIDIA_TF32_OVERRIDE=0: TF32 off)"
    elif not gpu and found:
        shown = f"{named} (XLA's choice for float32 on a CPU)"
    else:
        shown = f"{named or 'none found'} (neither full float32 nor TF32)"
    return {"matmul_precision": shown, "tf32": tf32}


def jax_backends_started(jax) -> bool:
    """Whether XLA has started a backend (and so read XLA_FLAGS and the CPU client's dispatch
    switch already); `jax`: the module, or None when it is not imported (nothing started)."""
    if jax is None:
        return False
    try:
        from jax._src import xla_bridge  # private API, hence the fallback (jax is imported)

        return xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):
        return True  # cannot tell: assume it is too late


def jax_matmul_precisions(jax, ran: tuple | None, grads_of, jit: bool) -> tuple[list[str], str]:
    """(the precision of every matmul, where it was read). `ran`: (function, argument shapes)
    of the mode's last call or session in this process: its compiled program is read (a cache
    hit: nothing compiles again), or with `jit` False (nojit runs op by op) its lowering
    (StableHLO). None: no run of the mode here, so `grads_of` (the mode's gradient function)
    is lowered at a 2 x 2 -> 2 -> 1 shape."""
    import numpy as np

    if ran is not None:
        fn, args = ran
        if not jit:
            return hlo_precisions(jax.jit(fn).lower(*args).as_text()), \
                "the lowered program of this process's last call"
        return hlo_precisions(fn.lower(*args).compile().as_text()), \
            "the compiled program of this process's last call"
    grads_of = grads_of if jit else jax.jit(grads_of)
    P = {k: jax.ShapeDtypeStruct(s, np.float32) for k, s in
         (("W1", (2, 2)), ("b1", (2,)), ("W2", (2, 1)), ("b2", (1,)))}
    X, T = jax.ShapeDtypeStruct((2, 2), np.float32), jax.ShapeDtypeStruct((2, 1), np.float32)
    return hlo_precisions(grads_of.lower(P, X, T).as_text()), \
        "a lowering at a tiny shape (no run of this mode in this process)"


def jax_cuda_plugin() -> bool:
    """Whether a JAX CUDA plugin is installed (else JAX never had a GPU to lose)."""
    import importlib.util

    return any(importlib.util.find_spec(m) for m in ("jax_cuda12_plugin", "jax_cuda13_plugin"))
