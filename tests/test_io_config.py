import numpy as np
import pytest
from PIL import Image

from cardid.config import load_config, parse_overrides, save_config
from cardid.data.layout import EmbeddingDataConfig
from cardid.errors import CardIDError, ImageError
from cardid.images import load_rgb
from cardid.io import atomic_dir, write_json_atomic


def test_load_rgb_names_a_corrupt_or_missing_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageError, match="bad.png"):
        load_rgb(bad)
    with pytest.raises(ImageError, match="not found.*nope.jpg"):
        load_rgb(tmp_path / "nope.jpg")


def test_transparent_corners_are_composited_on_white(tmp_path):
    img = Image.new("RGBA", (20, 28), (10, 200, 30, 255))
    img.putpixel((0, 0), (10, 200, 30, 0))
    img.save(tmp_path / "c.png")
    rgb = load_rgb(tmp_path / "c.png")
    assert rgb.shape == (28, 20, 3)
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[5, 5]) == (10, 200, 30)


def test_atomic_dir_leaves_nothing_on_failure_and_keeps_the_old_output(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as d:
        (d / "a.txt").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(out, overwrite=True) as d:
        (d / "a.txt").write_text("half")
        raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(CardIDError, match="not empty"), atomic_dir(out):
        pass


def test_atomic_json_write_replaces_whole_file(tmp_path):
    write_json_atomic(tmp_path / "x.json", {"a": 1})
    write_json_atomic(tmp_path / "x.json", {"b": np.int64(2).item()})
    assert (tmp_path / "x.json").read_text().strip().endswith("}")
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_config_layers_defaults_yaml_values_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("train_views: 3\nphoto:\n  p_glare: 0.9\n  crop_width: 128\n")
    cfg = load_config(
        EmbeddingDataConfig,
        tmp_path / "c.yaml",
        ["photo.p_glare=0.1", "seed=7"],
        defaults={"photo": {"p_finger": 0.0, "p_glare": 0.5}},
        val_views=4,
        train_views=None,
    )
    assert (cfg.train_views, cfg.val_views, cfg.seed) == (3, 4, 7)
    assert (cfg.photo.p_glare, cfg.photo.p_finger, cfg.photo.crop_width) == (0.1, 0.0, 128)
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(EmbeddingDataConfig, tmp_path / "saved.yaml") == cfg


def test_config_errors_are_one_line_and_name_the_field(tmp_path):
    with pytest.raises(CardIDError, match="photo.p_glares"):
        load_config(EmbeddingDataConfig, overrides=["photo.p_glares=1"])
    with pytest.raises(CardIDError, match="key=value"):
        parse_overrides(["seed"])
    with pytest.raises(CardIDError, match="not found"):
        load_config(EmbeddingDataConfig, tmp_path / "missing.yaml")
