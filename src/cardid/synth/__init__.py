"""Synthetic data: procedural card scans and the camera-photo simulation (no torch, no models)."""

from cardid.synth.cards import generate_cards, synth_cards
from cardid.synth.photo import (
    Scene,
    SceneCard,
    prepare_scan,
    render_crop,
    render_scene,
)
from cardid.synth.settings import PRESETS, PhotoSimConfig

__all__ = [
    "PRESETS",
    "PhotoSimConfig",
    "Scene",
    "SceneCard",
    "generate_cards",
    "prepare_scan",
    "render_crop",
    "render_scene",
    "synth_cards",
]
