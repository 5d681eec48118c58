"""`jax`: the same network, with gradients from `jax.value_and_grad`.

    import impls
    jax_impl = impls.get("jax")
    loss, grads = jax_impl.loss_and_grads(params, X, T, loss="bce", mode="jit")
    params2, history = jax_impl.train(params, X, T, epochs=20, mode="nojit")

Pure functions, as in JAX's `mnist_classifier_fromscratch` example: forward
and loss written with jax.numpy, gradients from `jax.value_and_grad`, and the
whole update (loss, gradients, step) as one function. Modes:

    jit        that function under one jax.jit, parameter buffers donated
    jit-async  the same, with JAX's asynchronous CPU dispatch left on (JAX's default)
    nojit      the same function called op by op (no jit)
    jit-tf32   jit with TF32 matmuls (GPU only; timed, not checked)

On the CPU every mode but jit-async asks for synchronous dispatch (JAX's default hands each
computation to another thread and returns before it is done). JAX reads that switch once,
when it creates its CPU client, so _dispatch sets it before anything here starts a backend,
and info() records what the client does, found by behaviour (readback.jax_cpu_dispatch).
Before issue 20 the switch came after the client: every earlier CPU run dispatched
asynchronously, jit and nojit included. In a process running several modes (a check) the
first decides; a timing cell's process runs one.

jax is imported lazily (see _jax), so listing implementations never needs it.
"""

from __future__ import annotations

import functools
import os
import sys

import numpy as np

from impls import readback
from impls.base import Implementation, SessionDefaults

MODES = ("jit", "jit-async", "nojit", "jit-tf32")


