"""What an implementation provides, and the one training loop they all share.

An implementation file supplies three things and wraps them in `Implementation`:

    available(device, mode) -> (ok, reason)
    loss_and_grads(params, X, T, *, loss, dtype, device, mode, activation) -> (float, grads)
    a Session class: SessionClass(params, X, T, *, loss, lr, dtype, device, mode, activation)

`Implementation` validates every input against the contract (one clear
ValueError), copies inputs so they are never modified, and runs the shared
epoch loop, so the only thing that differs between files is the framework.
`SessionDefaults` holds what most sessions share (full-batch and gathered
batches, a float loss, no device to wait for, no device-memory counter).

workers > 1 (data parallelism) goes through a hook: the engines (dataparallel/) depend on the
implementations and register themselves here (`register_data_parallel`); nothing in impls/
imports them but the registry (impls/__init__.py), which loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from impls import contract
from impls.contract import ContractError


class Unavailable(RuntimeError):
    """Raised when an implementation is asked to run where it cannot (missing library or device)."""


class DataParallel(Protocol):
    """What the data-parallel engines offer the implementations (dataparallel/ registers it).
    Called with inputs Implementation has already validated."""

    def available(self, name: str, device: str, mode: str, workers: int) -> tuple[bool, str]: ...

    def train(self, name: str, params, X, T, **options): ...

    def loss_and_grads(self, name: str, params, X, T, **options): ...


_DATA_PARALLEL: list[DataParallel] = []


def register_data_parallel(engines: DataParallel) -> None:
    """The hook: the engines that run `workers` > 1 (the last registered)."""
    _DATA_PARALLEL[:] = [engines]


def _data_parallel() -> DataParallel:
    if not _DATA_PARALLEL:
        raise Unavailable("no data-parallel engines are registered (import dataparallel)")
    return _DATA_PARALLEL[0]


class Session(Protocol):
    """Training state of one implementation on one device (what the timing harness drives).

    The harness times `step` in blocks and calls `sync` before reading the
    clock; it never touches the framework itself.
    """

    def batches(self, order: list[np.ndarray] | None) -> list[Any]:
        """Device-resident (X, T) batches for one epoch; `order` from contract.batch_order."""

    def step(self, batch: Any) -> Any:
        """One gradient-descent update on `batch`; returns that batch's loss *before* the
        update, still on the device (no hidden sync)."""

    def sync(self) -> None:
        """Block until all queued device work is done."""

    def params(self) -> dict[str, np.ndarray]:
        """Current parameters as fresh NumPy arrays in the contract's layout."""

    def value(self, loss: Any) -> float:
        """A loss returned by `step`, as a Python float (syncs)."""

    def peak_memory(self) -> int | None:
        """The framework's own device-memory high-water mark in bytes for this session
        (torch: max allocated since the session began; jax: the device's peak_bytes_in_use;
        cupy: bytes its memory pool holds), or None where it keeps no counter (the CPU):
        the memory pass then measures host RSS instead."""


class SessionDefaults:
    """The parts of a Session most implementations share; a session overrides the rest.

    A subclass sets `self.X` and `self.T` (the whole data set, on its device) and
    defines `step` and `params`; `gather` puts one minibatch on the device.
    """

    X: Any
    T: Any

    def batches(self, order: list[np.ndarray] | None) -> list[Any]:
        if order is None:
            return [(self.X, self.T)]
        return [self.gather(idx) for idx in order]

    def gather(self, idx: np.ndarray) -> tuple[Any, Any]:
        """Rows `idx` (a NumPy index array) of X and T; device sessions index on the device."""
        return self.X[idx], self.T[idx]

    def sync(self) -> None:
        pass  # synchronous frameworks: nothing is queued

    def value(self, loss: Any) -> float:
        return float(loss)  # a 0-d array or tensor; on a device this copies to the host

    def peak_memory(self) -> int | None:
        return None


