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
``points`` (capped at ``cloud_max_range``), ``scan`` (sensor_msgs/LaserScan, ``depth_attn.laser_scan``)
and ``depth/image_color`` are only built while someone subscribes.

A lifecycle node (``lifecycle_msgs`` get_state / change_state, as Nav2's lifecycle_manager drives it):
configure builds the network (a failure returns FAILURE and says why; set a corrected parameter and
configure again), activate subscribes to the camera, deactivate unsubscribes, cleanup releases the
network; ``autostart`` (default true) configures and activates at start. /diagnostics names the state.

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

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from depth_attn.encodings import EncodingError
from depth_attn.ros import convert, intra_process
from depth_attn.ros.depth_build import build_estimator, check_backend_available, resolve_backend
from depth_attn.ros.depth_camera import CameraPairing
from depth_attn.ros.depth_diagnostics import (  # noqa: F401 (the node's API, imported from here)
    FRAME_TIMING_KEYS,
    STAGES,
    STALE_PERIODS,
    FrameHealth,
    FrameTiming,
    depth_status,
    lifecycle_status,
    reason_key,
    untrained_warning,
)
from depth_attn.ros.depth_outputs import (  # noqa: F401 (the node's API, imported from here)
    COLOR_TOPIC,
    DEPTH_TOPIC,
    POINTS_TOPIC,
    SCAN_TOPIC,
    Outputs,
    output_qos,
)
from depth_attn.ros.depth_params import (  # noqa: F401 (the node's API, imported from here)
    CHOICES,
    PARAMETERS,
    ChangeLog,
    Param,
    Settings,
    check_parameter,
    check_settings,
    declare_parameters,
    parse_backend_options,
    run_time_changes,
)
from depth_attn.ros.sim_clock import warn_without_clock
from depth_attn.stream import FrameWorker, LatestSlot, Throttle, prefer_frame_latency


@dataclass
class Frame:
    msg: object  # Image or CompressedImage
    received: float  # time.perf_counter() at the callback
    received_ns: int = 0  # wall clock (time.time_ns(), as a restamping player stamps) at the callback


# Backends whose network is built in the background after the node is up (an engine takes minutes).
BACKGROUND_BUILD = ("tensorrt",)


class DepthNode(LifecycleNode):
    """See the module docstring. ``estimator``: an already built ``DepthEstimator`` to use instead of
    building one from the parameters at configure (tests, benchmarks; kept across cleanup)."""

    def __init__(self, node_name: str = "depth_node", estimator=None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._given_estimator = estimator
        self.estimator = None
        self.build_error: Optional[str] = None  # why the background build failed
        self.configure_error: Optional[str] = None  # why the last configure failed
        self.build_started = time.monotonic()
        self.lifecycle_state = "unconfigured"
        self.sub_image = self.sub_info = self.partial_timer = None
        self.worker: Optional[FrameWorker] = None
        self.outputs: Optional[Outputs] = None
        self.untrained_warning = ""
        try:
            self.settings = self._declare_parameters()
        except BaseException:
            self.destroy_node()  # nothing half-built stays in the graph
            raise
        self._default_max_depth = 80.0  # max_depth: 0 (the checkpoint's, once the network is built)
        # What runs the network (backend auto resolved at configure) and, for auto, "name: why".
        self.backend_name, self.auto_choice = self.settings.backend, ""
        self.frames_while_building = self.frames_out = 0
        self._logged_view = None  # the canonical-camera mapping last said in the log
        self.processed = threading.Condition()  # notified after each answered frame
        self.slot: LatestSlot[Frame] = LatestSlot()
        self._throttle = Throttle(5.0)
        self._change_log = ChangeLog(self.get_logger(), self._throttle)
        self.health = FrameHealth(self.get_logger(), self._throttle)
        self.bad_input, self.errors = self.health.bad_input, self.health.errors
        self._new_pairing()
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.diag_timer = self.create_timer(self.settings.diagnostics_period, self.publish_diagnostics)
        warn_without_clock(self)
        if self.settings.autostart:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                reason = self.configure_error or "configure failed"
                self.destroy_node()
                raise RuntimeError(reason)
            self.trigger_activate()
        else:
            self.get_logger().info("autostart is false: unconfigured, waiting for a lifecycle manager "
                                   f"({self.get_fully_qualified_name()}/change_state)")

    def _new_pairing(self) -> None:
        s, log = self.settings, self.get_logger()
        self.pairing = CameraPairing(s.camera_info_cache, log, self._throttle, self.health.count_bad)
        self.camera_infos = self.pairing.infos

    # ------------------------------------------------------------ lifecycle transitions

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Resolve the weights and build the backend (TensorRT: in the background); make the outputs."""
        s = self.settings
        self.build_started = time.monotonic()
        self.build_error = self.configure_error = None
        try:
            self.backend_name, self.auto_choice = resolve_backend(s, self.get_logger())
            background = self._given_estimator is None and self.backend_name in BACKGROUND_BUILD
            if self._given_estimator is not None:
                self.estimator = self._given_estimator
            elif background:
                check_backend_available(s, self.get_name(), self.backend_name)
            else:
                self.estimator = build_estimator(self.settings, self.get_name())
        except Exception as exc:  # the node stays up, unconfigured, and says why
            self.configure_error = str(exc)
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._new_pairing()
        self.outputs = o = Outputs(self, s.output_reliability, s.max_depth or 80.0)
        self.depth_out, self.cloud_out, self.scan_out, self.color_out = o.depth, o.cloud, o.scan, o.color
        self.pub_depth, self.pub_info, self.pub_points = o.depth.publisher, o.depth.info_publisher, o.cloud.publisher
        self.pub_scan, self.pub_color = o.scan.publisher, o.color.publisher
        self.timing_out = FrameTiming(o.timing_publisher, self.get_name())
        if self.diag_timer.timer_period_ns != int(s.diagnostics_period * 1e9):  # set while unconfigured
            self.destroy_timer(self.diag_timer)
            self.diag_timer = self.create_timer(s.diagnostics_period, self.publish_diagnostics)
        prefer_frame_latency()
        self.slot = LatestSlot()
        self.worker = FrameWorker(self.slot, self._process, self._on_frame_error, name=f"{self.get_name()}-worker")
        self.worker.start()
        if self.estimator is not None:
            self._estimator_ready()
        else:  # a TensorRT engine may take minutes to build: the node is up (and says so) meanwhile
            self.get_logger().info(
                f"building the {s.model.name} network on {self.backend_name} ({s.precision}) in the "
                "background (an engine not cached yet takes minutes); depth starts when it is ready")
            threading.Thread(target=self._build_in_background, name=f"{self.get_name()}-build", daemon=True).start()
        self.lifecycle_state = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera: frames flow and the outputs are published."""
        s = self.settings
        # Sensor-data QoS (best effort: any camera matches); qos_overrides.<topic>.subscription.reliability: reliable
        # makes it lossless (Fast DDS drops ~1 MB best-effort frames between processes).
        overrides = QoSOverridingOptions.with_default_policies()
        compressed = s.image_transport == "compressed"
        image_type, topic = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        self.sub_image = intra_process.create_subscription(self, image_type, topic, self._on_image,
                                                           qos_profile_sensor_data, qos_overriding_options=overrides)
        self.sub_info = intra_process.create_subscription(
            self, CameraInfo, "camera_info", self.pairing.add, qos_profile_sensor_data,
            qos_overriding_options=overrides)
        self.pairing.topic_name = self.sub_info.topic_name
        self.health.last_image = time.monotonic()  # STALE counts from here
        self.lifecycle_state = "active"
        self.get_logger().info(f"{s.model.name} on {self.backend_name} ({s.precision}): active, listening on "
                               f"{self.sub_image.topic_name} and {self.sub_info.topic_name}")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe from the camera (its publisher sees no subscriber: no bandwidth spent) and drop
        the frame waiting, if any."""
        self._unsubscribe()
        self.slot.take(timeout=0.0)
        self.lifecycle_state = "inactive"
        self.get_logger().info("inactive: camera subscriptions destroyed")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the network, its buffers and the outputs: back to unconfigured."""
        self.get_logger().info("cleanup: network and buffers released")
        return self._release()

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._release(unsubscribe=True, then="finalized")

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: release everything and go back to unconfigured."""
        return self._release(unsubscribe=True)

    def _unsubscribe(self) -> None:
        for subscription in (self.sub_image, self.sub_info):
            if subscription is not None:
                intra_process.destroy_subscription(self, subscription)
        self.sub_image = self.sub_info = None

    def _release(self, unsubscribe: bool = False, then: str = "unconfigured") -> TransitionCallbackReturn:
        if unsubscribe:
            self._unsubscribe()
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.outputs is not None:
            self.outputs.destroy(self)
            self.outputs = None
        if self.partial_timer is not None:
            self.destroy_timer(self.partial_timer)
            self.partial_timer = None
        self.estimator = None  # the network and its buffers go with it (a given estimator stays the caller's)
        self.untrained_warning = ""
        self.slot = LatestSlot()
        self.lifecycle_state = then
        return TransitionCallbackReturn.SUCCESS

    frames_without_info = property(lambda self: self.pairing.frames_without_info)
    _warned_distortion = property(lambda self: self.pairing.warned_distortion)
    stats = property(lambda self: self.health.stats)
    last_stage_ms = property(lambda self: self.health.last_stage_ms)

    def _build_in_background(self) -> None:
        try:
            estimator = build_estimator(self.settings, self.get_name())
        except Exception as exc:  # the node stays up and says why (diagnostics ERROR), as at a start
            self.build_error = str(exc)
            self.get_logger().error(f"cannot start: {exc}")
            return
        if self.worker is None:  # cleaned up while building
            return
        self.estimator = estimator
        self._estimator_ready()

    def _estimator_ready(self) -> None:
        """What needs the built network: max depth, the start line, the untrained warning."""
        s = self.settings
        self._default_max_depth = self.estimator.output_scale  # max_depth 0: the network's largest depth
        self.color_out.set_range(self.estimator.max_depth)
        info = self.estimator.describe()
        took = time.monotonic() - self.build_started
        self.get_logger().info(
            f"{info.get('model')} on {info.get('backend')} ({s.precision}), weights {info.get('weights')}, network "
            f"input {self.estimator.input_hw[1]}x{self.estimator.input_hw[0]} (ready in {took:.1f} s"
            + (f", {info['artefact']}" if info.get("artefact") else "") + ")")
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
        changes, refused = run_time_changes(parameters, configured=self.lifecycle_state != "unconfigured")
        if refused:
            return SetParametersResult(successful=False, reason=refused)
        changes = {name: value for name, value in changes.items() if getattr(self.settings, name) != value}
        if changes:  # (a set to the value it has changes nothing, and says nothing)
            settings = dataclasses.replace(self.settings, **changes)
            problem = check_settings(settings)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            if "max_depth" in changes and self.estimator is not None:
                self.estimator.max_depth = settings.max_depth or self._default_max_depth
                if hasattr(self, "color_out"):
                    self.color_out.set_range(self.estimator.max_depth)
            self.settings = settings  # one assignment: the worker reads self.settings once per frame
            self._change_log.said(changes)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------ callbacks (cheap: never block)

    def _on_image(self, msg) -> None:
        if self.lifecycle_state != "active":  # an in-flight delivery after deactivate
            return
        self.health.last_image = time.monotonic()
        self.slot.put(Frame(msg, time.perf_counter(), time.time_ns()))

    # ------------------------------------------------------------ the worker

    def _process(self, frame: Frame) -> None:
        s = self.settings
        if self.lifecycle_state != "active":  # deactivated while it waited: not answered
            return
        if self.estimator is None:  # still building (or failed): no depth yet
            self.frames_while_building += 1
            return
        msg = frame.msg
        header = msg.header
        t0 = time.perf_counter()
        rgb = convert.message_to_rgb(msg, s.max_image_pixels)
        t_decoded = time.perf_counter()
        h, w = rgb.shape[:2]
        paired = self.pairing.for_image(header, w, h, s.camera_info_wait)

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
                                                    rgb if s.cloud_rgb else None, s.cloud_max_range)
            if self.scan_out.wanted(s.publish_scan, s.lazy_outputs):
                publish_s += self.scan_out.publish(depth, intrinsics, header, s)
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
        """The depth status while active; otherwise the lifecycle state (and why configure failed)."""
        state = self.lifecycle_state
        status = depth_status(self) if state == "active" else lifecycle_status(self.get_name(), state,
                                                                                self.configure_error)
        status.values.append(KeyValue(key="lifecycle_state", value=state))
        return status

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
        if self.worker is not None:
            self.worker.stop()


def main(args=None) -> int:
    """`ros2 run depth_attn depth_node --ros-args -p backend:=onnxruntime -r image:=/camera/image_raw`."""
    from depth_attn.ros.node_main import run_node

    return run_node("depth_node", args)


if __name__ == "__main__":
    raise SystemExit(main())
