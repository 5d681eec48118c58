"""The registry of implementations, and the public API.

    import impls
    impls.names()                    # ['cupy', 'jax', 'numpy', 'torch'] (whatever files exist)
    impl = impls.get("torch")        # unknown name -> ValueError listing the known ones
    impl.available("cpu")            # (True, "") or (False, "why not")
    loss, grads = impl.loss_and_grads(params, X, T, loss="mse", dtype="float64", device="cpu")
    params2, history = impl.train(params, X, T, loss="mse", lr=0.5, epochs=20,
                                  batch_size=None, dtype="float64", device="cpu", seed=0)

Adding an implementation is adding one file to this folder that defines a
module-level `IMPL = Implementation(...)`. A file kept elsewhere (your own
implementation, benchmarked and checked beside ours without editing this
package) is registered the same way when its path is listed in the environment
variable BACKPROP_BENCH_IMPLS (several paths separated by os.pathsep); child
processes inherit it. Modules import their framework lazily, inside functions,
so listing and `available()` never crash on a missing library.

This registry is also where data parallelism is wired in: it imports dataparallel/, which
depends on the implementations and registers its engines in impls.base's hook. The
implementation files and impls.base never import it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
from pathlib import Path

from impls.base import Implementation, Session  # noqa: F401  (public types)
from impls.contract import ContractError

EXTRA_ENV = "BACKPROP_BENCH_IMPLS"
_REGISTRY: dict[str, dict[str, Implementation]] = {}  # cached per value of EXTRA_ENV


def _from_file(path: str) -> Implementation:
    file = Path(path)
    spec = importlib.util.spec_from_file_location(f"_bpb_extra_{file.stem}", file)
    if not file.is_file() or spec is None:
        raise ContractError(f"{EXTRA_ENV}: no such implementation file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    impl = getattr(module, "IMPL", None)
    if not isinstance(impl, Implementation):
        raise ContractError(f"{EXTRA_ENV}: {path} defines no IMPL = Implementation(...)")
    return impl


def _discover() -> dict[str, Implementation]:
    extra = os.environ.get(EXTRA_ENV, "")
    if extra not in _REGISTRY:
        found = {}
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            impl = getattr(module, "IMPL", None)  # contract, base, handwritten: none
            if isinstance(impl, Implementation):
                found[impl.name] = impl
        for path in filter(None, extra.split(os.pathsep)):
            impl = _from_file(path)
            found[impl.name] = impl
        _REGISTRY[extra] = dict(sorted(found.items()))
    return _REGISTRY[extra]


def names() -> list[str]:
    """Registered implementation names, sorted."""
    return list(_discover())


def get(name: str) -> Implementation:
    """The implementation called `name`; ValueError listing the known names otherwise."""
    registry = _discover()
    if name not in registry:
        raise ContractError(f"unknown implementation {name!r}; known: {', '.join(registry)}")
    return registry[name]


import dataparallel  # noqa: E402, F401  (registers the engines for workers > 1: see above)
