"""The depth node's parameters, declared once: default (which gives the type), description, range,
choices and whether each is fixed at start; the frozen ``Settings`` they make; their validation, their
declaration on a node and the check of a run-time set."""

from __future__ import annotations

from collections import Counter
from dataclasses import make_dataclass
from typing import Dict, Optional, Tuple

from depth_attn import keyvalue
from depth_attn.inference.backends.base import BACKEND_CHOICES, PRECISIONS
from depth_attn.models.registry import NETWORKS, PLACEMENTS, SIZES, VARIANTS, ModelConfig
from depth_attn.ros import param_schema
from depth_attn.ros.param_schema import Param

_NET = ("read-only while the node is configured: clean it up (lifecycle cleanup) or restart it, set it, then "
        "configure")

_MODEL = ModelConfig()  # the model identity's defaults (Settings.model makes the identity of a node)

PARAMETERS: Dict[str, Param] = {
    "autostart": Param(True, "configure and activate the node at start; false: stay unconfigured until a lifecycle "
                       "manager (Nav2's lifecycle_manager, launch_ros LifecycleNode) drives it", read_only=True),
    "network": Param(_MODEL.network, "depth network", choices=NETWORKS, read_only=True),
    "size": Param(_MODEL.size, "network size", choices=SIZES, read_only=True),
    "variant": Param(_MODEL.variant, "attention variant", choices=VARIANTS, read_only=True),
    "placement": Param(_MODEL.placement, "where the variant goes", choices=PLACEMENTS, read_only=True),
    "backend": Param("torch", "what runs the network; auto: TensorRT where it and a CUDA GPU are present, else "
                     "OpenVINO on an x86 CPU where it is installed, else ONNX Runtime (the choice and why are logged "
                     "and in /diagnostics). The bare node's default is torch, which needs no export and writes nothing "
                     "to the cache (a read-only disk, a first `ros2 run`); desktop.launch.py, config/desktop.yaml and "
                     "the CLI choose auto, orin.launch.py tensorrt", choices=BACKEND_CHOICES, read_only=True),
    "precision": Param("fp32", "numeric precision", choices=PRECISIONS, read_only=True),
    "device": Param("cpu", "torch/onnxruntime device: cpu, cuda, cuda:0", read_only=True),
    "weights": Param("auto", "auto (the shipped or cached checkpoint that covers network/size/variant/placement for "
                     "'dataset'), a checkpoint name (depth-attn weights list), a .pth file, or none (untrained, timing "
                     "only)", read_only=True),
    "dataset": Param("kitti", "what 'weights: auto' picks a checkpoint for: kitti | nyu", read_only=True),
    "allow_partial_weights": Param(False, "run even where the weights leave part of the network untrained (a base "
                                   "checkpoint for a variant); warns every 10 s", read_only=True),
    "backend_options": Param("", "extra backend options 'key=value; key=value', e.g. 'intra_op_threads=2; "
                             "providers=cuda,cpu' (see depth_attn/inference/backends)", read_only=True),
    "input_width": Param(0, "network input width in pixels; 0 = the checkpoint's", (0, 4096), read_only=True),
    "input_height": Param(0, "network input height in pixels; 0 = the checkpoint's", (0, 4096), read_only=True),
    "canonical_camera": Param(True, "map each frame into the network's training camera (its focal length, from "
                              "camera_info) so its metres hold for any lens and aspect; false: stretch every frame to "
                              "the input size (networks trained on this camera)"),
    "fit_input_to_camera": Param(False, "run the network at the smallest input size that holds the camera's view "
                                 "at the training focal length (chosen at its first frame, logged; one cached ONNX "
                                 "file or engine per size) instead of padding/cropping into the checkpoint's size; "
                                 "off: METER measured far worse at other sizes", read_only=True),
    "max_depth": Param(80.0, "largest depth in metres (clamp; colour scale); 0 = the checkpoint's", (0.0, 1000.0)),
    "depth_resolution": Param("camera", "camera: depth/image_rect on the camera's pixels; network: on the camera image "
                              "at the scale the network saw it (636x192 for KITTI and METER: 1/4 of the bytes to "
                              "publish and carry), with depth/camera_info, points and depth/image_color to match",
                              choices=("camera", "network")),
    "publish_cloud": Param(True, "publish the organised point cloud on 'points'"),
    "cloud_stride": Param(1, "keep every n-th pixel in each direction in the point cloud", (1, 32)),
    "cloud_rgb": Param(True, "XYZRGB (colour from the camera image) instead of XYZ"),
    "cloud_max_range": Param(0.0, "points farther than this from the camera (metres, straight-line) are NaN, so a "
                             "costmap gets the near field only; 0 = no cap", (0.0, 1000.0)),
    "publish_scan": Param(True, "publish a sensor_msgs/LaserScan on 'scan' (as depthimage_to_laserscan does)"),
    "scan_height": Param(10, "rows around the optical centre's row whose nearest depth makes each beam", (1, 4096)),
    "scan_stride": Param(1, "one beam every n-th column", (1, 32)),
    "scan_range_min": Param(0.3, "nearest range the scan reports (metres; closer beams are -inf)", (0.0, 1000.0)),
    "scan_range_max": Param(20.0, "farthest range the scan reports (metres; farther beams are +inf)", (0.01, 1000.0)),
    "scan_frame": Param("camera_link", "frame_id of the scan: a laser-convention frame (x forward, y left, z up) at "
                        "the camera's origin, beside its optical frame (depthimage_to_laserscan's output_frame)"),
    "publish_color": Param(True, "publish colour-mapped depth for people on 'depth/image_color'"),
    "lazy_outputs": Param(True, "build points, scan and depth/image_color only while someone subscribes to them"),
    "output_reliability": Param("reliable", "QoS reliability of the outputs: reliable (RViz, tools) | best_effort",
                                choices=("reliable", "best_effort"), read_only=True),
    "image_transport": Param("raw", "raw: subscribe 'image' (Image); compressed: 'image/compressed' (JPEG/PNG)",
                             choices=("raw", "compressed"), read_only=True),
    "camera_info_cache": Param(30, "camera infos kept for pairing with images by exact stamp", (1, 1000),
                               read_only=True),
    "camera_info_wait": Param(0.1, "seconds a frame waits for the camera info with its exact stamp (drivers "
                              "publish it just after the image), as image_transport's camera subscriber pairs them; "
                              "on time-out the newest camera info of its frame is used (counted, warned); 0 = no wait",
                              (0.0, 5.0)),
    "max_image_pixels": Param(50_000_000, "refuse an input image whose header declares more pixels, before decoding "
                              "it (a 1 MB PNG can decode to gigabytes); 0 = no limit", (0, 2_000_000_000)),
    "diagnostics_period": Param(1.0, "seconds between /diagnostics messages", (0.1, 60.0), read_only=True),
}
CHOICES = param_schema.choices_of(PARAMETERS)

