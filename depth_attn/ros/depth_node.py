"""depth_node: camera image in; metric depth, its camera info, an organised point cloud, colour depth
and diagnostics out. A thin shell over ``DepthEstimator``, ``depth_attn.geometry`` and
``depth_attn.stream``.

Topics (relative, remap them): in ``image`` (sensor_msgs/Image) or ``image/compressed``
(CompressedImage) with ``image_transport: compressed``, and ``camera_info``, all with sensor-data
QoS; out ``depth`` (32FC1 metres, NaN = no estimate, camera resolution), ``depth/camera_info``,
``points`` (PointCloud2), ``depth/color`` (rgb8), ``depth/timing`` (DiagnosticArray: this frame's
decode/preprocess/network/postprocess milliseconds, published just before ``depth``) and
``/diagnostics``. Every per-frame output carries the input image's header.
``points`` and ``depth/color`` are only built while someone subscribes.

Callbacks only put the newest frame into a one-frame slot; one worker thread runs the network. A
frame arriving while the worker is busy replaces the waiting one and is counted as dropped.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_attn.colormap import DepthColorizer
from depth_attn.encodings import EncodingError
from depth_attn.geometry import Intrinsics
from depth_attn.inference.backends.base import BACKENDS, PRECISIONS
from depth_attn.models.registry import NETWORKS, PLACEMENTS, SIZES, VARIANTS
from depth_attn.ros import convert
from depth_attn.stream import (
    FrameWorker,
    LatestSlot,
    RateMeter,
    RollingStats,
    StampCache,
    Throttle,
    prefer_frame_latency,
)

CHOICES = {
    "network": NETWORKS,
    "size": SIZES,
    "variant": VARIANTS,
    "placement": PLACEMENTS,
    "backend": BACKENDS,
    "precision": PRECISIONS,
    "output_reliability": ("reliable", "best_effort"),
    "image_transport": ("raw", "compressed"),
}

# name: (default, description, range (lo, hi) or None). Types follow the defaults.
PARAMETERS: Dict[str, Tuple[object, str, Optional[Tuple[float, float]]]] = {
    "network": ("meter", "depth network: meter | pixelformer | newcrfs", None),
    "size": ("tiny", "network size: tiny | base | large", None),
    "variant": ("base", "attention variant: base | meta | pyra | moh", None),
    "placement": ("full", "where the variant goes: full | encoder | decoder", None),
    "backend": ("torch", "what runs the network: torch | onnxruntime | tensorrt", None),
    "precision": ("fp32", "numeric precision: fp32 | fp16 | int8", None),
    "device": ("cpu", "torch/onnxruntime device: cpu, cuda, cuda:0", None),
    "weights": ("meter-xxs-kitti", "checkpoint name (depth-attn weights list) or .pth file; '' = untrained", None),
    "backend_options": ("", "extra backend options 'key=value; key=value', e.g. 'intra_op_threads=2; "
                        "providers=cuda,cpu' (see depth_attn/inference/backends)", None),
    "input_width": (0, "network input width in pixels; 0 = the checkpoint's", (0, 4096)),
    "input_height": (0, "network input height in pixels; 0 = the checkpoint's", (0, 4096)),
    "max_depth": (80.0, "largest depth in metres (clamp; colour scale); 0 = the checkpoint's", (0.0, 1000.0)),
    "publish_cloud": (True, "publish the organised point cloud on 'points'", None),
    "cloud_stride": (1, "keep every n-th pixel in each direction in the point cloud", (1, 32)),
    "cloud_rgb": (True, "XYZRGB (colour from the camera image) instead of XYZ", None),
    "publish_color": (True, "publish colour-mapped depth for people on 'depth/color'", None),
    "lazy_outputs": (True, "build points and depth/color only while someone subscribes to them", None),
    "output_reliability": ("reliable", "QoS reliability of the outputs: reliable (RViz, tools) | best_effort", None),
    "image_transport": ("raw", "raw: subscribe 'image' (Image); compressed: 'image/compressed' (JPEG/PNG)", None),
    "camera_info_cache": (30, "camera infos kept for pairing with images by exact stamp", (1, 1000)),
    "diagnostics_period": (1.0, "seconds between /diagnostics messages", (0.1, 60.0)),
}


@dataclass
class Settings:
    network: str
    size: str
    variant: str
    placement: str
    backend: str
    precision: str
    device: str
    weights: str
    backend_options: str
    input_width: int
    input_height: int
    max_depth: float
    publish_cloud: bool
    cloud_stride: int
    cloud_rgb: bool
    publish_color: bool
    lazy_outputs: bool
    output_reliability: str
    image_transport: str
    camera_info_cache: int
    diagnostics_period: float


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


# per-frame timings (ms): cloud and color include their publish; publish = time inside the
# publish() calls of depth, points and depth/color (rclpy's conversion, DDS serialisation and transport)
FRAME_TIMING_KEYS = ("decode_ms", "preprocess_ms", "network_ms", "postprocess_ms")
STAGES = ("decode", "preprocess", "network", "postprocess", "depth_msg", "cloud", "color", "publish", "total",
          "latency")


class DepthNode(Node):
    """See the module docstring. ``estimator``: an already built ``DepthEstimator`` to use instead of
    building one from the parameters (tests, benchmarks)."""

    def __init__(self, node_name: str = "depth_node", estimator=None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        try:
            self.settings = self._declare_parameters()
            self.estimator = estimator if estimator is not None else self._build_estimator()
        except BaseException:
            self.destroy_node()  # nothing half-built stays in the graph
            raise
        s = self.settings

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
        self._info_cache: Optional[tuple] = None  # (key, camera info in, intrinsics, camera info out)
        self._cloud = convert.PointCloudBuilder()
        self._depth = convert.DepthImageBuilder()
        self._color = convert.ImageBuilder("rgb8", np.uint8, 3)
        self._colorizer = DepthColorizer(0.0, self.estimator.max_depth)  # = imageio.colorize_depth, faster
        self.processed = threading.Condition()  # notified after each answered frame

        out_qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE if s.output_reliability == "reliable"
                             else ReliabilityPolicy.BEST_EFFORT)
        self.pub_depth = self.create_publisher(Image, "depth", out_qos)
        self.pub_info = self.create_publisher(CameraInfo, "depth/camera_info", out_qos)
        self.pub_points = self.create_publisher(PointCloud2, "points", out_qos)
        self.pub_color = self.create_publisher(Image, "depth/color", out_qos)
        self.pub_timing = self.create_publisher(DiagnosticArray, "depth/timing", out_qos)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timing_status = DiagnosticStatus(level=DiagnosticStatus.OK, name=f"{node_name}: timing",
                                               values=[KeyValue(key=k) for k in FRAME_TIMING_KEYS])

        # Sensor-data QoS (best effort), which any camera matches; the standard ROS 2 QoS overrides
        # (qos_overrides.<topic>.subscription.reliability: reliable) make it lossless, e.g. for a bag
        # replay in another process (Fast DDS drops best-effort frames of ~1 MB between processes).
        overrides = QoSOverridingOptions.with_default_policies()
        if s.image_transport == "compressed":
            self.sub_image = self.create_subscription(CompressedImage, "image/compressed", self._on_image,
                                                      qos_profile_sensor_data, qos_overriding_options=overrides)
        else:
            self.sub_image = self.create_subscription(Image, "image", self._on_image, qos_profile_sensor_data,
                                                      qos_overriding_options=overrides)
        self.sub_info = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info,
                                                 qos_profile_sensor_data, qos_overriding_options=overrides)
        self.diag_timer = self.create_timer(s.diagnostics_period, self.publish_diagnostics)

        prefer_frame_latency()
        self.worker = FrameWorker(self.slot, self._process, self._on_frame_error, name=f"{node_name}-worker")
        self.worker.start()
        info = self.estimator.describe()
        self.get_logger().info(
            f"{info.get('model')} on {info.get('backend')} ({s.precision}), weights {info.get('weights')}, network "
            f"input {self.estimator.input_hw[1]}x{self.estimator.input_hw[0]}; listening on "
            f"{self.sub_image.topic_name} and {self.sub_info.topic_name}")

    # ------------------------------------------------------------ setup

    def _declare_parameters(self) -> Settings:
        values = {}
        for name, (default, text, bounds) in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=text)
            if name in CHOICES:
                descriptor.additional_constraints = "one of: " + ", ".join(CHOICES[name])
            if bounds is not None and isinstance(default, int) and not isinstance(default, bool):
                descriptor.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]), step=1)]
            elif bounds is not None:
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(bounds[0]),
                                                                      to_value=float(bounds[1]), step=0.0)]
            try:
                values[name] = self.declare_parameter(name, default, descriptor).value
            except Exception as exc:  # wrong type or out of range in YAML / --set
                kind = {bool: "a bool (true/false)", int: "an integer", float: "a double (e.g. 80.0)",
                        str: "a string"}[type(default)]
                raise ValueError(f"parameter {name!r} must be {kind}"
                                 + (f" in [{bounds[0]}, {bounds[1]}]" if bounds else "") + f": {exc}") from None
            if name in CHOICES and values[name] not in CHOICES[name]:
                raise ValueError(f"parameter {name!r} is {values[name]!r}; choose one of {', '.join(CHOICES[name])}")
        if (values["input_width"] == 0) != (values["input_height"] == 0):
            raise ValueError("set both input_width and input_height, or neither")
        return Settings(**values)

    def _build_estimator(self):
        from depth_attn.inference import DepthEstimator, EstimatorConfig

        s = self.settings
        config = EstimatorConfig(
            network=s.network, size=s.size, variant=s.variant, placement=s.placement, weights=s.weights or None,
            backend=s.backend, precision=s.precision, device=s.device,
            input_hw=(s.input_height, s.input_width) if s.input_width else None,
            max_depth=s.max_depth or None, backend_options=parse_backend_options(s.backend_options),
        )
        try:
            return DepthEstimator(config)
        except Exception as exc:
            alternatives = [b for b in ("onnxruntime", "torch") if b != s.backend]
            raise RuntimeError(
                f"{self.get_name()}: cannot start {s.network}/{s.size}/{s.variant} on backend {s.backend!r} "
                f"({s.precision}, {s.device}): {exc}. Fix that, or start the node on another backend: "
                f"backend:={' or backend:='.join(alternatives)}."
            ) from exc

    # ------------------------------------------------------------ callbacks (cheap: never block)

    def _on_image(self, msg) -> None:
        self.slot.put(Frame(msg, time.perf_counter()))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            convert.camera_info_to_intrinsics(msg, rectified=True)
            if not np.any(np.asarray(msg.k)):
                raise ValueError("camera_info K is all zeros")
            if msg.width == 0 or msg.height == 0:
                raise ValueError(f"camera_info has a zero size {msg.width}x{msg.height}")
        except ValueError as exc:
            self._count_bad("camera_info", exc)
            return
        self.camera_infos.add(convert.stamp_to_ns(msg.header.stamp), msg.header.frame_id, msg)

    # ------------------------------------------------------------ the worker

    def _process(self, frame: Frame) -> None:
        s = self.settings
        msg = frame.msg
        header = msg.header
        t0 = time.perf_counter()
        rgb = convert.message_to_rgb(msg)
        t_decoded = time.perf_counter()
        h, w = rgb.shape[:2]

        # The depth is written straight into the outgoing message's buffer (no copy); the buffer is
        # reused next frame, after this frame's publish() calls have copied it out.
        depth = self.estimator.estimate(rgb, out=self._depth.view(h, w))
        timing = self.estimator.last_timing
        t_estimated = time.perf_counter()

        self._publish_timing(header, (t_decoded - t0) * 1e3, timing)
        publish_s = 0.0
        depth_msg = self._depth.message(header)
        t_pub = time.perf_counter()
        self.pub_depth.publish(depth_msg)
        t_depth = time.perf_counter()
        publish_s += t_depth - t_pub

        paired = self._intrinsics_for(header, w, h)
        t_cloud = t_depth
        if paired is not None:
            intrinsics, info_msg = paired
            self.pub_info.publish(info_msg)
            if s.publish_cloud and self._wanted(self.pub_points):
                cloud = self._cloud.build(depth, intrinsics, header, stride=s.cloud_stride,
                                          rgb=rgb if s.cloud_rgb else None)
                t_pub = time.perf_counter()
                self.pub_points.publish(cloud)
                publish_s += time.perf_counter() - t_pub
            t_cloud = time.perf_counter()
        t_color = t_cloud
        if s.publish_color and self._wanted(self.pub_color):
            self._colorizer.colorize(depth, out=self._color.view(h, w))
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

    def _publish_timing(self, header, decode_ms: float, timing) -> None:
        """This frame's timings, stamped like its depth, so an evaluator pairs them exactly."""
        values = (decode_ms, timing.preprocess_ms, timing.network_ms, timing.postprocess_ms)
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
            k = convert.camera_info_to_intrinsics(info, rectified=True)
            if (info.width, info.height) == (width, height):
                out = CameraInfo(width=width, height=height, distortion_model=info.distortion_model, d=info.d,
                                 k=info.k, r=info.r, p=info.p, binning_x=info.binning_x, binning_y=info.binning_y,
                                 roi=info.roi)
            else:
                k = k.resized((info.width, info.height), (width, height))
                out = convert.make_camera_info(k, width, height, D=info.d, distortion_model=info.distortion_model)
            self._info_cache = (key, info, k, out)  # holding info keeps its id unique
        _, _, k, out = self._info_cache
        out.header = header
        return k, out

    def _on_frame_error(self, frame: Frame, exc: BaseException) -> None:
        if isinstance(exc, (EncodingError, ValueError)):
            self._count_bad("image", exc)
        else:
            self.errors[type(exc).__name__] += 1
            if self._throttle(("error", type(exc).__name__)):
                self.get_logger().error(f"frame failed ({type(exc).__name__}): {exc}; carrying on with the next")

    def _count_bad(self, kind: str, exc: BaseException) -> None:
        self.bad_input[kind] += 1
        if self._throttle(("bad", kind, str(exc)[:40])):
            self.get_logger().warning(f"bad {kind} ignored ({self.bad_input[kind]} so far): {exc}")

    # ------------------------------------------------------------ diagnostics

    def diagnostics(self) -> DiagnosticStatus:
        info = self.estimator.describe()
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
            "input_hw": "x".join(str(v) for v in self.estimator.input_hw),
        }
        for label, pct in (("network_ms", net), ("total_ms", total), ("latency_ms", latency)):
            for q, v in pct.items():
                values[f"{label}_{q}"] = f"{v:.2f}"
        level = DiagnosticStatus.OK
        message = "running"
        if self.frames_out == 0:
            level, message = DiagnosticStatus.WARN, "waiting for images"
        elif self.errors:
            level, message = DiagnosticStatus.WARN, "frames failed, see log"
        return DiagnosticStatus(level=level, name=f"{self.get_name()}: depth", message=message,
                                hardware_id=str(info.get("device", info.get("backend"))),
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])

    def publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostics()]
        self.pub_diag.publish(msg)

    def wait_processed(self, count: int, timeout: float) -> bool:
        """Block until ``frames_out >= count`` (tests, benchmarks)."""
        with self.processed:
            return self.processed.wait_for(lambda: self.frames_out >= count, timeout)

    def close(self) -> None:
        self.worker.stop()


def main(args=None) -> int:
    """`ros2 run depth_attn depth_node --ros-args -p backend:=onnxruntime -r image:=/camera/image_raw`."""
    import sys

    from rclpy.executors import SingleThreadedExecutor

    try:
        from rclpy.executors import ExternalShutdownException
    except ImportError:  # older rclpy
        ExternalShutdownException = RuntimeError  # noqa: N806

    from depth_attn.ros.stop_signals import StopSignals

    stop = StopSignals().install()  # before rclpy.init: Ctrl-C/SIGTERM end spin(), repeats are ignored
    rclpy.init(args=args)
    try:
        node = DepthNode()
    except Exception as exc:  # one clear message, no traceback
        if stop.received is None:  # (stopped while starting: nothing to report)
            print(f"[depth_node] FATAL: {exc}", file=sys.stderr)
        if rclpy.ok():
            rclpy.shutdown()
        stop.ignore_from_now()
        return 0 if stop.received is not None else 1
    executor = SingleThreadedExecutor()  # callbacks only hand work to the node's thread
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        node.destroy_node()
        executor.shutdown()
        if rclpy.ok():
            rclpy.shutdown()
        stop.ignore_from_now()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
