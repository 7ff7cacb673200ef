"""DepthEstimator: RGB uint8 at camera resolution in, float32 metres at camera resolution out."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from depth_attn import weights as weights_mod
from depth_attn.geometry import Intrinsics
from depth_attn.inference.artefacts import UNTRAINED, ModelSource
from depth_attn.inference.backends import Backend, choose_backend, create_backend
from depth_attn.inference.canonical import CanonicalView, plan_view
from depth_attn.inference.processing import check_rgb, depth_from_output, preprocess_view  # noqa: F401
from depth_attn.models import build_model
from depth_attn.models.fitting import FitReport, fit_checkpoint
from depth_attn.models.registry import ModelConfig, check_input_size, covering_input_size, load_weights
from depth_attn.models.spec import network_spec

log = logging.getLogger(__name__)


@dataclass
class EstimatorConfig:
    model: ModelConfig = field(default_factory=ModelConfig)  # which network (the model identity)
    # a known checkpoint name, a file, "auto" (the one covering the configuration); None/"none" = untrained
    weights: Optional[str] = None
    dataset: str = "kitti"  # what "auto" picks weights for
    allow_partial_weights: bool = False  # run even where the weights leave replaced attention untrained
    backend: str = "torch"
    precision: str = "fp32"
    device: str = "cpu"
    input_hw: Optional[Tuple[int, int]] = None
    min_depth: float = 1e-3
    # the output clamp, metres: run time only, never part of what is built or cached (None: the
    # checkpoint's largest depth, else the network spec's)
    max_depth: Optional[float] = None
    to_metres: Optional[float] = None  # None: the checkpoint's unit, else the network spec's
    backend_options: Dict[str, object] = field(default_factory=dict)
    # Map each frame into the training camera (canonical.py) when its intrinsics are known; False
    # stretches every frame to the input size (for networks trained on the robot's own camera).
    canonical_camera: bool = True
    intrinsics: Optional[Intrinsics] = None  # the camera's, for frames given without their own
    # With the canonical camera: run the network at the smallest input size that holds the camera's
    # view at the training scale (chosen at the first frame of each camera; the ONNX file or engine is
    # made and cached for that size) instead of padding or cropping into the checkpoint's size. Off by
    # default: METER-tiny at its trained 192x636 with padding gave 0.076 / 0.073 abs_rel on the two
    # camera simulations (4:3 crop / 1.5x lens), at the covering sizes 0.27 / 0.66 (canonical.py).
    fit_input_to_camera: bool = False


@dataclass
class Timing:
    preprocess_ms: float = 0.0
    network_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.network_ms + self.postprocess_ms


class DepthEstimator:
    def __init__(self, config: EstimatorConfig) -> None:
        self.config = config
        self.model_config = mc = config.model
        self.spec = network_spec(mc.network)
        self.checkpoint: Optional[weights_mod.CheckpointInfo] = None
        self.weights_path: Optional[Path] = None
        self.weights_name: Optional[str] = None
        self.coverage_gaps: list = []
        spec = config.weights
        if spec is not None and spec.strip().lower() in weights_mod.UNTRAINED_NAMES:
            spec = None
        if spec == weights_mod.AUTO:
            spec = weights_mod.resolve_auto(mc.network, mc.size, mc.variant, mc.placement, config.dataset)
        self.weights_name = spec
        if spec:
            self.weights_path, self.checkpoint = weights_mod.resolve(spec)
            self._check_checkpoint_matches()
            self._check_coverage()
        ckpt = self.checkpoint
        trained_hw = ckpt.input_hw if ckpt else self.spec.input_hw
        self.input_hw: Tuple[int, int] = tuple(config.input_hw or trained_hw)  # type: ignore[assignment]
        check_input_size(mc.network, self.input_hw)
        self.to_metres = config.to_metres or (ckpt.to_metres if ckpt else self.spec.to_metres)
        # The network's own output scale (what its graph scales to, where it does: a build input) and
        # the clamp (run time): two things, the first a fact of the checkpoint.
        self.output_scale = ckpt.max_depth_m if ckpt else self.spec.max_depth_m
        self.max_depth = config.max_depth or self.output_scale
        self.min_depth = config.min_depth
        # The training camera's focal length at the network's input scale (the checkpoint's input width).
        focal, focal_width = ckpt.training_camera if ckpt else weights_mod.DATASET_CAMERAS.get(
            config.dataset, weights_mod.DATASET_CAMERAS["kitti"])
        train_width = trained_hw[1]
        self.canonical_focal: Optional[float] = (focal * train_width / focal_width) if config.canonical_camera else None
        self.view: Optional[CanonicalView] = None  # the last frame's mapping into the network input
        self.load_report: Optional[FitReport] = None
        self.source = ModelSource(mc, self.input_hw, self._build_torch_model, weights_sha256=self._weights_sha256(),
                                  output_scale=self.output_scale)
        # "auto" is resolved once, here, so a new input size (set_input_size) keeps the same backend.
        self.backend_name, self.auto_choice = config.backend, ""
        if config.backend == "auto":
            self.backend_name, why = choose_backend(config.device)
            self.auto_choice = f"{self.backend_name}: {why}"
            log.info("backend auto: %s", self.auto_choice)
        self.backend: Backend = self._create_backend(self.source)
        self.last_timing = Timing()

    def set_input_size(self, input_hw: Tuple[int, int]) -> None:
        """Run the network at another input size from the next frame on (the artefacts of each size
        are cached apart; the PyTorch model, if built, is reused)."""
        input_hw = (int(input_hw[0]), int(input_hw[1]))
        check_input_size(self.model_config.network, input_hw)
        source = replace(self.source, input_hw=input_hw)  # the same network (and built model), another size
        backend = self._create_backend(source)
        log.info("%s now runs at input %dx%d (was %dx%d)", self.model_config.name, input_hw[0], input_hw[1],
                 self.input_hw[0], self.input_hw[1])
        self.source, self.backend, self.input_hw, self.view = source, backend, input_hw, None

    def _create_backend(self, source: ModelSource) -> Backend:
        backend = create_backend(self.backend_name, source.model, self._backend_options(), source)
        backend.auto_choice = self.auto_choice
        return backend

    def _check_checkpoint_matches(self) -> None:
        ckpt, mc = self.checkpoint, self.model_config
        if ckpt and (ckpt.network, ckpt.size) != (mc.network, mc.size):
            raise weights_mod.WeightsError(
                f"weights {ckpt.name} are for {ckpt.network}/{ckpt.size}, not {mc.network}/{mc.size}"
            )

    def _check_coverage(self) -> None:
        """Nothing untrained reaches a robot silently: weights that leave tensors of this configuration
        as built or derived (a base checkpoint for a variant: ``fit_checkpoint``'s report) are refused
        unless ``allow_partial_weights``; then they are fitted as training fits them (``_build_torch_model``)."""
        mc = self.model_config
        if self.checkpoint is not None and self.checkpoint.covers == (mc.network, mc.size, mc.variant, mc.placement):
            return  # a known checkpoint of exactly this configuration (its tensors are checked when loaded)
        with torch.random.fork_rng(devices=[]):
            reference = build_model(**asdict(mc))
        self.coverage_gaps = fit_checkpoint(reference, weights_mod.load_state_dict(self.weights_path)).gaps
        if not self.coverage_gaps or self.config.allow_partial_weights:
            return
        shown = ", ".join(self.coverage_gaps[:3]) + (", ..." if len(self.coverage_gaps) > 3 else "")
        try:
            covering = weights_mod.resolve_auto(mc.network, mc.size, mc.variant, mc.placement, self.config.dataset)
            fix = f"use weights 'auto' ({covering})"
        except weights_mod.WeightsError:
            fix = (f"train them: depth-attn train --config config/train/meter_tiny_meta_distill_cpu.yaml "
                   f"--set model.variant={mc.variant}")
        raise weights_mod.WeightsError(
            f"weights {self.weights_name} do not cover {mc.name}: {len(self.coverage_gaps)} tensors differ between the "
            f"network and the checkpoint ({shown}), so that part would run untrained (or derived, as a training "
            f"start). Fix: {fix}; "
            "or set allow_partial_weights "
            "to run it anyway"
        )

    def _weights_sha256(self) -> str:
        if self.weights_path is None:
            return UNTRAINED
        if self.checkpoint is not None and self.checkpoint.sha256:
            return self.checkpoint.sha256  # already checked against the file by weights.resolve
        return weights_mod.file_digest(self.weights_path)  # (hashed once per process)

    def _backend_options(self) -> Dict[str, object]:
        options: Dict[str, object] = {"device": self.config.device, "precision": self.config.precision}
        if self.backend_name == "torch" and self.spec.torch_channels_last:
            options["channels_last"] = True
        options.update(self.config.backend_options)
        return options

    def _build_torch_model(self) -> nn.Module:
        mc = self.model_config
        # Untrained networks start from a fixed seed: every backend (and the cached ONNX file) then
        # runs the same network, and the caller's random state is left alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(**asdict(mc), output_scale=self.output_scale)
        if self.weights_path is not None:
            state = weights_mod.load_state_dict(self.weights_path)
            self.load_report = load_weights(model, state, mc)
        return model.eval()

    def describe(self) -> Dict[str, object]:
        info: Dict[str, object] = {"model": self.model_config.name, "weights": self.weights_name or "untrained"}
        if self.coverage_gaps:
            info["untrained_tensors"] = len(self.coverage_gaps)
        info.update(asdict(self.model_config))
        info["input_hw"] = list(self.input_hw)
        info["canonical_focal_px"] = round(self.canonical_focal, 3) if self.canonical_focal else "off (stretch)"
        info.update(self.backend.describe())
        info["precision"] = self.config.precision
        if self.backend.artefact_status != "-":
            info["artefact"] = self.backend.artefact_status
        if self.auto_choice:
            info["auto_choice"] = self.auto_choice  # backend auto: what it chose here, and why
        return info

    def view_for(self, intrinsics: Optional[Intrinsics], camera_wh: Tuple[int, int]) -> CanonicalView:
        """How a ``camera_wh`` image with these intrinsics goes into the network (cached per camera):
        the canonical camera, or the plain stretch without intrinsics or with ``canonical_camera`` off."""
        view = self.view
        if view is None or view.camera_wh != tuple(camera_wh) or getattr(self, "_view_key", None) != intrinsics:
            view = plan_view(intrinsics, camera_wh, self.input_hw, self.canonical_focal)
            self._view_key = intrinsics
        return view

    def preprocess(self, rgb: np.ndarray, view: Optional[CanonicalView] = None) -> np.ndarray:
        return preprocess_view(rgb, self.input_hw, view)

    def postprocess(self, raw: np.ndarray, camera_hw: Tuple[int, int], out: Optional[np.ndarray] = None,
                    view: Optional[CanonicalView] = None) -> np.ndarray:
        """Network output -> metres at the camera's size, clamped (see ``depth_from_output``)."""
        return depth_from_output(raw, self.to_metres, camera_hw, self.min_depth, self.max_depth, out, view)

    def output_hw(self, view: CanonicalView, at_network_scale: bool) -> Tuple[int, int]:
        """Where the depth of a frame seen through ``view`` goes: the camera's pixels, or with
        ``at_network_scale`` the camera image at the scale the network saw it (``view.scaled_wh``:
        636x192 for a KITTI frame and METER) when that is smaller than the camera's."""
        (w, h), (sw, sh) = view.camera_wh, view.scaled_wh
        return (sh, sw) if at_network_scale and sw <= w and sh <= h else (h, w)

    def output_intrinsics(self, camera: Intrinsics, camera_wh: Tuple[int, int],
                          output_hw: Tuple[int, int]) -> Intrinsics:
        """The camera's intrinsics on the depth's grid (``output_hw``, see ``output_hw``)."""
        return camera if output_hw == (camera_wh[1], camera_wh[0]) else camera.resized(
            camera_wh, (output_hw[1], output_hw[0]))

    def estimate(self, rgb: np.ndarray, out: Optional[np.ndarray] = None,
                 intrinsics: Optional[Intrinsics] = None, at_network_scale: bool = False) -> np.ndarray:
        """Metric depth (float32, metres, HxW of ``rgb``); ``last_timing`` holds the breakdown.
        ``out``: write the depth into this float32 array (and return it). ``intrinsics``: the
        camera's (else the config's); with them the frame goes through the canonical camera.
        ``at_network_scale``: the depth on the camera image resized to the scale the network saw it
        (``output_hw``; its intrinsics: ``output_intrinsics``), about 4x fewer pixels for KITTI, for
        consumers that need no more (costmaps, obstacles), and cheaper to publish."""
        t0 = time.perf_counter()
        check_rgb(rgb)
        view = self.view_for(intrinsics or self.config.intrinsics, (rgb.shape[1], rgb.shape[0]))
        if self.config.fit_input_to_camera and self.canonical_focal and not view.is_stretch:
            covering = covering_input_size(self.model_config.network, (view.scaled_wh[1], view.scaled_wh[0]))
            if covering != self.input_hw:
                self.set_input_size(covering)
                view = self.view_for(intrinsics or self.config.intrinsics, (rgb.shape[1], rgb.shape[0]))
        self.view = view
        batch = self.preprocess(rgb, view)
        t1 = time.perf_counter()
        raw = self.backend.run(batch)  # returns when the device has finished: the network time is honest
        t2 = time.perf_counter()
        out_hw = self.output_hw(view, at_network_scale)
        if out_hw != rgb.shape[:2]:  # the depth on the scaled camera image: the same mapping, another grid
            view = replace(view, camera_wh=(out_hw[1], out_hw[0]))
        depth = self.postprocess(raw, out_hw, out, view)
        t3 = time.perf_counter()
        self.last_timing = Timing((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return depth