# The node's settings: one frozen field per parameter, typed by its default. A set at run time
# replaces the whole object (dataclasses.replace), so the worker sees all of a change or none of it.
Settings = make_dataclass(
    "Settings", [(name, type(p.default)) for name, p in PARAMETERS.items()], frozen=True,
    namespace={"model": property(lambda s: ModelConfig(s.network, s.size, s.variant, s.placement),
                                 doc="the node's model identity")})


def check_parameter(name: str, value: object) -> Optional[str]:
    """Why ``value`` is not valid for parameter ``name`` (type, range, choices), or None."""
    return param_schema.check_value(PARAMETERS, name, value)


def parse_backend_options(text: str) -> Dict[str, object]:
    """'intra_op_threads=2; providers=cuda,cpu' -> {'intra_op_threads': 2, 'providers': 'cuda,cpu'}
    (values read as YAML scalars)."""
    try:
        return keyvalue.parse_assignments(text)
    except ValueError as exc:
        raise ValueError(f"backend_options: {exc}") from None


def declare_parameters(node) -> Settings:
    """Every parameter from ``PARAMETERS`` declared on ``node``: description, type, range and choices
    (the read-only ones are refused by ``run_time_changes`` while the node is configured, not by rclpy:
    a lifecycle node takes them while unconfigured); the values it was started with, checked."""
    values = param_schema.declare(node, PARAMETERS, _NET, enforce_read_only=False)
    settings = Settings(**values)
    problem = check_settings(settings)
    if problem:
        raise ValueError(problem)
    return settings


def check_settings(settings: Settings) -> Optional[str]:
    """Why parameters valid one by one are not valid together, or None."""
    if (settings.input_width == 0) != (settings.input_height == 0):
        return "set both input_width and input_height, or neither"
    if settings.scan_range_min >= settings.scan_range_max:
        return (f"scan_range_min ({settings.scan_range_min}) must be below scan_range_max "
                f"({settings.scan_range_max})")
    return None


def run_time_changes(parameters, configured: bool = True) -> Tuple[Dict[str, object], Optional[str]]:
    """A run-time set of rclpy ``Parameter`` s: the changes to this node's parameters (all valid), or
    why the set is refused (a read-only one while ``configured``, or an invalid one: then none
    applies). rclpy's own parameters (qos_overrides.*, use_sim_time) are left out."""
    return param_schema.run_time_changes(PARAMETERS, parameters,
                                         lambda name: configured or name == "autostart", _NET)


class ChangeLog:
    """The log lines of run-time changes: one per parameter per throttle period (a slider or a script
    may set hundreds a second), the changes not logged counted in the parameter's next line."""

    def __init__(self, logger, throttle) -> None:
        self._logger, self._throttle = logger, throttle
        self._unlogged: Counter = Counter()

    def said(self, changes: Dict[str, object]) -> None:
        for name in changes:
            self._unlogged[name] += 1
        parts = []
        for name in [name for name in changes if self._throttle(("parameter", name))]:
            skipped = self._unlogged.pop(name) - 1
            parts.append(f"{name}={changes[name]!r}" + (f" (after {skipped} changes not logged)" if skipped else ""))
        if parts:
            self._logger.info("set " + ", ".join(parts) + ": applies from the next frame")
