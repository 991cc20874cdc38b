"""Geometric verification (cardid.db.verify): keypoints and homographies, strips compared only
where printings differ and only as finely as the photo resolves, gallery features round-trip."""

import numpy as np

from cardid.db.verify import VerifyConfig, at_resolution, extract, match, mutual_inliers, strip_scores


def _card(seed: int = 0) -> np.ndarray:
    """A textured card-sized RGB image: plenty of corners for ORB."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (44, 32, 3)).astype(np.uint8)
    import cv2

    return cv2.resize(small, (320, 448), interpolation=cv2.INTER_NEAREST)


def test_a_card_verifies_against_itself_and_not_against_another():
    cfg = VerifyConfig()
    a, b = extract(_card(0), cfg, keep_fine=True), extract(_card(1), cfg)
    same = match(a, a.points, a.descriptors, cfg)
    assert same.inliers >= 100 and np.allclose(same.homography, np.eye(3), atol=1e-3)
    other = match(a, b.points, b.descriptors, cfg)
    assert other.inliers < 15
    assert mutual_inliers(a, a, cfg) == same.inliers
    assert a.fine is not None and a.strip.shape == cfg.strip_shape


def test_at_resolution_keeps_what_a_coarse_photo_shows_only():
    strip = np.zeros((60, 384), np.float32)
    strip[:, ::2] = 255  # one-pixel stripes
    assert at_resolution(strip, 1.0) is strip
    blurred = at_resolution(strip, 0.25)
    assert blurred.shape == strip.shape and blurred.std() < 0.1 * strip.std()


def test_the_strips_are_compared_only_where_they_differ_at_the_photos_resolution():
    """Fine print (a one-pixel pattern) that a coarse photo cannot show is no difference to go by;
    a difference as big as the photo resolves still separates the cards."""
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.integers(100, 156, (60, 384)).astype(np.uint8)
    fine = base.copy()
    fine[20:40, 300:340] = np.where(np.indices((20, 40)).sum(0) % 2 == 0, 30, 230)  # 1 px checkerboard
    coarse = base.copy()
    coarse[20:40, 300:340] = 20  # a 20×40 px block
    assert strip_scores([fine, fine], [base, fine]) is not None  # at full resolution they differ
    assert strip_scores([fine, fine], [base, fine], scale=0.25) is None  # at a quarter: they do not
    s = strip_scores([coarse, coarse], [base, coarse], scale=0.25)
    assert s is not None and s[1] > 0.5 > s[0]  # the photo shows the block: card 1 leads


def test_match_finds_the_pairs_bfmatcher_knnmatch_finds():
    """The ratio test on cv2.batchDistance's two nearest descriptors keeps exactly the pairs (and so
    the homography) that BFMatcher.knnMatch(k=2) gives: same matches, same inliers, same H."""
    import cv2

    cfg = VerifyConfig()
    rng = np.random.default_rng(3)
    for seed in range(4):
        card = _card(seed)
        rot = cv2.getRotationMatrix2D((160, 224), float(rng.uniform(-6, 6)), float(rng.uniform(0.9, 1.1)))
        noisy = np.clip(cv2.warpAffine(card, rot, (320, 448)) + rng.normal(0, 10, card.shape), 0, 255)
        q = extract(noisy.astype(np.uint8), cfg)
        for g in (extract(card, cfg), extract(_card(seed + 10), cfg)):
            pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(q.descriptors, g.descriptors, k=2)
            good = [p[0] for p in pairs if p[0].distance < cfg.ratio * p[1].distance]
            v = match(q, g.points, g.descriptors, cfg)
            assert v.matches == len(good)
            if len(good) >= cfg.min_matches:
                src = q.points[[m.queryIdx for m in good]]
                dst = g.points[[m.trainIdx for m in good]]
                h, mask = cv2.findHomography(
                    src, dst, cv2.USAC_ACCURATE, cfg.ransac_px, maxIters=cfg.ransac_iters
                )
                assert v.inliers == int(mask.sum()) and np.array_equal(v.homography, h)
