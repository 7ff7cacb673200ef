"""Other cameras, made from KITTI frames with ground truth: how a network's metres hold up when the
lens or the aspect differs from the training camera's (issue 15).

- ``full``: the frame as it is (the training camera);
- ``4:3``: the 500x375 centre of each frame (a 4:3 camera with KITTI's focal length);
- ``lens1.5``: the centre 828x250 seen at 1242x375 (a 1.5x longer lens, fx 1082); scored on the
  crop's own pixels (the prediction resized back with area averaging) against the crop's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import cv2
import numpy as np

from depth_attn.geometry import Intrinsics
from depth_attn.metrics import evaluate_depth

CAMERAS = ("full", "4:3", "lens1.5")


@dataclass
class SimulatedFrame:
    rgb: np.ndarray  # what the simulated camera sees
    intrinsics: Intrinsics  # its intrinsics (rectified)
    gt: np.ndarray  # ground truth on the scored grid
    score_wh: Tuple[int, int]  # the prediction is resized to this grid before scoring


def simulate(rgb: np.ndarray, gt: np.ndarray, k: Intrinsics, camera: str) -> SimulatedFrame:
    h, w = rgb.shape[:2]
    if camera == "full":
        return SimulatedFrame(rgb, k, gt, (w, h))
    if camera == "4:3":
        cw = int(round(h * 4 / 3))
        x0 = (w - cw) // 2
        return SimulatedFrame(np.ascontiguousarray(rgb[:, x0:x0 + cw]), k.cropped(x0, 0), gt[:, x0:x0 + cw], (cw, h))
    if camera == "lens1.5":
        cw, ch = int(round(w / 1.5)), int(round(h / 1.5))
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        crop = rgb[y0:y0 + ch, x0:x0 + cw]
        seen = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
        return SimulatedFrame(seen, k.cropped(x0, y0).resized((cw, ch), (w, h)), gt[y0:y0 + ch, x0:x0 + cw], (cw, ch))
    raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")


def score(depth: np.ndarray, frame: SimulatedFrame) -> Dict[str, float]:
    if (depth.shape[1], depth.shape[0]) != frame.score_wh:
        depth = cv2.resize(depth, frame.score_wh, interpolation=cv2.INTER_AREA)
    return evaluate_depth(depth, frame.gt)


def abs_rel_per_camera(
    predict: Callable[[np.ndarray, Intrinsics], np.ndarray],
    frames: Iterable[Tuple[np.ndarray, np.ndarray]],
    k: Intrinsics,
    cameras: Optional[Iterable[str]] = None,
) -> Dict[str, List[float]]:
    """abs_rel per frame for each simulated camera; ``predict(rgb, intrinsics) -> metres``."""
    frames = list(frames)
    out: Dict[str, List[float]] = {}
    for camera in cameras or CAMERAS:
        for rgb, gt in frames:
            sim = simulate(rgb, gt, k, camera)
            out.setdefault(camera, []).append(score(predict(sim.rgb, sim.intrinsics), sim)["abs_rel"])
    return out
