"""Images decode as what a person sees: EXIF orientation applied, 16-bit scaled, bombs refused
before decoding, and every decoding failure one clear error naming the file."""

import numpy as np
import pytest
from PIL import Image

from cardid.errors import ImageError
from cardid.images import load_rgb


def _card(h=60, w=40):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), np.uint8)
    img[:10] = (255, 0, 0)  # a red top: orientation is visible
    return img


def test_exif_orientation_is_applied(tmp_path):
    upright = _card()
    # stored rotated 90° clockwise, with Orientation=6 ("rotate 90 CW to display"), as phones do
    stored = np.rot90(upright, k=1)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.png", exif=exif)
    Image.fromarray(upright).save(tmp_path / "upright.png")
    got = load_rgb(tmp_path / "phone.png")
    assert got.shape == upright.shape
    assert np.array_equal(got, load_rgb(tmp_path / "upright.png"))


def test_16_bit_png_is_scaled_not_saturated(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    got = load_rgb(tmp_path / "g16.png")[..., 0]
    assert got[0, 0] == 0 and got[0, -1] == 255
    assert abs(int(got[0, 32]) - 130) <= 3  # the middle stays grey (clipping made it 255)
    assert len(np.unique(got)) > 50


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    Image.new("1", (3000, 3000)).save(tmp_path / "bomb.png")  # a few KB on disk
    assert (tmp_path / "bomb.png").stat().st_size < 10_000
    monkeypatch.setenv("CARDID_MAX_PIXELS", "1e6")
    with pytest.raises(ImageError, match="too large.*bomb.png.*CARDID_MAX_PIXELS"):
        load_rgb(tmp_path / "bomb.png")
    monkeypatch.setenv("CARDID_MAX_PIXELS", "1e7")
    assert load_rgb(tmp_path / "bomb.png").shape == (3000, 3000, 3)


@pytest.mark.parametrize(
    "name,data",
    [
        ("zero.jpg", b""),
        ("text.jpg", b"hello, I am not a JPEG\n" * 20),
        ("trunc.png", None),
        ("tiny.png", "1x1"),
    ],
)
def test_bad_image_files_raise_one_clear_error(tmp_path, name, data):
    path = tmp_path / name
    if data is None:
        Image.fromarray(_card()).save(path)
        path.write_bytes(path.read_bytes()[:200])
    elif data == "1x1":
        Image.new("RGB", (1, 1)).save(path)
    else:
        path.write_bytes(data)
    with pytest.raises(ImageError, match=name):
        load_rgb(path)


def test_a_directory_is_not_an_image(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageError, match="d.png"):
        load_rgb(tmp_path / "d.png")
