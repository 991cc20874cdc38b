"""Finding cards in photos: detections (four corners each), rectification, detectors.

``Detection`` is what every detector returns; :func:`rectify` turns one into an upright card crop.
Detectors: ``ClassicalFinder`` (OpenCV contours, no training) and ``YoloDetector`` (ultralytics
YOLO11n-OBB, optional extra ``cardid[detect]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detection:
    corners: np.ndarray  # float32 (4, 2) in image pixels, TL TR BR BL
    score: float

    def box(self) -> tuple[float, float, float, float]:
        """The enclosing axis-aligned box (x1, y1, x2, y2)."""
        x, y = self.corners[:, 0], self.corners[:, 1]
        return float(x.min()), float(y.min()), float(x.max()), float(y.max())