@functools.cache
def _jax():
    """Import jax with float64 enabled; without x64, JAX silently computes float64 in float32."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


# ---- forward and loss: jax.numpy only ----------------------------------------
def loss_fn(P, X, T, loss: str, activation: str, precision):
    """L (0-d array) for one batch. P: W1 (F,H), b1 (H,), W2 (H,K), b2 (K,); X (N,F); T (N,K)."""
    jax = _jax()
    jnp = jax.numpy

    N = X.shape[0]
    Z1 = jnp.matmul(X, P["W1"], precision=precision) + P["b1"]   # (N, H)
    if activation == "sigmoid":
        A1 = jax.nn.sigmoid(Z1)                                  # (N, H)
    elif activation == "tanh":
        A1 = jnp.tanh(Z1)
    else:
        A1 = jax.nn.relu(Z1)
    Z2 = jnp.matmul(A1, P["W2"], precision=precision) + P["b2"]  # (N, K)
    if loss == "mse":
        Y = jax.nn.sigmoid(Z2)                                   # (N, K)
        return 0.5 * jnp.sum((Y - T) ** 2) / N
    # bce from Z2: jax.nn.softplus is logaddexp(Z2, 0), stable for every Z2.
    return jnp.sum(jax.nn.softplus(Z2) - T * Z2) / N


# ---- gradients: jax.value_and_grad ----------------------------------------------
def grads(P, X, T, loss: str, activation: str, precision):
    """(L, grads dict in P's layout): the loss and its gradient, both from loss_fn."""
    return _jax().value_and_grad(loss_fn)(P, X, T, loss, activation, precision)


# ---- step: plain gradient descent, a new P (JAX arrays are immutable) -------------
def step(P, X, T, lr, loss: str, activation: str, precision):
    """One update p := p - lr * dL/dp; returns (new P, L before it). lr: 0-d, P's dtype."""
    L, G = grads(P, X, T, loss, activation, precision)
    return {k: P[k] - lr * G[k] for k in P}, L


# ---- plumbing ---------------------------------------------------------------------------
def available(device: str, mode: str) -> tuple[bool, str]:
    try:
        _jax()
    except ImportError as exc:
        return False, f"jax is not installed ({exc})"
    if device == "cpu":
        # Every jaxlib has a CPU backend. Not starting it here leaves set_threads its chance:
        # XLA reads XLA_FLAGS when the first backend starts.
        return (False, "TF32 is a GPU matmul mode") if mode == "jit-tf32" else (True, "")
    _dispatch(mode)  # starting the GPU backend starts the CPU client too
    try:
        _device(device)
    except RuntimeError as exc:
        why = str(exc)
        if "torch" in sys.modules and readback.jax_cuda_plugin():  # jax-ml/jax#18032, #19004:
            # the first cuDNN loaded in a process wins, and torch's may be older than JAX's
            why += ("; torch was imported first in this process and may have loaded a cuDNN "
                    "older than JAX's: check JAX in a process of its own, or before torch")
        return False, why
    return True, ""


def _device(device: str):
    jax = _jax()
    if device == "cpu":
        return jax.devices("cpu")[0]
    try:
        return jax.devices("gpu")[0]
    except RuntimeError as exc:  # "Unknown backend: 'gpu' requested, but no platforms ..."
        raise RuntimeError(f"JAX sees no GPU ({exc})") from None


def _precision(mode: str):
    # Passed to every matmul explicitly (it carries over to the backward matmuls), rather
    # than read from the jax_default_matmul_precision config at trace time. HIGHEST is full
    # float32; DEFAULT is what JAX does unasked on a GPU: TF32 on Ampere and later.
    from jax import lax

    return lax.Precision.DEFAULT if mode == "jit-tf32" else lax.Precision.HIGHEST


def _dispatch(mode: str) -> None:
    """Asynchronous CPU dispatch only for jit-async (see the module's docstring). JAX reads
    the switch when it creates its CPU client (jax._src.xla_bridge.make_cpu_client) and
    never after, so it is set only while no backend exists: by the first mode to run in
    this process. info() reads back what the client does."""
    if not _backends_started():
        _jax().config.update("jax_cpu_enable_async_dispatch", mode == "jit-async")


@functools.cache
def _functions(loss: str, activation: str, mode: str):
    """(grads, step) for one configuration, built once per process and reused by every call
    and session: a jitted function traces and compiles once per shape and dtype."""
    jax = _jax()
    fixed = dict(loss=loss, activation=activation, precision=_precision(mode))
    grads_of, step_of = functools.partial(grads, **fixed), functools.partial(step, **fixed)
    if mode == "nojit":
        return grads_of, step_of
    # donate_argnums=0: the old parameters' buffers are reused for the new ones, as an in-place
    # update would. The outputs match the donated inputs in shape and dtype, so XLA can use
    # every buffer and emits no "donated buffers were not usable" warning (CPU included).
    return jax.jit(grads_of), jax.jit(step_of, donate_argnums=0)


# mode -> (the function that ran, its arguments' shapes): what info() reads the matmul
# precision back from (the program XLA compiled), for the last call or session of a mode.
_RAN: dict = {}


def _ran(mode: str, fn, *args) -> None:
    jax = _jax()
    # With the sharding: the same compilation key as the call, so reading it back is a cache hit.
    _RAN[mode] = (fn, jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype,
                                                                  sharding=a.sharding), args))


def loss_and_grads(P, X, T, *, loss, dtype, device, mode, activation):
    jax = _jax()
    _dispatch(mode)  # before _device: creating the CPU client reads the switch
    dev = _device(device)
    P, X, T = jax.device_put((P, X, T), dev)
    grads_of, _ = _functions(loss, activation, mode)
    _ran(mode, grads_of, P, X, T)
    L, G = grads_of(P, X, T)
    return float(L), {k: np.array(v, copy=True) for k, v in G.items()}


