"""The registry of implementations, and the public API.

    import impls
    impls.names()                    # ['cupy', 'jax', 'numpy', 'torch'] (whatever files exist)
    impl = impls.get("torch")        # unknown name -> ValueError listing the known ones
    impl.available("cpu")            # (True, "") or (False, "why not")
    loss, grads = impl.loss_and_grads(params, X, T, loss="mse", dtype="float64", device="cpu")
    params2, history = impl.train(params, X, T, loss="mse", lr=0.5, epochs=20,
                                  batch_size=None, dtype="float64", device="cpu", seed=0)

Adding an implementation is adding one file to this folder that defines a
module-level `IMPL = Implementation(...)`. Modules import their framework
lazily, inside functions, so listing and `available()` never crash on a
missing library.
"""

from __future__ import annotations

import importlib
import pkgutil

from harness.contract import ContractError
from impls.base import Implementation, Session  # noqa: F401  (public types)

_REGISTRY: dict[str, Implementation] | None = None


def _discover() -> dict[str, Implementation]:
    global _REGISTRY
    if _REGISTRY is None:
        found = {}
        for info in pkgutil.iter_modules(__path__):
            if info.name.startswith("_") or info.name == "base":
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            impl = getattr(module, "IMPL", None)
            if isinstance(impl, Implementation):
                found[impl.name] = impl
        _REGISTRY = dict(sorted(found.items()))
    return _REGISTRY


def names() -> list[str]:
    """Registered implementation names, sorted."""
    return list(_discover())


def get(name: str) -> Implementation:
    """The implementation called `name`; ValueError listing the known names otherwise."""
    registry = _discover()
    if name not in registry:
        raise ContractError(f"unknown implementation {name!r}; known: {', '.join(registry)}")
    return registry[name]
