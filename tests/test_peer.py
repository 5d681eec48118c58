"""The peer row: one MLPClassifier.partial_fit step equals our NumPy step from the same init."""

from __future__ import annotations

import numpy as np
import pytest

import impls
from harness.measure.peer import PEER
from impls import contract
from tests.helpers import assert_agree, problem


def _pair(P, X, T, dtype, lr=0.3):
    ours = impls.get("numpy").session(P, X, T, loss="bce", lr=lr, dtype=dtype)
    peer = PEER.session(P, X, T, loss="bce", lr=lr, dtype=dtype)
    return ours, peer


def _close(peer: dict, ours: dict, dtype: str) -> None:
    for k in contract.PARAM_NAMES:
        assert peer[k].shape == ours[k].shape and peer[k].dtype == ours[k].dtype, k
    assert_agree(peer, ours, "trajectory", dtype, "scikit-learn's step")


@pytest.mark.parametrize("k", [1, 3])  # one output (binary) and several (multilabel)
def test_one_full_batch_step_equals_ours_float64(k):
    P, X, T = problem(n=11, f=5, h=7, k=k)
    ours, peer = _pair(P, X, T, "float64")
    for k in contract.PARAM_NAMES:  # the shared init went in exactly
        np.testing.assert_array_equal(peer.params()[k], ours.params()[k])
    loss_ours = ours.value(ours.step(ours.batches(None)[0]))
    loss_peer = peer.value(peer.step(peer.batches(None)[0]))
    assert loss_peer == pytest.approx(loss_ours, rel=1e-12)  # mean BCE, summed over outputs
    _close(peer.params(), ours.params(), "float64")


def test_minibatch_epoch_and_float32_follow_our_trajectory():
    P, X, T = problem(n=50, f=4, h=6, k=1, dtype="float32")
    ours, peer = _pair(P, X, T, "float32", lr=0.5)
    for epoch in range(3):  # batches of 16: the last one is short (50 = 3 x 16 + 2)
        order = contract.batch_order(len(X), 16, seed=0, epoch=epoch)
        for bo, bp in zip(ours.batches(order), peer.batches(order), strict=True):
            ours.step(bo)
            peer.step(bp)
    _close(peer.params(), ours.params(), "float32")


def test_peer_is_cpu_only_and_bce_only():
    P, X, T = problem(k=1)
    assert PEER.available("cpu") == (True, "")
    ok, why = PEER.available("gpu")
    assert not ok and "CPU" in why
    with pytest.raises(ValueError, match="bce"):
        PEER.session(P, X, T, loss="mse", lr=0.1, dtype="float64")
