"""depth_node: camera image in; metric depth, its camera info, an organised point cloud, colour depth
and diagnostics out. A thin shell over ``DepthEstimator``, ``depth_attn.geometry`` and
``depth_attn.stream``.

Topics (relative, remap them): in ``image`` (sensor_msgs/Image, rectified: remap it to the camera's
``image_rect``) or ``image/compressed`` (CompressedImage) with ``image_transport: compressed``, and
``camera_info``, all with sensor-data QoS; out ``depth/image_rect`` (32FC1 metres, NaN = no estimate,
camera resolution) with its sibling ``depth/camera_info`` (so image_transport's camera subscribers,
depth_image_proc and RViz, pair them without remapping), ``points`` (PointCloud2),
``depth/image_color`` (rgb8), ``depth/timing`` (DiagnosticArray: this frame's
decode/preprocess/network/postprocess milliseconds, published just before the depth) and
``/diagnostics``. Every per-frame output carries the input image's header.
``points`` and ``depth/image_color`` are only built while someone subscribes.

Callbacks only put the newest frame into a one-frame slot; one worker thread runs the network. A
frame arriving while the worker is busy replaces the waiting one and is counted as dropped.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, make_dataclass
from typing import Dict, NamedTuple, Optional, Tuple

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_attn.colormap import DepthColorizer
from depth_attn.encodings import EncodingError
from depth_attn.geometry import Intrinsics
from depth_attn.inference.backends.base import BACKENDS, PRECISIONS
from depth_attn.models.registry import NETWORKS, PLACEMENTS, SIZES, VARIANTS
from depth_attn.ros import convert, intra_process
from depth_attn.stream import (
    FrameWorker,
    LatestSlot,
    RateMeter,
    RollingStats,
    StampCache,
    Throttle,
    prefer_frame_latency,
)


class Param(NamedTuple):
    """One node parameter, declared once: its default (which gives its type), description, range,
    choices and whether it is fixed at start (read-only: what the network is and how the node is
    wired) or applies on the next frame when set at run time."""

    default: object
    description: str
    bounds: Optional[Tuple[float, float]] = None
    choices: Optional[Tuple[str, ...]] = None
    read_only: bool = False


_NET = "fixed at start: restart the node to change it"

PARAMETERS: Dict[str, Param] = {
    "network": Param("meter", "depth network", choices=NETWORKS, read_only=True),
    "size": Param("tiny", "network size", choices=SIZES, read_only=True),
    "variant": Param("base", "attention variant", choices=VARIANTS, read_only=True),
    "placement": Param("full", "where the variant goes", choices=PLACEMENTS, read_only=True),
    "backend": Param("torch", "what runs the network", choices=BACKENDS, read_only=True),
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
    "publish_color": Param(True, "publish colour-mapped depth for people on 'depth/image_color'"),
    "lazy_outputs": Param(True, "build points and depth/image_color only while someone subscribes to them"),
    "output_reliability": Param("reliable", "QoS reliability of the outputs: reliable (RViz, tools) | best_effort",
                                choices=("reliable", "best_effort"), read_only=True),
    "image_transport": Param("raw", "raw: subscribe 'image' (Image); compressed: 'image/compressed' (JPEG/PNG)",
                             choices=("raw", "compressed"), read_only=True),
    "camera_info_cache": Param(30, "camera infos kept for pairing with images by exact stamp", (1, 1000),
                               read_only=True),
    "diagnostics_period": Param(1.0, "seconds between /diagnostics messages", (0.1, 60.0), read_only=True),
}
CHOICES = {name: p.choices for name, p in PARAMETERS.items() if p.choices}

# The node's settings: one frozen field per parameter, typed by its default. A set at run time
# replaces the whole object (dataclasses.replace), so the worker sees all of a change or none of it.
Settings = make_dataclass("Settings", [(name, type(p.default)) for name, p in PARAMETERS.items()], frozen=True)


def check_parameter(name: str, value: object) -> Optional[str]:
    """Why ``value`` is not valid for parameter ``name`` (type, range, choices), or None."""
    p = PARAMETERS[name]
    kind = type(p.default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        word = {bool: "a bool (true/false)", int: "an integer", float: "a double (e.g. 80.0)", str: "a string"}[kind]
        return f"parameter {name!r} must be {word}, got {value!r}"
    if p.bounds is not None and not (p.bounds[0] <= value <= p.bounds[1]):
        return f"parameter {name!r} must be in [{p.bounds[0]}, {p.bounds[1]}], got {value!r}"
    if p.choices is not None and value not in p.choices:
        return f"parameter {name!r} is {value!r}; choose one of {', '.join(p.choices)}"
    return None


def reason_key(exc: BaseException) -> str:
    """The kind of bad input an error reports, which its warning is rate-limited by: the error's ``kind``
    where it names one, else its whole message with the numbers masked (so fx=1e-300 and fx=2e-300 are
    one kind, and a NaN in K does not hide an all-zero P)."""
    kind = getattr(exc, "kind", None)
    if kind:
        return str(kind)
    return type(exc).__name__ + ": " + re.sub(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", "#", str(exc))


def untrained_warning(estimator) -> str:
    """What the node says (WARN) when it publishes depth from a network that is not (fully) trained."""
    name = estimator.model_config.name
    if estimator.weights_path is None:
        return (f"{name} runs UNTRAINED (weights: none): its depth is meaningless; use it for timing only, or set "
                "weights: auto")
    if estimator.coverage_gaps:
        gaps = len(estimator.coverage_gaps)
        return (f"{name} runs with weights {estimator.weights_name} that do not cover it ({gaps} "
                "tensors untrained, allow_partial_weights is set): its depth is not trustworthy")
    return ""


def parse_backend_options(text: str) -> Dict[str, object]:
    """'intra_op_threads=2; providers=cuda,cpu' -> {'intra_op_threads': 2, 'providers': 'cuda,cpu'}
    (values read as YAML scalars)."""
    import yaml

    options: Dict[str, object] = {}
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"backend_options: expected key=value, got {item!r}")
        try:
            parsed = yaml.safe_load(value.strip())
        except yaml.YAMLError:
            parsed = value.strip()
        options[key.strip()] = value.strip() if isinstance(parsed, (list, dict)) or parsed is None else parsed
    return options


@dataclass
class Frame:
    msg: object  # Image or CompressedImage
    received: float  # time.perf_counter() at the callback
    received_ns: int = 0  # wall clock (time.time_ns(), as a restamping player stamps) at the callback


# per-frame timings (ms): cloud and color include their publish; publish = time inside the
# publish() calls of depth, points and depth/image_color (rclpy's conversion, DDS serialisation and transport)
# depth/timing, one message per frame after its depth: the stages, and where its latency went: in_ms =
# image stamp -> this node's callback (camera/player, transport, executor), node_ms = callback -> depth
# handed to publish()
FRAME_TIMING_KEYS = ("decode_ms", "preprocess_ms", "network_ms", "postprocess_ms", "in_ms", "node_ms")
STAGES = ("decode", "preprocess", "network", "postprocess", "depth_msg", "cloud", "color", "publish", "total",
          "latency")


# The outputs, as image_transport names a camera's: the depth image and its sibling camera_info.
DEPTH_TOPIC = "depth/image_rect"
COLOR_TOPIC = "depth/image_color"

# Backends whose network is built in the background after the node is up (an engine takes minutes).
BACKGROUND_BUILD = ("tensorrt",)

# /diagnostics goes STALE after this many periods without an image.
STALE_PERIODS = 5


class DepthNode(Node):
    """See the module docstring. ``estimator``: an already built ``DepthEstimator`` to use instead of
    building one from the parameters (tests, benchmarks)."""

    def __init__(self, node_name: str = "depth_node", estimator=None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.estimator = estimator
        self.build_error: Optional[str] = None  # why the background build failed
        self._build_started = time.monotonic()
        try:
            self.settings = self._declare_parameters()
            background = estimator is None and self.settings.backend in BACKGROUND_BUILD
            if estimator is None and not background:
                self.estimator = self._build_estimator()
            elif background:
                self._check_backend_available()  # what can fail at once (no TensorRT, no GPU) still does
        except BaseException:
            self.destroy_node()  # nothing half-built stays in the graph
            raise
        s = self.settings
        self._default_max_depth = 80.0  # max_depth: 0 (the checkpoint's, once the network is built)
        self.frames_while_building = 0

        self.slot: LatestSlot[Frame] = LatestSlot()
        self.camera_infos: StampCache[CameraInfo] = StampCache(s.camera_info_cache)
        self.stats = {name: RollingStats(300) for name in STAGES}
        self.rate = RateMeter(5.0)
        self.bad_input: Counter = Counter()
        self.errors: Counter = Counter()
        self.frames_out = 0
        self.frames_without_info = 0
        self.last_stage_ms: Dict[str, float] = {}
        self._throttle = Throttle(5.0)
        self._warned_fallback = False
        self._warned_distortion = False
        self._last_image = time.monotonic()  # (start: STALE after STALE_PERIODS reports without an image)
        self._reported = (0, 0)  # bad inputs and failures counted at the last diagnostics report
        self._last_bad_reason = ""
        self._logged_view = None  # the canonical-camera mapping last said in the log
        self._info_cache: Optional[tuple] = None  # (key, camera info in, intrinsics, camera info out)
        self._output_info_cache: Optional[tuple] = None  # the same at the network's scale (depth_resolution)
        self._cloud = convert.PointCloudBuilder()
        self._depth = convert.DepthImageBuilder()
        self._color = convert.ImageBuilder("rgb8", np.uint8, 3)
        self._colorizer = DepthColorizer(0.0, s.max_depth or 80.0)  # = imageio.colorize_depth, faster
        self.processed = threading.Condition()  # notified after each answered frame

        out_qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE if s.output_reliability == "reliable"
                             else ReliabilityPolicy.BEST_EFFORT)
        # the messages' buffers are reused frame after frame: in-process subscribers get copies
        self.pub_depth = intra_process.create_publisher(self, Image, DEPTH_TOPIC, out_qos, reuses_buffers=True)
        self.pub_info = intra_process.create_publisher(self, CameraInfo, "depth/camera_info", out_qos,
                                                       reuses_buffers=True)
        self.pub_points = intra_process.create_publisher(self, PointCloud2, "points", out_qos, reuses_buffers=True)
        self.pub_color = intra_process.create_publisher(self, Image, COLOR_TOPIC, out_qos, reuses_buffers=True)
        self.pub_timing = intra_process.create_publisher(self, DiagnosticArray, "depth/timing", out_qos,
                                                         reuses_buffers=True)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timing_status = DiagnosticStatus(level=DiagnosticStatus.OK, name=f"{node_name}: timing",
                                               values=[KeyValue(key=k) for k in FRAME_TIMING_KEYS])

        # Sensor-data QoS (best effort), which any camera matches; the standard ROS 2 QoS overrides
        # (qos_overrides.<topic>.subscription.reliability: reliable) make it lossless, e.g. for a bag
        # replay in another process (Fast DDS drops best-effort frames of ~1 MB between processes).
        overrides = QoSOverridingOptions.with_default_policies()
        if s.image_transport == "compressed":
            self.sub_image = intra_process.create_subscription(
                self, CompressedImage, "image/compressed", self._on_image, qos_profile_sensor_data,
                qos_overriding_options=overrides)
        else:
            self.sub_image = intra_process.create_subscription(
                self, Image, "image", self._on_image, qos_profile_sensor_data, qos_overriding_options=overrides)
        self.sub_info = intra_process.create_subscription(
            self, CameraInfo, "camera_info", self._on_camera_info, qos_profile_sensor_data,
            qos_overriding_options=overrides)
        self.diag_timer = self.create_timer(s.diagnostics_period, self.publish_diagnostics)

        prefer_frame_latency()
        self.worker = FrameWorker(self.slot, self._process, self._on_frame_error, name=f"{node_name}-worker")
        self.worker.start()
        self.untrained_warning = ""
        if self.estimator is not None:
            self._estimator_ready()
        else:  # a TensorRT engine may take minutes to build: the node is up (and says so) meanwhile
            self.get_logger().info(
                f"building the {s.network}/{s.size}/{s.variant} network on {s.backend} ({s.precision}) in the "
                f"background (an engine not cached yet takes minutes); listening on {self.sub_image.topic_name} "
                f"and {self.sub_info.topic_name}, depth starts when it is ready")
            self._build_thread = threading.Thread(target=self._build_in_background, name=f"{node_name}-build",
                                                  daemon=True)
            self._build_thread.start()

    def _build_in_background(self) -> None:
        try:
            estimator = self._build_estimator()
        except Exception as exc:  # the node stays up and says why (diagnostics ERROR), as at a start
            self.build_error = str(exc)
            self.get_logger().error(f"cannot start: {exc}")
            return
        self.estimator = estimator
        self._estimator_ready()

    def _estimator_ready(self) -> None:
        """What needs the built network: max depth, the start line, the untrained warning."""
        s = self.settings
        ckpt = getattr(self.estimator, "checkpoint", None)
        self._default_max_depth = ckpt.max_depth_m if ckpt else 80.0
        self._colorizer = DepthColorizer(0.0, self.estimator.max_depth)
        info = self.estimator.describe()
        took = time.monotonic() - self._build_started
        self.get_logger().info(
            f"{info.get('model')} on {info.get('backend')} ({s.precision}), weights {info.get('weights')}, network "
            f"input {self.estimator.input_hw[1]}x{self.estimator.input_hw[0]} (ready in {took:.1f} s"
            + (f", {info['artefact']}" if info.get("artefact") else "") + f"); listening on "
            f"{self.sub_image.topic_name} and {self.sub_info.topic_name}")
        self.untrained_warning = untrained_warning(self.estimator)
        if self.untrained_warning:
            self.get_logger().warning(self.untrained_warning)
            if self.estimator.coverage_gaps:  # partial weights on purpose: keep saying so
                self.partial_timer = self.create_timer(
                    10.0, lambda: self.get_logger().warning(self.untrained_warning))

    # ------------------------------------------------------------ setup

    def _declare_parameters(self) -> Settings:
        """Every parameter from ``PARAMETERS``: description, type, range, choices and read-only flag.
        Read-only ones are refused at run time by rclpy ("Trying to set a read-only parameter");
        the others go through ``_on_set_parameters`` and apply on the next frame."""
        values = {}
        for name, p in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=p.description + (f" ({_NET})" if p.read_only else ""),
                                             read_only=p.read_only)
            if p.choices:
                descriptor.additional_constraints = "one of: " + ", ".join(p.choices)
            if p.bounds is not None and isinstance(p.default, int) and not isinstance(p.default, bool):
                descriptor.integer_range = [IntegerRange(from_value=int(p.bounds[0]), to_value=int(p.bounds[1]),
                                                         step=1)]
            elif p.bounds is not None:
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(p.bounds[0]),
                                                                      to_value=float(p.bounds[1]), step=0.0)]
            try:
                values[name] = self.declare_parameter(name, p.default, descriptor).value
            except Exception as exc:  # wrong type or out of range in YAML / --set
                raise ValueError(f"{check_parameter(name, None)}: {exc}".replace(", got None", "")) from None
            problem = check_parameter(name, values[name])
            if problem:
                raise ValueError(problem)
        if (values["input_width"] == 0) != (values["input_height"] == 0):
            raise ValueError("set both input_width and input_height, or neither")
        self.add_on_set_parameters_callback(self._on_set_parameters)
        return Settings(**values)

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """Run-time sets of the parameters that are not read-only: all of them apply on the next frame,
        or (one invalid) none of them."""
        changes = {}
        for param in parameters:
            if param.name not in PARAMETERS:
                continue  # rclpy's own (qos_overrides.*, use_sim_time)
            if PARAMETERS[param.name].read_only:
                return SetParametersResult(successful=False, reason=f"{param.name} is {_NET}")
            value = param.value
            if isinstance(value, int) and not isinstance(value, bool) and isinstance(PARAMETERS[param.name].default,
                                                                                     float):
                value = float(value)
            problem = check_parameter(param.name, value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            changes[param.name] = value
        if changes:
            settings = dataclasses.replace(self.settings, **changes)
            if "max_depth" in changes and self.estimator is not None:
                self.estimator.max_depth = settings.max_depth or self._default_max_depth
                self._colorizer = DepthColorizer(0.0, self.estimator.max_depth)
            self.settings = settings  # one assignment: the worker reads self.settings once per frame
            self.get_logger().info("set " + ", ".join(f"{k}={v!r}" for k, v in changes.items())
                                   + ": applies from the next frame")
        return SetParametersResult(successful=True)

    def _build_estimator(self):
        from depth_attn.inference import DepthEstimator, EstimatorConfig

        s = self.settings
        config = EstimatorConfig(
            network=s.network, size=s.size, variant=s.variant, placement=s.placement, weights=s.weights or None,
            dataset=s.dataset, allow_partial_weights=s.allow_partial_weights,
            backend=s.backend, precision=s.precision, device=s.device,
            input_hw=(s.input_height, s.input_width) if s.input_width else None,
            max_depth=s.max_depth or None, backend_options=parse_backend_options(s.backend_options),
            fit_input_to_camera=s.fit_input_to_camera,
        )
        try:
            return DepthEstimator(config)
        except Exception as exc:
            from depth_attn.weights import WeightsError

            if isinstance(exc, WeightsError):  # another backend would not help: say what would
                text = str(exc).rstrip(".")
                fix = "" if ("weights import" in text or "Fix:" in text) else (
                    ". Fix: weights:=auto (or the checkpoint that covers this configuration, see `depth-attn weights "
                    "list`), or bring a file in with `depth-attn weights import NAME FILE`")
                raise RuntimeError(
                    f"{self.get_name()}: cannot load weights {s.weights!r} for {s.network}/{s.size}/{s.variant}: "
                    f"{text}{fix}."
                ) from exc
            raise self._backend_error(exc) from exc

    def _backend_error(self, exc: Exception) -> RuntimeError:
        """The network cannot run on the chosen backend here: say so and name the ones that might."""
        s = self.settings
        alternatives = [b for b in ("onnxruntime", "torch") if b != s.backend]
        return RuntimeError(
            f"{self.get_name()}: cannot start {s.network}/{s.size}/{s.variant} on backend {s.backend!r} "
            f"({s.precision}, {s.device}): {exc}. Fix that, or start the node on another backend: "
            f"backend:={' or backend:='.join(alternatives)}."
        )

    def _check_backend_available(self) -> None:
        s = self.settings
        if s.backend != "tensorrt":
            return
        try:
            from depth_attn.inference.backends import tensorrt_backend

            tensorrt_backend.import_tensorrt()
            tensorrt_backend.gpu_identity(s.device)
        except Exception as exc:
            raise self._backend_error(exc) from exc

    # ------------------------------------------------------------ callbacks (cheap: never block)

    def _on_image(self, msg) -> None:
        self._last_image = time.monotonic()
        self.slot.put(Frame(msg, time.perf_counter(), time.time_ns()))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            convert.check_camera_info(msg)
        except ValueError as exc:
            self._count_bad("camera_info", exc)
            return
        if not self._warned_distortion and any(msg.d):
            self._warned_distortion = True
            self.get_logger().warning(
                f"camera_info on {self.sub_info.topic_name} has a non-zero distortion D={list(msg.d)}: this node "
                "expects rectified images (image_rect, e.g. from image_proc's rectify node) and projects with P; "
                "an unrectified image gives bent point clouds")
        self.camera_infos.add(convert.stamp_to_ns(msg.header.stamp), msg.header.frame_id, msg)

    # ------------------------------------------------------------ the worker

    def _process(self, frame: Frame) -> None:
        s = self.settings
        if self.estimator is None:  # still building (or failed): no depth yet
            self.frames_while_building += 1
            return
        msg = frame.msg
        header = msg.header
        t0 = time.perf_counter()
        rgb = convert.message_to_rgb(msg)
        t_decoded = time.perf_counter()
        h, w = rgb.shape[:2]
        paired = self._intrinsics_for(header, w, h)

        # The depth is written straight into the outgoing message's buffer (no copy); the buffer is
        # reused next frame, after this frame's publish() calls have copied it out. With the camera's
        # intrinsics the frame goes through the canonical camera (its metres hold for any lens).
        camera = paired[0] if paired is not None and s.canonical_camera else None
        at_network_scale = s.depth_resolution == "network"
        view = self.estimator.view_for(camera, (w, h))
        oh, ow = self.estimator.output_hw(view, at_network_scale)
        depth = self.estimator.estimate(rgb, out=self._depth.view(oh, ow), intrinsics=camera,
                                        at_network_scale=at_network_scale)
        timing = self.estimator.last_timing
        t_estimated = time.perf_counter()
        view = self.estimator.view
        if (oh, ow) != (h, w) and paired is not None:
            paired = self._output_camera(paired, (w, h), (oh, ow))
        if view is not None and view != self._logged_view:
            self._logged_view = view
            if camera is not None:
                self.get_logger().info(f"camera: {view.describe()}")

        publish_s = 0.0
        depth_msg = self._depth.message(header)
        t_pub = time.perf_counter()
        self.pub_depth.publish(depth_msg)
        t_depth = time.perf_counter()
        publish_s += t_depth - t_pub
        in_ms = (frame.received_ns - convert.stamp_to_ns(header.stamp)) / 1e6
        # node_ms ends where the depth is handed to publish(): the publish itself (serialising, or an
        # in-process subscriber's callback) belongs to the hop out
        self._publish_timing(header, (t_decoded - t0) * 1e3, timing, in_ms, (t_pub - frame.received) * 1e3)

        t_cloud = t_depth
        if paired is not None:
            intrinsics, info_msg = paired
            self.pub_info.publish(info_msg)
            if s.publish_cloud and self._wanted(self.pub_points):
                colours = None
                if s.cloud_rgb:
                    # bilinear, not area averaging: a point's colour needs no anti-aliasing, and INTER_AREA
                    # at this non-integer factor cost more than the whole network-resolution cloud
                    colours = rgb if (oh, ow) == (h, w) else cv2.resize(rgb, (ow, oh), interpolation=cv2.INTER_LINEAR)
                cloud = self._cloud.build(depth, intrinsics, header, stride=s.cloud_stride, rgb=colours)
                t_pub = time.perf_counter()
                self.pub_points.publish(cloud)
                publish_s += time.perf_counter() - t_pub
            t_cloud = time.perf_counter()
        t_color = t_cloud
        if s.publish_color and self._wanted(self.pub_color):
            self._colorizer.colorize(depth, out=self._color.view(oh, ow))
            t_pub = time.perf_counter()
            self.pub_color.publish(self._color.message(header))
            t_color = time.perf_counter()
            publish_s += t_color - t_pub
        t_end = time.perf_counter()

        stage_ms = {
            "decode": (t_decoded - t0) * 1e3,
            "preprocess": timing.preprocess_ms,
            "network": timing.network_ms,
            "postprocess": timing.postprocess_ms,
            "depth_msg": (t_depth - t_estimated) * 1e3,
            "cloud": (t_cloud - t_depth) * 1e3,
            "color": (t_color - t_cloud) * 1e3,
            "publish": publish_s * 1e3,
            "total": (t_end - t0) * 1e3,
            "latency": (t_end - frame.received) * 1e3,
        }
        for name, value in stage_ms.items():
            self.stats[name].add(value)
        self.last_stage_ms = stage_ms
        self.rate.tick()
        with self.processed:
            self.frames_out += 1
            self.processed.notify_all()

    def _publish_timing(self, header, decode_ms: float, timing, in_ms: float, node_ms: float) -> None:
        """This frame's timings, stamped like its depth, so an evaluator pairs them exactly."""
        values = (decode_ms, timing.preprocess_ms, timing.network_ms, timing.postprocess_ms, in_ms, node_ms)
        for key_value, value in zip(self._timing_status.values, values, strict=True):
            key_value.value = f"{value:.3f}"
        self.pub_timing.publish(DiagnosticArray(header=header, status=[self._timing_status]))

    def _wanted(self, publisher) -> bool:
        return not self.settings.lazy_outputs or publisher.get_subscription_count() > 0

    def _intrinsics_for(self, header, width: int, height: int) -> Optional[Tuple[Intrinsics, CameraInfo]]:
        """The intrinsics and the depth image's camera info (with the image's header), from the camera
        info with the image's exact stamp, else the newest one of the same frame (one warning); scaled
        when the camera info describes another resolution than the image."""
        match = self.camera_infos.match(convert.stamp_to_ns(header.stamp), header.frame_id)
        if match.item is None:
            self.frames_without_info += 1
            if self._throttle("no_info"):
                self.get_logger().warning(
                    f"no camera_info for frame '{header.frame_id}' on {self.sub_info.topic_name} yet: publishing "
                    f"depth only (no points, no depth/camera_info)")
            return None
        if not match.exact and self.camera_infos.consecutive_fallbacks >= 5 and not self._warned_fallback:
            self._warned_fallback = True
            self.get_logger().warning(
                "camera_info stamps do not match the image stamps; using the latest camera_info of frame "
                f"'{header.frame_id}' for every image")
        info = match.item
        key = (id(info), width, height)
        if self._info_cache is None or self._info_cache[0] != key:  # a new camera info: convert it once
            k = convert.camera_info_to_intrinsics(info, rectified=True)  # binning and roi applied
            info_wh = convert.camera_info_image_size(info)
            if info_wh == (width, height):  # the depth is on the image's pixels: the same camera info
                out = CameraInfo(width=width, height=height, distortion_model=info.distortion_model, d=info.d,
                                 k=info.k, r=info.r, p=info.p, binning_x=info.binning_x, binning_y=info.binning_y,
                                 roi=info.roi)
            else:
                k = k.resized(info_wh, (width, height))
                out = convert.make_camera_info(k, width, height, D=info.d, distortion_model=info.distortion_model)
            self._info_cache = (key, info, k, out)  # holding info keeps its id unique
        _, _, k, out = self._info_cache
        out.header = header
        return k, out

    def _output_camera(self, paired: Tuple[Intrinsics, CameraInfo], camera_wh: Tuple[int, int],
                       output_hw: Tuple[int, int]) -> Tuple[Intrinsics, CameraInfo]:
        """The intrinsics and camera info of depth published at the network's scale (``output_hw``):
        the camera's scaled to that grid (converted once per camera info and size)."""
        k, info = paired
        key = (id(info), camera_wh, output_hw)
        if self._output_info_cache is None or self._output_info_cache[0] != key:
            out_k = self.estimator.output_intrinsics(k, camera_wh, output_hw)
            out = convert.make_camera_info(out_k, output_hw[1], output_hw[0], D=info.d,
                                           distortion_model=info.distortion_model)
            self._output_info_cache = (key, info, out_k, out)  # holding info keeps its id unique
        _, _, out_k, out = self._output_info_cache
        out.header = info.header
        return out_k, out

    def _on_frame_error(self, frame: Frame, exc: BaseException) -> None:
        if isinstance(exc, (EncodingError, ValueError)):
            self._count_bad("image", exc)
        else:
            self.errors[type(exc).__name__] += 1
            if self._throttle(("error", type(exc).__name__)):
                self.get_logger().error(f"frame failed ({type(exc).__name__}): {exc}; carrying on with the next")

    def _count_bad(self, kind: str, exc: BaseException) -> None:
        self._last_bad_reason = f"bad {kind}: {exc}"
        self.bad_input[kind] += 1
        if self._throttle(("bad", kind, reason_key(exc))):
            self.get_logger().warning(f"bad {kind} ignored ({self.bad_input[kind]} so far): {exc}")

    # ------------------------------------------------------------ diagnostics

    def diagnostics(self) -> DiagnosticStatus:
        estimator = self.estimator
        s = self.settings
        info = estimator.describe() if estimator is not None else {
            "model": f"{s.network}-{s.size}-{s.variant}-{s.placement}", "weights": s.weights, "backend": s.backend,
            "device": s.device}
        net = self.stats["network"].percentiles()
        total = self.stats["total"].percentiles()
        latency = self.stats["latency"].percentiles()
        values = {
            "rate_hz": f"{self.rate.rate():.2f}",
            "frames_received": str(self.slot.received),
            "frames_published": str(self.frames_out),
            "frames_dropped": str(self.slot.dropped),
            "pending_max": str(self.slot.max_pending),
            "bad_images": str(self.bad_input["image"]),
            "bad_camera_infos": str(self.bad_input["camera_info"]),
            "processing_errors": str(sum(self.errors.values())),
            "frames_without_camera_info": str(self.frames_without_info),
            "camera_info_fallbacks": str(self.camera_infos.fallbacks),
            "model": str(info.get("model")),
            "weights": str(info.get("weights")),
            "backend": str(info.get("backend")),
            "precision": self.settings.precision,
            "input_hw": "x".join(str(v) for v in estimator.input_hw) if estimator is not None else "-",
            "frames_while_building": str(self.frames_while_building),
        }
        for label, pct in (("network_ms", net), ("total_ms", total), ("latency_ms", latency)):
            for q, v in pct.items():
                values[f"{label}_{q}"] = f"{v:.2f}"
        level = DiagnosticStatus.OK
        message = "running"
        # Since the last report: rejected input is an ERROR with its count and reason, failures a WARN;
        # no image for STALE_PERIODS reports is STALE. Each clears once the cause has gone.
        bad = sum(self.bad_input.values())
        failed = sum(self.errors.values())
        new_bad, new_failed = bad - self._reported[0], failed - self._reported[1]
        self._reported = (bad, failed)
        silent_s = time.monotonic() - self._last_image
        if new_bad:
            level = DiagnosticStatus.ERROR
            message = (f"{new_bad} input message(s) rejected since the last report ({bad} in all): "
                       f"{self._last_bad_reason}")
        elif new_failed:
            level, message = DiagnosticStatus.WARN, f"{new_failed} frame(s) failed since the last report, see log"
        elif silent_s > STALE_PERIODS * self.settings.diagnostics_period:
            level = DiagnosticStatus.STALE
            message = (f"no image on {self.sub_image.topic_name} for {silent_s:.1f} s" if self.slot.received
                       else f"no image on {self.sub_image.topic_name} yet ({silent_s:.1f} s since start)")
        if level != DiagnosticStatus.ERROR and getattr(self, "untrained_warning", ""):
            level, message = DiagnosticStatus.WARN, self.untrained_warning
        if estimator is None:  # building in the background, or failed to
            took = time.monotonic() - self._build_started
            if self.build_error:
                level, message = DiagnosticStatus.ERROR, f"cannot start: {self.build_error}"
            else:
                what = "engine" if s.backend == "tensorrt" else "network"
                level, message = DiagnosticStatus.WARN, f"building {what} ({took:.0f} s)"
        return DiagnosticStatus(level=level, name=f"{self.get_name()}: depth", message=message,
                                hardware_id=str(info.get("device", info.get("backend"))),
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])

    def publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostics()]
        try:
            self.pub_diag.publish(msg)
        except Exception:
            # Ctrl-C shuts the context down from the signal handler; a timer already due may still run
            # once after that (seen under `ros2 launch` with a second Ctrl-C): nothing to publish to.
            if self.context.ok():
                raise

    def wait_processed(self, count: int, timeout: float) -> bool:
        """Block until ``frames_out >= count`` (tests, benchmarks)."""
        with self.processed:
            return self.processed.wait_for(lambda: self.frames_out >= count, timeout)

    def close(self) -> None:
        self.worker.stop()


def main(args=None) -> int:
    """`ros2 run depth_attn depth_node --ros-args -p backend:=onnxruntime -r image:=/camera/image_raw`."""
    from depth_attn.ros.node_main import run_node

    return run_node(DepthNode, "depth_node", args)


if __name__ == "__main__":
    raise SystemExit(main())
