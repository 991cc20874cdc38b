import numpy as np

from cardid.search import topk_cosine


def test_topk_matches_a_full_sort_in_chunks_and_leave_one_out():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(50, 8)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = g[:7] + 0.01 * rng.normal(size=(7, 8)).astype(np.float32)
    s, r = topk_cosine(q, g, 5, chunk=3)
    full = np.argsort(-(q @ g.T), axis=1)[:, :5]
    assert np.array_equal(r, full) and s.dtype == np.float32 and r.dtype == np.int64
    assert np.all(np.diff(s, axis=1) <= 0)
    _, r1 = topk_cosine(g, g, 1, exclude_self=True)
    assert not np.any(r1[:, 0] == np.arange(50))
    _, r_all = topk_cosine(q[:1], g, 500)  # k beyond the gallery: all rows, sorted
    assert r_all.shape == (1, 50) and sorted(r_all[0]) == list(range(50))
    assert topk_cosine(np.zeros((0, 8), np.float32), g, 3)[1].shape == (0, 3)
