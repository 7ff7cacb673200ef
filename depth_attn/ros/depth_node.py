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

The node only wires its parts: ``depth_params`` (the parameter schema), ``depth_camera`` (pairing
images with camera infos), ``depth_outputs`` (the depth, cloud and colour stages) and
``depth_diagnostics`` (timing, rejected input, /diagnostics).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from depth_attn.encodings import EncodingError
from depth_attn.ros import convert, intra_process
from depth_attn.ros.depth_camera import CameraPairing
from depth_attn.ros.depth_diagnostics import (  # noqa: F401 (the node's API, imported from here)
    FRAME_TIMING_KEYS,
    STAGES,
    STALE_PERIODS,
    FrameHealth,
    FrameTiming,
    depth_status,
    reason_key,
    untrained_warning,
)
from depth_attn.ros.depth_outputs import COLOR_TOPIC, DEPTH_TOPIC, CloudStage, ColorStage, DepthStage, output_qos  # noqa: F401
from depth_attn.ros.depth_params import (  # noqa: F401 (the node's API, imported from here)
    CHOICES,
    PARAMETERS,
    Param,
    Settings,
    check_parameter,
    declare_parameters,
    parse_backend_options,
    run_time_changes,
)
from depth_attn.stream import FrameWorker, LatestSlot, Throttle, prefer_frame_latency


@dataclass
class Frame:
    msg: object  # Image or CompressedImage
    received: float  # time.perf_counter() at the callback
    received_ns: int = 0  # wall clock (time.time_ns(), as a restamping player stamps) at the callback


# Backends whose network is built in the background after the node is up (an engine takes minutes).
BACKGROUND_BUILD = ("tensorrt",)


class DepthNode(Node):
    """See the module docstring. ``estimator``: an already built ``DepthEstimator`` to use instead of
    building one from the parameters (tests, benchmarks)."""

    def __init__(self, node_name: str = "depth_node", estimator=None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.estimator = estimator
        self.build_error: Optional[str] = None  # why the background build failed
        self.build_started = time.monotonic()
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
        self._throttle = Throttle(5.0)
        self.health = FrameHealth(self.get_logger(), self._throttle)
        self.bad_input, self.errors = self.health.bad_input, self.health.errors
        self.pairing = CameraPairing(s.camera_info_cache, self.get_logger(), self._throttle, self.health.count_bad)
        self.camera_infos = self.pairing.infos
        self.frames_out = 0
        self._logged_view = None  # the canonical-camera mapping last said in the log
        self.processed = threading.Condition()  # notified after each answered frame

        out_qos = output_qos(s.output_reliability)
        self.depth_out = DepthStage(self, out_qos)
        self.cloud_out = CloudStage(self, out_qos)
        self.color_out = ColorStage(self, out_qos, s.max_depth or 80.0)
        self.pub_depth, self.pub_info = self.depth_out.publisher, self.depth_out.info_publisher
        self.pub_points, self.pub_color = self.cloud_out.publisher, self.color_out.publisher
        self.timing_out = FrameTiming(intra_process.create_publisher(
            self, DiagnosticArray, "depth/timing", out_qos, reuses_buffers=True), node_name)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

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
            self, CameraInfo, "camera_info", self.pairing.add, qos_profile_sensor_data,
            qos_overriding_options=overrides)
        self.pairing.topic_name = self.sub_info.topic_name
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

    @property
    def frames_without_info(self) -> int:
        return self.pairing.frames_without_info

    @property
    def _warned_distortion(self) -> bool:
        return self.pairing.warned_distortion

    @property
    def stats(self):
        return self.health.stats

    @property
    def last_stage_ms(self):
        return self.health.last_stage_ms

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
        self.color_out.set_range(self.estimator.max_depth)
        info = self.estimator.describe()
        took = time.monotonic() - self.build_started
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
        """Every parameter from ``PARAMETERS`` (``depth_params``); the ones that are not read-only go
        through ``_on_set_parameters`` at run time and apply on the next frame."""
        settings = declare_parameters(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        return settings

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """Run-time sets of the parameters that are not read-only: all of them apply on the next frame,
        or (one invalid) none of them."""
        changes, refused = run_time_changes(parameters)
        if refused:
            return SetParametersResult(successful=False, reason=refused)
        if changes:
            settings = dataclasses.replace(self.settings, **changes)
            if "max_depth" in changes and self.estimator is not None:
                self.estimator.max_depth = settings.max_depth or self._default_max_depth
                self.color_out.set_range(self.estimator.max_depth)
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
        self.health.last_image = time.monotonic()
        self.slot.put(Frame(msg, time.perf_counter(), time.time_ns()))

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
        paired = self.pairing.for_image(header, w, h)

        # The depth is written straight into the outgoing message's buffer (no copy); the buffer is
        # reused next frame, after this frame's publish() calls have copied it out. With the camera's
        # intrinsics the frame goes through the canonical camera (its metres hold for any lens).
        camera = paired[0] if paired is not None and s.canonical_camera else None
        at_network_scale = s.depth_resolution == "network"
        view = self.estimator.view_for(camera, (w, h))
        oh, ow = self.estimator.output_hw(view, at_network_scale)
        depth = self.estimator.estimate(rgb, out=self.depth_out.buffer(oh, ow), intrinsics=camera,
                                        at_network_scale=at_network_scale)
        timing = self.estimator.last_timing
        t_estimated = time.perf_counter()
        view = self.estimator.view
        if (oh, ow) != (h, w) and paired is not None:
            paired = self.pairing.at_output_scale(paired, (w, h), (oh, ow), self.estimator)
        if view is not None and view != self._logged_view:
            self._logged_view = view
            if camera is not None:
                self.get_logger().info(f"camera: {view.describe()}")

        t_pub, t_depth = self.depth_out.publish(header)
        publish_s = t_depth - t_pub
        in_ms = (frame.received_ns - convert.stamp_to_ns(header.stamp)) / 1e6
        # node_ms ends where the depth is handed to publish(): the publish itself (serialising, or an
        # in-process subscriber's callback) belongs to the hop out
        self.timing_out.publish(header, ((t_decoded - t0) * 1e3, timing.preprocess_ms, timing.network_ms,
                                         timing.postprocess_ms, in_ms, (t_pub - frame.received) * 1e3))

        t_cloud = t_depth
        if paired is not None:
            intrinsics, info_msg = paired
            self.depth_out.publish_info(info_msg)
            if self.cloud_out.wanted(s.publish_cloud, s.lazy_outputs):
                publish_s += self.cloud_out.publish(depth, intrinsics, header, s.cloud_stride,
                                                    rgb if s.cloud_rgb else None)
            t_cloud = time.perf_counter()
        t_color = t_cloud
        if self.color_out.wanted(s.publish_color, s.lazy_outputs):
            publish_s += self.color_out.publish(depth, header)
            t_color = time.perf_counter()
        t_end = time.perf_counter()

        self.health.frame_done({
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
        })
        with self.processed:
            self.frames_out += 1
            self.processed.notify_all()

    def _on_frame_error(self, frame: Frame, exc: BaseException) -> None:
        if isinstance(exc, (EncodingError, ValueError)):
            self.health.count_bad("image", exc)
        else:
            self.health.count_error(exc)

    # ------------------------------------------------------------ diagnostics

    def diagnostics(self) -> DiagnosticStatus:
        return depth_status(self)

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
