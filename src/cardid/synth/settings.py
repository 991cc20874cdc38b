"""The camera simulation's settings and presets (:mod:`cardid.synth.photo` renders them): a leaf
module, so every part of the simulation and every config that names one imports it alone."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from cardid.preprocess import CARD_ASPECT

Range = tuple[float, float]


class PhotoSimConfig(BaseModel):
    """Strengths and probabilities of every camera effect (serialised beside each dataset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crop_width: int = 224
    #: card size in the photo relative to the crop width (<1: far away, upsampled and soft)
    scale: Range = (0.6, 1.5)
    max_tilt_deg: float = 32.0
    max_roll_deg: float = 25.0
    focal: Range = (0.7, 1.8)  # focal length / canvas diagonal (wide-angle → strong perspective)
    corner_error: float = 0.012  # σ of each rectification corner, fraction of card width
    p_finger: float = 0.25
    p_sleeve: float = 0.3
    p_toploader: float = 0.1
    p_holo: float = 0.25
    holo_strength: Range = (0.04, 0.14)
    p_glare: float = 0.45
    glare_strength: Range = (0.2, 1.0)
    exposure: Range = (0.7, 1.2)
    illumination: float = 0.35  # max relative brightness change across the frame
    color_cast: float = 0.10  # max per-channel white-balance gain deviation
    p_defocus: float = 0.35
    defocus_sigma: Range = (0.4, 1.1)
    p_motion_blur: float = 0.15
    motion_len: Range = (0.01, 0.045)  # blur length, fraction of the image width
    noise: Range = (0.002, 0.014)  # read-noise σ; shot noise scales with it (phones denoise)
    p_sharpen: float = 0.7  # phone ISPs sharpen (unsharp mask) after denoising
    sharpen_amount: Range = (0.5, 3.0)
    p_jpeg: float = 0.85
    jpeg_quality: Range = (35.0, 95.0)

    @property
    def crop_height(self) -> int:
        return round(self.crop_width / CARD_ASPECT)


PRESETS = {
    "default": PhotoSimConfig(),
    "light": PhotoSimConfig(
        max_tilt_deg=15,
        max_roll_deg=8,
        p_finger=0.1,
        p_glare=0.3,
        glare_strength=(0.2, 0.6),
        p_defocus=0.3,
        defocus_sigma=(0.3, 0.8),
        p_motion_blur=0.05,
        noise=(0.001, 0.008),
        jpeg_quality=(60, 95),
        corner_error=0.006,
    ),
    "heavy": PhotoSimConfig(
        scale=(0.35, 1.4),
        max_tilt_deg=40,
        p_finger=0.45,
        p_glare=0.75,
        glare_strength=(0.5, 1.8),
        p_motion_blur=0.35,
        motion_len=(0.02, 0.08),
        p_defocus=0.6,
        defocus_sigma=(0.5, 2.0),
        noise=(0.004, 0.03),
        jpeg_quality=(25, 85),
        corner_error=0.02,
    ),
}


def photo_preset(name: str) -> PhotoSimConfig:
    if name not in PRESETS:
        from cardid.errors import CardIDError

        raise CardIDError(f"unknown photo preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]


__all__ = ["PRESETS", "PhotoSimConfig", "Range", "photo_preset"]
