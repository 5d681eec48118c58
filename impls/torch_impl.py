"""`torch`: the same network, with gradients from PyTorch autograd.

    import impls
    torch_impl = impls.get("torch")
    loss, grads = torch_impl.loss_and_grads(params, X, T, loss="bce", mode="eager")
    params2, history = torch_impl.train(params, X, T, epochs=20, mode="compile")

Nothing here differentiates by hand: the forward pass is written with torch
ops and `torch.autograd.grad` supplies every gradient. Modes:

    eager            op by op, as most PyTorch code runs
    compile          torch.compile (inductor, default mode) of the whole step
    reduce-overhead  torch.compile with CUDA graphs (GPU only)
    eager-tf32       eager with TF32 matmuls (GPU only; timed, not checked)

torch is imported lazily, inside functions, so listing implementations never
needs it.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

from impls import readback
from impls.base import Implementation, SessionDefaults
from impls.contract import PARAM_NAMES as NAMES

MODES = ("eager", "compile", "reduce-overhead", "eager-tf32")
COMPILED = ("compile", "reduce-overhead")
GPU_ONLY = {"reduce-overhead": "CUDA graphs need a GPU", "eager-tf32": "TF32 is a GPU matmul mode"}


# ---- forward and loss: torch ops only; autograd records them ---------------
def loss_fn(P, X, T, loss: str, activation: str):
    """L (0-d tensor) for one batch. P: W1 (F,H), b1 (H,), W2 (H,K), b2 (K,); X (N,F); T (N,K)."""
    import torch
    import torch.nn.functional as F

    N = X.shape[0]
    Z1 = X @ P["W1"] + P["b1"]          # (N, H)
    if activation == "sigmoid":
        A1 = torch.sigmoid(Z1)          # (N, H)
    elif activation == "tanh":
        A1 = torch.tanh(Z1)
    else:
        A1 = torch.relu(Z1)
    Z2 = A1 @ P["W2"] + P["b2"]         # (N, K)
    if loss == "mse":
        Y = torch.sigmoid(Z2)           # (N, K)
        return 0.5 * ((Y - T) ** 2).sum() / N
    # bce from Z2: softplus(Z2) - T Z2, with softplus(Z2) = -logsigmoid(-Z2). Not F.softplus:
    # it switches to the identity above Z2 = 20, which is off by ~2e-9 in float64.
    return (-F.logsigmoid(-Z2) - T * Z2).sum() / N


# ---- gradients: autograd -----------------------------------------------------
def grads(P, X, T, loss: str, activation: str):
    """(L detached, grads tuple in NAMES order); the params in P are leaf tensors."""
    import torch

    L = loss_fn(P, X, T, loss, activation)
    # Taken before autograd.grad, where torch.compile breaks the graph: a non-leaf L alive
    # across that break makes Dynamo read L.grad, which warns.
    value = L.detach()
    return value, torch.autograd.grad(L, [P[k] for k in NAMES])


# ---- step: plain gradient descent, in place ----------------------------------
def step(P, X, T, lr: float, loss: str, activation: str):
    """One update p := p - lr * dL/dp; returns the loss before it, still on the device."""
    import torch

    value, G = grads(P, X, T, loss, activation)
    with torch.no_grad():
        # One fused update over all four tensors, as torch.optim.SGD does by default. The
        # grads come from autograd.grad, so no .grad accumulates and nothing needs zeroing.
        torch._foreach_add_([P[k] for k in NAMES], list(G), alpha=-lr)
    return value


# ---- plumbing ---------------------------------------------------------------------------
def available(device: str, mode: str) -> tuple[bool, str]:
    try:
        import torch
    except ImportError as exc:
        return False, f"torch is not installed ({exc})"
    if device == "cpu":
        if mode in GPU_ONLY:
            return False, GPU_ONLY[mode]
        compilers = (os.environ.get("CXX", "g++"), "c++")
        if mode == "compile" and not any(shutil.which(c) for c in compilers):
            return False, "torch.compile on the CPU needs a C++ compiler (set CXX or install g++)"
        return True, ""
    if not torch.cuda.is_available():
        build = "this torch build is CPU-only" if torch.version.cuda is None else "no CUDA device"
        return False, f"torch sees no CUDA GPU ({build}, torch {torch.__version__})"
    if mode in COMPILED:
        from torch.utils._triton import has_triton

        if not has_triton():
            return False, "torch.compile on a GPU needs triton, which is not installed"
        if missing := readback.c_toolchain():
            # Found here, not as a failed first call after tens of seconds of compiling.
            return False, f"torch.compile on a GPU: Triton cannot build its launchers ({missing})"
    return True, ""


def _setup(device: str, mode: str):
    """The torch device for a contract device, with the matmul precision the mode asks for."""
    import torch

    if device == "cpu":
        # "highest" is torch's default; set it anyway, since "high" lets some CPUs use bf16.
        torch.set_float32_matmul_precision("highest")
        return torch.device("cpu")
    # The long-standing switches, both set so they agree. Not the newer
    # torch.backends.cuda.matmul.fp32_precision: torch raises when the two APIs are mixed,
    # and inductor still reads torch.get_float32_matmul_precision().
    tf32 = mode == "eager-tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32  # False: float32 matmuls in full float32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    return torch.device("cuda")


def _tensor(a: np.ndarray, dev, requires_grad: bool = False):
    import torch

    # torch.tensor always copies (dtype kept), so no tensor shares memory with the caller.
    return torch.tensor(a, device=dev, requires_grad=requires_grad)


_COMPILED: dict = {}
_BUDGET: dict = {}  # "threads": what set_threads was given (the run's thread budget)


def _compiled(fn, mode: str):
    """torch.compile(fn), built once per (fn, mode) and shared by every call and session."""
    import torch

    if (fn, mode) not in _COMPILED:
        import torch._inductor.config  # its compile pool is bounded before its first compile

        readback.bound_compile_threads(torch._inductor.config, _BUDGET.get("threads"))
        if mode == "reduce-overhead":
            readback.CudaGraphSkips.attached()  # hears inductor's reasons from the first compile
        # One code object serves every loss, activation, dtype, batch shape and mode, and
        # each new one is a recompile. Past the default limit (8 per function) Dynamo would
        # quietly run eager, and "compile" numbers would be eager's: allow many more (a
        # checking process needs a few dozen), and fail loudly past that.
        config = torch._dynamo.config
        for name, old_name, at_least in (("recompile_limit", "cache_size_limit", 256),
                                         ("accumulated_recompile_limit",
                                          "accumulated_cache_size_limit", 4096)):
            name = name if hasattr(config, name) else old_name  # the old names: torch < 2.6
            setattr(config, name, max(getattr(config, name), at_least))
        if hasattr(config, "fail_on_recompile_limit_hit"):
            config.fail_on_recompile_limit_hit = True
        kind = "reduce-overhead" if mode == "reduce-overhead" else "default"
        _COMPILED[fn, mode] = torch.compile(fn, mode=kind, dynamic=False)
    return _COMPILED[fn, mode]


def loss_and_grads(P, X, T, *, loss, dtype, device, mode, activation):
    import torch

    dev = _setup(device, mode)
    Pt = {k: _tensor(v, dev, requires_grad=True) for k, v in P.items()}
    fn = _compiled(grads, mode) if mode in COMPILED else grads
    if mode == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()  # a new iteration for the CUDA graphs
    value, G = fn(Pt, _tensor(X, dev), _tensor(T, dev), loss, activation)
    G = dict(zip(NAMES, G, strict=True))
    return value.item(), {k: g.detach().cpu().numpy().copy() for k, g in G.items()}


class TorchSession(SessionDefaults):
    def __init__(self, P, X, T, *, loss, lr, dtype, device, mode, activation):
        import torch

        self.torch, self.mode = torch, mode
        self.dev = _setup(device, mode)
        if self.dev.type == "cuda":
            # peak_memory() reports the high-water mark from here on: this session's tensors
            # and every step's temporaries (the counter is per process, so a later session
            # in the same process resets it again).
            torch.cuda.reset_peak_memory_stats(self.dev)
        # Leaf tensors, updated in place by every step.
        self.P = {k: _tensor(v, self.dev, requires_grad=True) for k, v in P.items()}
        self.X, self.T = _tensor(X, self.dev), _tensor(T, self.dev)
        self.loss, self.activation, self.lr = loss, activation, lr
        if mode == "reduce-overhead":
            # Parameters keep their address, so CUDA graphs may update them in place
            # (otherwise inductor skips graphs that mutate their inputs).
            for p in self.P.values():
                torch._dynamo.mark_static_address(p)
        self._step = _compiled(step, mode) if mode in COMPILED else step

    def gather(self, idx):
        i = self.torch.as_tensor(idx, device=self.dev)  # index on the device
        return self.X[i], self.T[i]

    def step(self, batch):
        Xb, Tb = batch
        if self.mode == "reduce-overhead":
            # A CUDA-graph output is overwritten by the next replay; the harness keeps an
            # epoch's losses, so keep a copy (an asynchronous device copy, no sync).
            self.torch.compiler.cudagraph_mark_step_begin()
            return self._step(self.P, Xb, Tb, self.lr, self.loss, self.activation).clone()
        return self._step(self.P, Xb, Tb, self.lr, self.loss, self.activation)

    def sync(self):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def params(self):
        # .numpy() of a CPU tensor shares its memory, and the parameters change in place.
        return {k: p.detach().cpu().numpy().copy() for k, p in self.P.items()}

    def peak_memory(self):
        """Peak bytes torch's CUDA caching allocator handed out since this session began
        (torch.cuda.max_memory_allocated: tensors, not the allocator's cached reserve or
        the CUDA context); None on the CPU, where torch keeps no such counter."""
        if self.dev.type != "cuda":
            return None
        return int(self.torch.cuda.max_memory_allocated(self.dev))


def set_threads(n: int) -> None:
    import torch

    _BUDGET["threads"] = n  # also bounds inductor's compile workers (_compiled)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # one op at a time, as NumPy does
    except RuntimeError:
        pass  # only settable once, before any parallel work; then it stays as it was


def info(device: str, mode: str) -> dict:
    """Versions, and what the run really did, read back from torch after it took effect:
    TF32 switches and precision (and NVIDIA_TF32_OVERRIDE), threads; for compiled modes the
    compile pool, the compile cache (a "cold" first call needs a fresh one) and CUDA-graph
    skips."""
    import torch

    cuda = device == "gpu" and torch.cuda.is_available()
    out = {"torch": torch.__version__, **readback.torch_precision(torch, cuda),
           "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}
    if cuda:
        out.update(cuda=torch.version.cuda, device=torch.cuda.get_device_name(0))
    else:
        out["device"] = "cpu"
    if mode in COMPILED:
        import torch._inductor.config
        from torch._dynamo.utils import counters

        out.update(readback.torch_compile(torch._inductor.config, counters, mode,
                                          _BUDGET.get("threads")))
    return out


IMPL = Implementation(
    name="torch",
    modes=MODES,
    description="PyTorch autograd",
    _available=available,
    _loss_and_grads=loss_and_grads,
    _session=TorchSession,
    set_threads=set_threads,
    info=info,
    mode_notes={
        "eager": "op by op, full float32 matmuls",
        "compile": "torch.compile(mode='default', dynamic=False) of the whole step; "
                   "the graph breaks at autograd.grad (forward+backward, then the update)",
        "reduce-overhead": "torch.compile(mode='reduce-overhead'): CUDA graphs (GPU only)",
        "eager-tf32": "eager with TF32 matmuls (GPU only; timing only)",
    },
    timing_only=("eager-tf32",),
)
