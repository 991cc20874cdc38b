import numpy as np

from cardid.eval.hardsets import build_hard_sets, sloppy_crop
from cardid.eval.queries import load_queries
from cardid.images import load_rgb, save_rgb


def test_hard_sets_are_seeded_reproducible_and_within_bounds(tmp_path, synth_catalog):
    crops = []
    for i, cid in enumerate(synth_catalog.ids[:3]):
        save_rgb(tmp_path / f"c{i}.png", synth_catalog.load_image(cid))
        crops.append((tmp_path / f"c{i}.png", cid))
    a = build_hard_sets(crops, synth_catalog, tmp_path / "a", per_crop=4, scans=5, seed=7)
    b = build_hard_sets(crops, synth_catalog, tmp_path / "b", per_crop=4, scans=5, seed=7)
    qa, qb = load_queries(a["crops"]), load_queries(b["crops"])
    assert len(qa) == 12 and qa.card_ids == [c for _, c in crops for _ in range(4)]
    assert len(load_queries(a["scans"])) == 5
    for pa, pb in zip(
        qa.paths + load_queries(a["scans"]).paths, qb.paths + load_queries(b["scans"]).paths, strict=True
    ):
        x, y = load_rgb(pa), load_rgb(pb)
        assert np.array_equal(x, y)  # same seed, same pixels
        assert 110 <= x.shape[1] <= 260 and x.shape[0] > x.shape[1]
    other = build_hard_sets(crops, synth_catalog, tmp_path / "c", per_crop=4, scans=5, seed=8)
    assert not np.array_equal(load_rgb(load_queries(other["crops"]).paths[0]), load_rgb(qa.paths[0]))


def test_sloppy_crop_differs_from_the_card_but_keeps_it():
    rng = np.random.default_rng(0)
    card = np.zeros((352, 252, 3), np.uint8)
    card[20:-20, 20:-20] = (200, 40, 40)
    out = sloppy_crop(card, rng)
    centre = out[out.shape[0] // 3 : 2 * out.shape[0] // 3, out.shape[1] // 3 : 2 * out.shape[1] // 3]
    assert centre[..., 0].mean() > 120 and centre[..., 0].mean() > 2 * centre[..., 1].mean()  # still red