class JaxSession(SessionDefaults):
    def __init__(self, P, X, T, *, loss, lr, dtype, device, mode, activation):
        self.jax = _jax()
        _dispatch(mode)  # before _device: creating the CPU client reads the switch
        self.dev = _device(device)
        self.P, self.X, self.T = self.jax.device_put((P, X, T), self.dev)
        # An explicit-dtype device scalar: a Python float would be fine too (weakly typed),
        # but a traced argument means one compilation for every learning rate.
        self.lr = self.jax.device_put(np.asarray(lr, dtype=dtype), self.dev)
        self._step = _functions(loss, activation, mode)[1]
        _ran(mode, self._step, self.P, self.X, self.T, self.lr)
        self._last = None

    def gather(self, idx):
        i = self.jax.device_put(idx, self.dev)  # index on the device
        return self.X[i], self.T[i]

    def step(self, batch):
        Xb, Tb = batch
        self.P, self._last = self._step(self.P, Xb, Tb, self.lr)
        return self._last

    def sync(self):
        # Block on everything a step produces: the new parameters and the last loss.
        self.jax.block_until_ready((self.P, self._last))

    def params(self):
        # np.asarray of a CPU jax array is a view of its buffer, which donation reuses: copy.
        return {k: np.array(v, copy=True) for k, v in self.P.items()}

    def peak_memory(self):
        """Peak bytes XLA's allocator had in use on this session's device
        (memory_stats()["peak_bytes_in_use"]): since the process started, as JAX has no
        reset, so it includes earlier work in the same process (a benchmark cell is a
        fresh process). None where the backend keeps no statistics (the CPU)."""
        try:
            stats = self.dev.memory_stats()
        except Exception:  # backends without statistics may raise rather than return None
            return None
        peak = (stats or {}).get("peak_bytes_in_use")
        return int(peak) if peak is not None else None


def _backends_started() -> bool:
    """Whether XLA has read XLA_FLAGS already (it does when jax starts its first backend)."""
    return readback.jax_backends_started(sys.modules.get("jax"))


def set_threads(n: int) -> None:
    # Honest limits: XLA has no flag for an exact CPU thread count; its pool is sized from
    # the CPUs this process may run on, so the real lever is the CPU affinity the harness
    # sets. What can be done here is the one-thread case: turn off Eigen's multi-threaded
    # matmuls (intra_op_parallelism_threads is TensorFlow's spelling; XLA ignores it). For
    # n > 1 that flag would force one thread, so nothing is set. XLA reads the flags once,
    # when the first backend starts; later they would only mislead the record.
    if n == 1 and not _backends_started():
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            extra = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()


def matmul_precisions(mode: str) -> tuple[list[str], str]:
    """(the precision of every matmul, where it was read): the program of this mode's last
    call or session in this process, else its gradient function at a tiny shape."""
    jit = mode != "nojit"  # nojit runs op by op: its function is lowered, not compiled
    return readback.jax_matmul_precisions(_jax(), _RAN.get(mode),
                                          _functions("mse", "sigmoid", mode)[0], jit)


def info(device: str, mode: str) -> dict:
    """Versions, and what the run really did, read back: each matmul's precision in the
    program XLA ran, TF32 (a GPU with lax.Precision.DEFAULT, unless NVIDIA_TF32_OVERRIDE=0
    forbids it), and on the CPU whether dispatch was synchronous (readback.jax_cpu_dispatch)."""
    jax = _jax()
    import jaxlib

    dev = _device(device)
    precisions, source = matmul_precisions(mode)
    found = sorted(set(precisions))
    out = {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": dev.platform,
        "device": dev.device_kind,
        **readback.jax_precision(found, dev.platform != "cpu"),
        "matmul_precisions": found,
        "matmul_precisions_from": source,
        "tf32_override": readback.tf32_override(),
        "x64": bool(jax.config.jax_enable_x64),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        # The switch as it stands now; what the CPU client does is cpu_dispatch.
        "cpu_async_dispatch_flag": bool(jax.config.read("jax_cpu_enable_async_dispatch")),
    }
    if device == "cpu":
        found = readback.jax_cpu_dispatch(jax)
        out.update(cpu_dispatch=found["dispatch"], cpu_dispatch_evidence=found["evidence"])
    return out


IMPL = Implementation(
    name="jax",
    modes=MODES,
    description="JAX grad",
    _available=available,
    _loss_and_grads=loss_and_grads,
    _session=JaxSession,
    set_threads=set_threads,
    info=info,
    mode_notes={
        "jit": "the whole update in one jax.jit, parameter buffers donated",
        "nojit": "the same functions op by op, no jit",
        "jit-async": "jit with JAX's asynchronous CPU dispatch (its default); jit and nojit ask "
                     "for synchronous dispatch, set before JAX's CPU client exists and read "
                     "back into info()'s cpu_dispatch",
        "jit-tf32": "jit with TF32 matmuls (GPU only; timing only)",
    },
    timing_only=("jit-tf32",),
)
