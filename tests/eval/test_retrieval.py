import numpy as np
import pytest
import torch

from cardid.eval.retrieval import (
    CollapseError,
    check_collapse,
    collapse_diagnostics,
    loo_nn_accuracy,
    retrieval_metrics,
)
from cardid.search import topk_cosine


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_chunked_topk_equals_bruteforce():
    rng = np.random.default_rng(0)
    q, g = (
        unit(rng.normal(size=(130, 16))).astype(np.float32),
        unit(rng.normal(size=(70, 16))).astype(np.float32),
    )
    s, i = topk_cosine(q, g, 5, chunk=17)
    full = q @ g.T
    np.testing.assert_array_equal(i, np.argsort(-full, 1)[:, :5])
    np.testing.assert_allclose(s, np.sort(full, 1)[:, ::-1][:, :5], rtol=1e-5)


def test_recall_and_map_on_a_handmade_case():
    g = np.eye(4, dtype=np.float32)
    g_labels = [0, 1, 2, 2]  # class 2 has two gallery items (reprints)
    q = unit(np.array([[1, 0.1, 0, 0], [0.2, 1, 0, 0], [0, 0, 0.4, 1], [0.9, 0, 1, 0]], np.float32))
    m = retrieval_metrics(q, [0, 1, 2, 0], g, g_labels, ks=(1, 2))
    # q0 ✓ at 1, q1 ✓ at 1, q2 ✓ at 1 and 2 (R=2 → AP 1), q3: rank 1 is class 2, rank 2 class 0 → R@1 ✗, R@2 ✓
    assert m["recall@1"] == 0.75 and m["recall@2"] == 1.0
    assert m["map@r"] == pytest.approx((1 + 1 + 1 + 0) / 4)


def test_k_larger_than_the_gallery():
    g = np.eye(3, dtype=np.float32)
    m = retrieval_metrics(g, [0, 1, 2], g, [0, 1, 2], ks=(1, 5))
    assert m["recall@1"] == m["recall@5"] == m["map@r"] == 1.0


def test_leave_one_out_excludes_self():
    e = unit(np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32))
    assert loo_nn_accuracy(e, [0, 0, 1, 1]) == 1.0
    assert loo_nn_accuracy(e, [0, 1, 0, 1]) == 0.0


def test_collapse_is_caught_and_healthy_embeddings_pass():
    rng = np.random.default_rng(0)
    collapsed = unit(np.ones((50, 32)) + 0.01 * rng.normal(size=(50, 32)))
    d = collapse_diagnostics(collapsed)
    assert d["mean_offdiag_cos"] > 0.99
    with pytest.raises(CollapseError, match="mean cosine 1.000"):
        check_collapse(d)
    healthy = collapse_diagnostics(unit(rng.normal(size=(50, 32))))
    assert abs(healthy["mean_offdiag_cos"]) < 0.1 and healthy["effective_rank"] > 20
    check_collapse(healthy)
    # O(N·D) mean off-diagonal cosine equals the N² definition
    e = torch.as_tensor(unit(rng.normal(size=(20, 8)) + 1))
    sim = e @ e.T
    assert collapse_diagnostics(e.numpy())["mean_offdiag_cos"] == pytest.approx(
        float((sim.sum() - sim.diag().sum()) / (20 * 19)), abs=1e-9
    )


def test_mean_margin_on_a_handmade_case():
    from cardid.eval.retrieval import mean_margin

    g = np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32)  # cards 0, 1, 1
    q = np.array([[1, 0], [0, 1]], np.float32)
    # query 0 (card 0): 1.0 to its scan, best other 0.6 → 0.4; query 1 (card 1): 1.0 vs 0.0 → 1.0
    assert mean_margin(q, [0, 1], g, [0, 1, 1]) == pytest.approx(0.7)
    assert mean_margin(q, [0, 1], g, [0, 1, 1], chunk=1) == pytest.approx(0.7)
    # a query whose card has no other scan to beat counts 0: the mean stays over every query
    assert mean_margin(q[:1], [0], g[:1], [0]) == 0.0
