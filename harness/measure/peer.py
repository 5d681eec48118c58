"""The peer row: scikit-learn's MLPClassifier, the field's standard hand-written NumPy backprop.

    from harness.measure.peer import PEER, resolve
    s = PEER.session(params, X, T, loss="bce", lr=0.1, dtype="float32")
    loss = s.step(s.batches(None)[0])      # one MLPClassifier.partial_fit call

MLPClassifier is configured to do exactly our update: logistic hidden units,
plain SGD (momentum 0, no Nesterov), no L2 (alpha 0), a constant rate, one
batch per `partial_fit` call, no shuffling. Its binary/multilabel log-loss is
the batch-mean BCE summed over outputs, our `bce`, and its output gradient is
(Y - T) / N like ours; tests/test_peer.py proves one step equal to our NumPy
step from the same init. It has no `mse`, so for mse the row is unavailable.

Starting from the shared init: the first `partial_fit` builds MLPClassifier's
state (label binarizer, optimizer) from its own random weights; we then copy
our weights *into* its arrays in place. With momentum 0 the optimizer keeps
no state that outlives a step, so that first call leaves no trace.

What is timed is a `partial_fit` call, input validation included: that is what
a user of the library pays per step. It lives in the harness, not in impls/,
because it is a reference row for timing, not one of our implementations: the
correctness checker does not cover it (its own test does).
"""

from __future__ import annotations

import numpy as np

import impls
from impls.base import Implementation, SessionDefaults


def available(device: str, mode: str) -> tuple[bool, str]:
    if device != "cpu":
        return False, "scikit-learn runs on the CPU only"
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        return False, f"scikit-learn is not installed ({exc})"
    return True, ""


def _labels(T: np.ndarray) -> np.ndarray:
    """MLPClassifier wants class labels: (N,) for one output, an (N, K) indicator otherwise."""
    y = (T > 0.5).astype(np.int64)
    return y[:, 0] if y.shape[1] == 1 else y


class PeerSession(SessionDefaults):
    def __init__(self, P, X, T, *, loss, lr, dtype, device, mode, activation):
        from sklearn.neural_network import MLPClassifier

        if loss != "bce":
            raise ValueError("MLPClassifier minimises log-loss (our bce) only; no mse peer row")
        if activation != "sigmoid":
            raise ValueError("the scikit-learn peer is configured for sigmoid hidden units only")
        self.X, self.T = X, _labels(T)  # T holds class labels here
        H = P["W1"].shape[1]
        self.mlp = MLPClassifier(
            hidden_layer_sizes=(H,), activation="logistic", solver="sgd", alpha=0.0,
            learning_rate="constant", learning_rate_init=lr, momentum=0.0,
            nesterovs_momentum=False, batch_size=len(X), shuffle=False, max_iter=1,
            early_stopping=False, tol=0.0, n_iter_no_change=1 << 30, random_state=0,
        )
        classes = np.array([0, 1]) if self.T.ndim == 1 else np.arange(self.T.shape[1])
        self.mlp.partial_fit(X, self.T, classes=classes)  # builds state from random weights ...
        self._load(P)  # ... which we overwrite in place with the shared init

    def _load(self, P):
        m = self.mlp
        for dst, src in ((m.coefs_[0], P["W1"]), (m.intercepts_[0], P["b1"]),
                         (m.coefs_[1], P["W2"]), (m.intercepts_[1], P["b2"])):
            if dst.shape != src.shape or dst.dtype != src.dtype:
                raise ValueError(f"MLPClassifier holds {dst.shape} {dst.dtype}, "
                                 f"shared init is {src.shape} {src.dtype}")
            dst[...] = src

    def step(self, batch):
        Xb, yb = batch
        self.mlp.batch_size = len(Xb)  # one SGD step per call, also for a short last batch
        self.mlp.partial_fit(Xb, yb)
        return self.mlp.loss_  # the batch loss before the update, as our step returns

    def params(self):
        m = self.mlp
        return {"W1": m.coefs_[0].copy(), "b1": m.intercepts_[0].copy(),
                "W2": m.coefs_[1].copy(), "b2": m.intercepts_[1].copy()}


def loss_and_grads(P, X, T, **kw):
    raise NotImplementedError("the peer row is timed only; tests/test_peer.py checks its step")


def set_threads(n: int) -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the BLAS environment variables set before import still apply
        return
    threadpool_limits(n)


def info(device: str, mode: str) -> dict:
    from importlib.metadata import version

    return {"scikit-learn": version("scikit-learn"),
            "matmul_precision": "float32/float64 as stored (NumPy BLAS)"}


PEER = Implementation(
    name="sklearn",
    modes=("default",),
    description="scikit-learn MLPClassifier.partial_fit (the field's hand-written NumPy backprop)",
    _available=available,
    _loss_and_grads=loss_and_grads,
    _session=PeerSession,
    set_threads=set_threads,
    info=info,
    mode_notes={"default": "plain SGD, momentum 0, alpha 0, one batch per partial_fit"},
)


def resolve(name: str) -> Implementation:
    """The implementation a benchmark cell runs: the registry's, or this peer row."""
    return PEER if name == PEER.name else impls.get(name)


def runnable() -> dict[str, tuple[str, ...]]:
    """Every name a benchmark can plan, with its modes: the registry plus the peer row."""
    return {**{n: impls.get(n).modes for n in impls.names()}, PEER.name: PEER.modes}
