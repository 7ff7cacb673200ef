"""The depth node's per-frame outputs, one stage each: the depth image (with its camera info), the
organised point cloud, the laser scan and the colour-mapped depth. Each owns its publisher and its reused message
buffers, says whether it is wanted now (lazy: the cloud, scan and colour only while someone subscribes)
and returns the seconds its ``publish()`` calls took (rclpy's conversion, DDS serialisation and
transport)."""

from __future__ import annotations

import array
import time
from typing import Optional, Tuple

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2

from depth_attn.colormap import DepthColorizer
from depth_attn.geometry import Intrinsics
from depth_attn.laser_scan import depth_to_scan
from depth_attn.ros import convert, intra_process

# The outputs, as image_transport names a camera's: the depth image and its sibling camera_info.
DEPTH_TOPIC = "depth/image_rect"
COLOR_TOPIC = "depth/image_color"
POINTS_TOPIC = "points"
SCAN_TOPIC = "scan"


def output_qos(reliability: str) -> QoSProfile:
    """The outputs' QoS: ``reliable`` (RViz, tools) or ``best_effort``."""
    return QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                      else ReliabilityPolicy.BEST_EFFORT)


def _publisher(node, msg_type, topic: str, qos: QoSProfile):
    # the messages' buffers are reused frame after frame: in-process subscribers get copies
    return intra_process.create_publisher(node, msg_type, topic, qos, reuses_buffers=True)


def _timed_publish(publisher, msg) -> float:
    t_pub = time.perf_counter()
    publisher.publish(msg)
    return time.perf_counter() - t_pub


class _LazyStage:
    """An output built only while wanted: switched on by its parameter and, with ``lazy_outputs``,
    only while someone subscribes."""

    publisher = None

    def wanted(self, enabled: bool, lazy: bool) -> bool:
        return enabled and (not lazy or self.publisher.get_subscription_count() > 0)


class DepthStage:
    """``depth/image_rect`` (32FC1 metres), written in place by the estimator, and ``depth/camera_info``."""

    def __init__(self, node, qos: QoSProfile) -> None:
        self.publisher = _publisher(node, Image, DEPTH_TOPIC, qos)
        self.info_publisher = _publisher(node, CameraInfo, "depth/camera_info", qos)
        self._builder = convert.DepthImageBuilder()

    def buffer(self, height: int, width: int) -> np.ndarray:
        """The outgoing message's depth buffer (reused next frame, after this frame's publish)."""
        return self._builder.view(height, width)

    def publish(self, header) -> Tuple[float, float]:
        """The depth image with ``header``: the perf_counter() times its publish() began and ended."""
        msg = self._builder.message(header)
        t_pub = time.perf_counter()
        self.publisher.publish(msg)
        return t_pub, time.perf_counter()

    def publish_info(self, info: CameraInfo) -> None:
        self.info_publisher.publish(info)


class CloudStage(_LazyStage):
    """``points``: the organised point cloud, XYZ or XYZRGB, every ``cloud_stride``-th pixel."""

    def __init__(self, node, qos: QoSProfile) -> None:
        self.publisher = _publisher(node, PointCloud2, POINTS_TOPIC, qos)
        self._builder = convert.PointCloudBuilder()

    def publish(self, depth: np.ndarray, intrinsics: Intrinsics, header, stride: int,
                rgb: Optional[np.ndarray], max_range: float = 0.0) -> float:
        """The cloud of ``depth``, coloured from the camera image ``rgb`` (any size) when given: the
        seconds its publish() took."""
        if rgb is not None and rgb.shape[:2] != depth.shape[:2]:
            # bilinear, not area averaging: a point's colour needs no anti-aliasing, and INTER_AREA
            # at this non-integer factor cost more than the whole network-resolution cloud
            oh, ow = depth.shape[:2]
            rgb = cv2.resize(rgb, (ow, oh), interpolation=cv2.INTER_LINEAR)
        cloud = self._builder.build(depth, intrinsics, header, stride=stride, rgb=rgb,
                                    max_range=max_range if max_range > 0 else np.inf)
        return _timed_publish(self.publisher, cloud)


class ScanStage(_LazyStage):
    """``scan``: the depth's nearest range per column around the optical centre's row, as a LaserScan
    (``depth_attn.laser_scan``) in a laser-convention frame beside the optical one."""

    def __init__(self, node, qos: QoSProfile) -> None:
        self.publisher = _publisher(node, LaserScan, SCAN_TOPIC, qos)
        self._msg = LaserScan()

    def publish(self, depth: np.ndarray, intrinsics: Intrinsics, header, settings) -> float:
        """The scan of ``depth`` (with the intrinsics of that image): the seconds its publish() took."""
        s = settings
        layout, ranges = depth_to_scan(depth, intrinsics, s.scan_height, s.scan_range_min, s.scan_range_max,
                                       s.scan_stride)
        msg = self._msg
        msg.header.stamp = header.stamp
        msg.header.frame_id = s.scan_frame
        msg.angle_min, msg.angle_max = layout.angle_min, layout.angle_max
        msg.angle_increment = layout.angle_increment
        msg.range_min, msg.range_max = s.scan_range_min, s.scan_range_max
        msg.ranges = array.array("f", ranges.tobytes())
        return _timed_publish(self.publisher, msg)


class ColorStage(_LazyStage):
    """``depth/image_color`` (rgb8): the depth colour-mapped from 0 to the clamp, for people."""

    def __init__(self, node, qos: QoSProfile, max_depth: float) -> None:
        self.publisher = _publisher(node, Image, COLOR_TOPIC, qos)
        self._builder = convert.ImageBuilder("rgb8", np.uint8, 3)
        self.set_range(max_depth)

    def set_range(self, max_depth: float) -> None:
        self._colorizer = DepthColorizer(0.0, max_depth)  # = imageio.colorize_depth, faster

    def publish(self, depth: np.ndarray, header) -> float:
        """The colour image of ``depth``: the seconds its publish() took."""
        self._colorizer.colorize(depth, out=self._builder.view(*depth.shape[:2]))
        return _timed_publish(self.publisher, self._builder.message(header))


class Outputs:
    """All of the node's per-frame publishers, made at configure and destroyed at cleanup: the
    stages above and ``depth/timing`` (the publisher a ``FrameTiming`` fills)."""

    def __init__(self, node, reliability: str, max_depth: float) -> None:
        qos = output_qos(reliability)
        self.depth = DepthStage(node, qos)
        self.cloud = CloudStage(node, qos)
        self.scan = ScanStage(node, qos)
        self.color = ColorStage(node, qos, max_depth)
        self.timing_publisher = _publisher(node, DiagnosticArray, "depth/timing", qos)

    def destroy(self, node) -> None:
        for publisher in (self.depth.publisher, self.depth.info_publisher, self.cloud.publisher,
                          self.scan.publisher, self.color.publisher, self.timing_publisher):
            node.destroy_publisher(getattr(publisher, "dds_publisher", publisher))
