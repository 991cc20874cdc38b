import cv2
import numpy as np
import pytest

from cardid.synth.camera import Canvas, camera_effects, motion_blur
from cardid.synth.photo import (
    PRESETS,
    PhotoSimConfig,
    render_crop,
    render_scene,
)
from cardid.synth.pose import card_corners

CFG = PRESETS["default"]


def asymmetric_scan(h=352, w=252):
    """Bright left half with a black bar at the top-left, dark right half, and a bottom band that
    is red on the left and blue on the right: any flip or turn is visible."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = 235
    img[:, w // 2 :] = 45
    img[20:80, 20 : w // 2] = 0
    img[-70:, : w // 2] = (220, 30, 30)
    img[-70:, w // 2 :] = (30, 30, 220)
    return img


def gray(x):
    return cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32)


def ncc(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-6))


def test_same_seed_same_crop_different_seed_different(synth_catalog):
    scan = synth_catalog.load_image(synth_catalog.ids[0])
    a = render_crop(scan, np.random.default_rng(5))
    b = render_crop(scan, np.random.default_rng(5))
    c = render_crop(scan, np.random.default_rng(6))
    assert a.shape == (CFG.crop_height, CFG.crop_width, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 2


def test_crops_are_never_mirrored_or_turned():
    scan = asymmetric_scan()
    heavy = PRESETS["heavy"]
    for seed in range(40):
        crop = render_crop(scan, np.random.default_rng(seed), heavy)
        ref = cv2.resize(scan, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_AREA)
        g, r = gray(crop), gray(ref)
        assert ncc(g, r) > ncc(g, r[:, ::-1]) + 0.2, f"seed {seed}: crop looks mirrored"
        assert ncc(g, r) > ncc(g, r[::-1, ::-1]) + 0.2, f"seed {seed}: crop looks upside down"
        # the red end of the bottom band stays on the left
        band = crop[-crop.shape[0] // 6 :]
        left, right = band[:, : band.shape[1] // 3].mean((0, 1)), band[:, -band.shape[1] // 3 :].mean((0, 1))
        assert left[0] > left[2] and right[2] > right[0]


def test_no_large_hue_shift():
    for color in [(200, 60, 50), (60, 170, 70), (50, 80, 200), (230, 200, 60)]:
        scan = np.empty((352, 252, 3), np.uint8)
        scan[:] = color
        ref_hue = cv2.cvtColor(scan[:1, :1], cv2.COLOR_RGB2HSV_FULL)[0, 0, 0].astype(int)
        cfg = CFG.model_copy(update={"p_finger": 0.0, "p_holo": 0.0})
        for seed in range(10):
            crop = render_crop(scan, np.random.default_rng(seed), cfg)
            center = crop[
                crop.shape[0] // 3 : 2 * crop.shape[0] // 3, crop.shape[1] // 3 : 2 * crop.shape[1] // 3
            ]
            mean = np.uint8(np.clip(center.reshape(-1, 3).mean(0), 0, 255))[None, None]
            hue = cv2.cvtColor(mean, cv2.COLOR_RGB2HSV_FULL)[0, 0, 0].astype(int)
            diff = min(abs(hue - ref_hue), 256 - abs(hue - ref_hue)) * 360 / 256
            assert diff < 20, f"{color} seed {seed}: hue moved {diff:.0f}°"


def test_glare_saturates_instead_of_overflowing():
    img = np.full((120, 90, 3), 250, np.uint8)
    canvas = Canvas.new(img)
    canvas.gloss[:] = 1.0
    cfg = PhotoSimConfig(
        p_glare=1.0,
        glare_strength=(5.0, 5.0),
        exposure=(1.2, 1.2),
        p_jpeg=0.0,
        noise=(0.0, 0.0),
        p_defocus=0.0,
        p_motion_blur=0.0,
        illumination=0.0,
        color_cast=0.0,
    )
    out = camera_effects(np.random.default_rng(0), canvas, cfg)
    assert out.min() >= 250  # uint8 wrap-around would give near-black pixels
    assert (out == 255).mean() > 0.9


def test_motion_blur_preserves_mean_and_blurs_along_its_direction():
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, 20] = 255
    horiz = motion_blur(img, 9, 0.0)
    vert = motion_blur(img, 9, np.pi / 2)
    assert abs(int(horiz.sum()) - int(img.sum())) < img.sum() * 0.02
    assert (horiz[:, 16:25] > 0).all() and np.array_equal(vert, img)


@pytest.mark.parametrize("layout,n", [("scatter", 3), ("binder", 9), ("binder", 14)])
def test_scene_corners_locate_each_card_upright(synth_catalog, layout, n):
    scans = [synth_catalog.load_image(synth_catalog.ids[i % len(synth_catalog)]) for i in range(n)]
    scene = render_scene(scans, np.random.default_rng(1), (640, 640), layout, CFG)
    assert scene.image.shape == (640, 640, 3) and len(scene.cards) == n
    for c in scene.cards:
        assert c.corners.shape == (4, 2) and 0.0 <= c.visible <= 1.0
        if c.visible < 0.95 or (c.corners < 0).any() or (c.corners > 640).any():
            continue
        # warping the photo back with the corners (TL TR BR BL) gives the card, upright
        h, w = 176, 126
        M = cv2.getPerspectiveTransform(c.corners.astype(np.float32), card_corners(w, h))
        back = gray(cv2.warpPerspective(scene.image, M, (w, h)))
        ref = gray(cv2.resize(scans[c.index], (w, h), interpolation=cv2.INTER_AREA))
        assert ncc(back, ref) > 0.5
        assert ncc(back, ref) > ncc(back, ref[::-1, ::-1]) + 0.1


def test_negative_scene_has_no_cards():
    scene = render_scene([], np.random.default_rng(0), (320, 480))
    assert scene.cards == [] and scene.image.shape == (320, 480, 3)


def test_scene_occlusion_lowers_visibility(synth_catalog):
    scans = [synth_catalog.load_image(i) for i in synth_catalog.ids[:8]]
    vis = []
    for seed in range(6):
        vis += [c.visible for c in render_scene(scans, np.random.default_rng(seed), (480, 480)).cards]
    assert min(vis) < 0.9 and max(vis) > 0.95


def test_table_layout_lays_cards_out_apart_and_in_frame():
    from cardid.synth.photo import render_scene

    scans = [np.full((352, 252, 3), v, np.uint8) for v in (60, 120, 180, 240)]
    for seed in range(5):
        scene = render_scene(scans[: 2 + seed % 3], np.random.default_rng(seed), (600, 600), "table")
        assert all(c.visible > 0.9 for c in scene.cards)  # nobody hides anybody (a finger may)
        for c in scene.cards:
            assert c.corners.min() >= 0 and c.corners.max() <= 600
