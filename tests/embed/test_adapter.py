"""The query adapter: learns a systematic photo → scan shift from pairs, generalises to cards it never
saw, stays near identity when there is nothing to learn."""

import numpy as np
import pytest

from cardid.embed.adapter import choose_lambda, fit_adapter, recall_at
from cardid.errors import CardIDError


def _world(seed=0, n_cards=200, dim=32, per_card=3):
    rng = np.random.default_rng(seed)
    gallery = rng.normal(size=(n_cards, dim))
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    shift = np.eye(dim) + 0.8 * rng.normal(size=(dim, dim)) / np.sqrt(dim)  # what a camera does
    rows = np.repeat(np.arange(n_cards), per_card)
    q = gallery[rows] @ shift.T + 0.15 * rng.normal(size=(len(rows), dim))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return gallery, q.astype(np.float32), rows


def test_the_adapter_learns_the_shift_on_some_cards_and_helps_on_others():
    gallery, q, rows = _world()
    fit, held = rows < 140, rows >= 140  # card-disjoint
    groups = rows[fit] % 4
    lam = choose_lambda(q[fit], gallery, rows[fit], groups)
    a = fit_adapter(q[fit], gallery[rows[fit]], lam)
    before = recall_at(q[held], gallery, rows[held])
    after = recall_at(a(q[held]), gallery, rows[held])
    assert after > before + 0.05 and after > 0.95, (before, after)  # 0.87 → 0.97
    assert np.allclose(np.linalg.norm(a(q[held]), axis=1), 1, atol=1e-5)


def test_with_nothing_to_learn_it_stays_close_to_identity():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(50, 16))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    a = fit_adapter(g, g, lam=10.0)  # queries already equal their scans
    assert np.allclose(a.matrix, np.eye(16), atol=1e-6)
    with pytest.raises(CardIDError, match="one shape"):
        fit_adapter(g, g[:10], 1.0)
    with pytest.raises(CardIDError, match="λ must be > 0"):
        fit_adapter(g, g, 0.0)
    with pytest.raises(CardIDError, match="2 inner folds"):
        choose_lambda(g, g, np.arange(50), np.zeros(50))
