import cv2
import numpy as np

from cardid.catalog.dedupe import find_duplicates, hamming_pairs, phash


def test_phash_is_robust_to_recompression_but_separates_cards(synth_catalog):
    a, b = synth_catalog.load_image(synth_catalog.ids[0]), synth_catalog.load_image(synth_catalog.ids[1])
    _, buf = cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, 60])
    a_jpeg = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    d = lambda x, y: int(np.bitwise_count(phash(x) ^ phash(y)))  # noqa: E731
    assert d(a, a) == 0
    assert d(a, a_jpeg) <= 4
    assert d(a, b) > 8


def test_hamming_pairs_chunked_equals_bruteforce():
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, 300, dtype=np.uint64)
    h[17] = h[5] ^ np.uint64(0b101)  # distance 2
    pairs = hamming_pairs(h, 3, chunk=64)
    assert (5, 17, 2) in pairs
    brute = [(i, j) for i in range(300) for j in range(i + 1, 300) if int(np.bitwise_count(h[i] ^ h[j])) <= 3]
    assert sorted((i, j) for i, j, _ in pairs) == brute


def test_reprints_are_reported_as_near_identical(synth_catalog):
    rep = find_duplicates(synth_catalog, max_distance=6)
    reprints = {(r.id, r.reprint_of) for r in synth_catalog if getattr(r, "reprint_of", None)}
    assert reprints, "the fixture should contain reprints"
    found = {frozenset((p["a"], p["b"])) for p in rep.pairs}
    assert any(frozenset(p) in found for p in reprints)
    assert not rep.unreadable
