import numpy as np
import pytest
import torch
from PIL import Image

from cardid.errors import CardIDError, PreprocessMismatch
from cardid.preprocess import CARD_ASPECT, IMAGENET_MEAN, Preprocess, get_preset


def card_like(h=352, w=252, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_json_round_trip_preserves_contract(tmp_path):
    p = Preprocess(320, 224, "pad", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), channel_order="BGR")
    p.save(tmp_path / "pre.json")
    q = Preprocess.load(tmp_path / "pre.json")
    assert q == p
    assert q.fingerprint() == p.fingerprint()
    q.check_same(p)
    np.testing.assert_array_equal(q(card_like()), p(card_like()))


def test_mismatch_names_every_differing_field():
    a, b = get_preset("square224"), Preprocess(224, 224, "stretch", channel_order="BGR")
    with pytest.raises(PreprocessMismatch, match="resize.*channel_order|channel_order.*resize") as e:
        a.check_same(b, "db vs query model")
    assert "db vs query model" in str(e.value)
    assert a.fingerprint() != b.fingerprint()


def test_unknown_or_invalid_fields_are_errors():
    with pytest.raises(CardIDError, match="unknown preprocess fields"):
        Preprocess.from_dict({**Preprocess().to_dict(), "hflip": True})
    with pytest.raises(CardIDError, match="resize policy"):
        Preprocess(resize="squash")
    with pytest.raises(CardIDError, match="std"):
        Preprocess(std=(0.0, 1.0, 1.0))


def test_pad_keeps_the_card_aspect_and_pads_with_the_mean():
    p = get_preset("square224")
    h, w = 880, 630  # a card: 63 × 88
    x0, y0, cw, ch = p.content_box(h, w)
    assert ch == 224 and abs(cw / ch - CARD_ASPECT) < 0.01
    assert x0 == (224 - cw) // 2 and y0 == 0
    out = p.resize_image(np.full((h, w, 3), 255, np.uint8))
    assert out.shape == (224, 224, 3)
    assert (out[:, :x0] == p.pad_rgb).all() and (out[:, x0 + cw :] == p.pad_rgb).all()
    assert (out[:, x0 + 1 : x0 + cw - 1] == 255).all()
    x = p(np.full((h, w, 3), 255, np.uint8))
    assert np.abs(x[:, :, 0]).max() < 0.02  # the border normalises to ~0


def test_portrait_preset_fits_a_card_with_little_padding():
    p = get_preset("portrait224")
    _x0, _y0, cw, ch = p.content_box(880, 630)
    assert cw * ch / (224 * 320) > 0.97


def test_stretch_and_crop_policies():
    img = card_like(100, 300)
    assert Preprocess(64, 64, "stretch").resize_image(img).shape == (64, 64, 3)
    crop = Preprocess(64, 64, "crop").resize_image(img)
    assert crop.shape == (64, 64, 3)


def test_normalize_matches_the_documented_formula_and_inverts():
    p = get_preset("tiny64")
    img = card_like(64, 64)
    x = p.normalize(img)
    assert x.dtype == np.float32 and x.shape == (3, 64, 64)
    expected = (img[..., 0] / 255.0 - IMAGENET_MEAN[0]) / p.std[0]
    np.testing.assert_allclose(x[0], expected, atol=1e-5)
    np.testing.assert_array_equal(p.denormalize(x), img)


def test_bgr_order_swaps_channels():
    img = card_like(64, 64)
    rgb, bgr = get_preset("tiny64"), Preprocess(64, 64, channel_order="BGR")
    # mean/std are always given in RGB order; channel_order only changes the output layout
    np.testing.assert_allclose(bgr(img)[0], rgb(img)[2], atol=1e-6)
    np.testing.assert_allclose(bgr(img)[0], (img[..., 2] / 255.0 - IMAGENET_MEAN[2]) / rgb.std[2], atol=1e-5)


def test_pil_and_array_inputs_agree_and_rgba_is_composited():
    img = card_like()
    p = get_preset("tiny64")
    np.testing.assert_array_equal(p(Image.fromarray(img)), p(img))
    rgba = Image.new("RGBA", (40, 56), (0, 0, 0, 0))
    out = p.resize_image(rgba)
    assert (out[32, 32] == 255).all()  # transparent → white card background


def test_rejects_non_uint8_input():
    with pytest.raises(CardIDError, match="uint8"):
        get_preset("tiny64")(np.zeros((10, 10, 3), np.float32))


def test_batch_is_nchw_float32_and_torch_compatible():
    p = get_preset("tiny64")
    b = p.batch([card_like(seed=i) for i in range(3)])
    assert b.shape == (3, 3, 64, 64) and b.dtype == np.float32
    assert torch.from_numpy(b).dtype == torch.float32