@dataclass(frozen=True)
class Implementation:
    name: str  # registry name: "numpy", "torch", ...
    modes: tuple[str, ...]  # execution modes; the first is the default
    description: str  # one line for tables
    _available: Callable[[str, str], tuple[bool, str]]
    _loss_and_grads: Callable[..., tuple[float, dict]]
    _session: Callable[..., Session]  # a Session class (or factory), called with keywords
    set_threads: Callable[[int], None] = lambda n: None  # called in a fresh process before work
    info: Callable[[str, str], dict] = lambda device, mode: {}  # versions, matmul precision, ...
    mode_notes: dict[str, str] = field(default_factory=dict)  # mode -> what it means
    timing_only: tuple[str, ...] = ()  # modes timed but not correctness-checked (TF32)

    def _mode(self, mode: str | None) -> str:
        if mode is None:
            return self.modes[0]
        if mode not in self.modes:
            raise ContractError(
                f"unknown mode {mode!r} for {self.name}; expected one of {', '.join(self.modes)}")
        return mode

    def available(self, device: str = "cpu", mode: str | None = None,
                  workers: int = 1) -> tuple[bool, str]:
        """(True, "") when this implementation can run on `device`, else (False, reason).

        Never raises, whatever it is given: an unknown device or mode is a reason too. With
        workers > 1, also whether its data-parallel engine can run here (dataparallel/).
        """
        try:
            contract.check_device(device)
            mode = self._mode(mode)
            workers = contract.check_workers(workers)
        except ContractError as exc:
            return False, str(exc)
        return self._can_run(device, mode, workers)

    def _can_run(self, device: str, mode: str, workers: int) -> tuple[bool, str]:
        """available() for inputs already validated."""
        try:
            ok, why = self._available(device, mode)
            if ok and workers > 1:
                ok, why = _data_parallel().available(self.name, device, mode, workers)
            return ok, why
        except Exception as exc:  # a broken install is a reason, never a crash
            return False, f"{type(exc).__name__}: {exc}"

    def _require(self, device: str, mode: str, workers: int = 1) -> None:
        ok, why = self._can_run(device, mode, workers)
        if not ok:
            at = f" with workers={workers}" if workers > 1 else ""
            raise Unavailable(f"{self.name} ({mode}){at} is unavailable on {device}: {why}")

    def loss_and_grads(self, params, X, T, loss: str = "mse", dtype: str = "float64",
                       device: str = "cpu", mode: str | None = None,
                       activation: str = "sigmoid",
                       workers: int = 1) -> tuple[float, dict[str, np.ndarray]]:
        """Loss (float) and gradients (NumPy, layout of `params`, in `dtype`) at `params`.

        params: W1 (F, H), b1 (H,), W2 (H, K), b2 (K,); X (N, F); T (N, K) in [0, 1].
        workers > 1: the batch split over that many worker processes (dataparallel/).
        """
        contract.check_call(params, X, T, loss, dtype, device, activation)
        mode = self._mode(mode)
        workers = contract.check_workers(workers, len(X))
        self._require(device, mode, workers)
        if workers > 1:
            return _data_parallel().loss_and_grads(self.name, params, X, T, loss=loss,
                                                   dtype=dtype, device=device, mode=mode,
                                                   activation=activation, workers=workers)
        P = contract.cast(params, dtype)
        value, grads = self._loss_and_grads(P, np.asarray(X, dtype=dtype), np.asarray(T, dtype=dtype),
                                            loss=loss, dtype=dtype, device=device, mode=mode,
                                            activation=activation)
        return float(value), {k: np.asarray(grads[k], dtype=dtype) for k in contract.PARAM_NAMES}

    def session(self, params, X, T, loss: str = "mse", lr: float = 0.5, dtype: str = "float32",
                device: str = "cpu", mode: str | None = None, activation: str = "sigmoid") -> Session:
        """Set up training state on the device (includes the host-to-device transfer)."""
        contract.check_call(params, X, T, loss, dtype, device, activation)
        lr = contract.check_train(lr, 0, None, 0, dtype)[0]
        mode = self._mode(mode)
        self._require(device, mode)
        return self._session(contract.cast(params, dtype), np.array(X, dtype=dtype),
                             np.array(T, dtype=dtype), loss=loss, lr=lr, dtype=dtype,
                             device=device, mode=mode, activation=activation)

    def train(self, params, X, T, loss: str = "mse", lr: float = 0.5, epochs: int = 20,
              batch_size: int | None = None, dtype: str = "float64", device: str = "cpu",
              seed: int = 0, mode: str | None = None, activation: str = "sigmoid",
              workers: int = 1):
        """Plain gradient descent for `epochs` epochs; returns (params, history).

        history[e] is the loss before epoch e's updates, averaged over its batches
        (each batch's loss is taken just before that batch's update). A diverging run
        does not raise: its history holds NaN or inf and `history.diverged` is True
        (impls/contract.py, "Divergence"). workers > 1: W worker processes, each on a
        contiguous shard of every batch, launched by the engine's own launcher
        (dataparallel/); the same result within the contract's tolerances.
        """
        lr, epochs, batch_size, seed = contract.check_train(lr, epochs, batch_size, seed, dtype)
        contract.check_call(params, X, T, loss, dtype, device, activation)
        mode = self._mode(mode)
        workers = contract.check_workers(workers, len(X), batch_size)
        if workers > 1:
            self._require(device, mode, workers)
            return _data_parallel().train(self.name, params, X, T, loss=loss, lr=lr,
                                          epochs=epochs, batch_size=batch_size, dtype=dtype,
                                          device=device, seed=seed, mode=mode,
                                          activation=activation, workers=workers)
        self._require(device, mode)
        s = self._session(contract.cast(params, dtype), np.array(X, dtype=dtype),
                          np.array(T, dtype=dtype), loss=loss, lr=lr, dtype=dtype,
                          device=device, mode=mode, activation=activation)
        history = contract.History()
        for epoch in range(epochs):
            order = contract.batch_order(len(X), batch_size, seed, epoch)
            losses = [s.step(batch) for batch in s.batches(order)]
            history.append(float(np.mean([s.value(v) for v in losses])))
        s.sync()
        return s.params(), history
