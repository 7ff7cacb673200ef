"""The depth node's per-frame outputs, one stage each: the depth image (with its camera info), the
organised point cloud and the colour-mapped depth. Each owns its publisher and its reused message
buffers, says whether it is wanted now (lazy: the cloud and the colour only while someone subscribes)
and returns the seconds its ``publish()`` calls took (rclpy's conversion, DDS serialisation and
transport)."""

from __future__ import annotations

import time
from typing import Optional, Tuple

import cv2
import numpy as np
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_attn.colormap import DepthColorizer
from depth_attn.geometry import Intrinsics
from depth_attn.ros import convert, intra_process

# The outputs, as image_transport names a camera's: the depth image and its sibling camera_info.
DEPTH_TOPIC = "depth/image_rect"
COLOR_TOPIC = "depth/image_color"


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
        self.publisher = _publisher(node, PointCloud2, "points", qos)
        self._builder = convert.PointCloudBuilder()

    def publish(self, depth: np.ndarray, intrinsics: Intrinsics, header, stride: int,
                rgb: Optional[np.ndarray]) -> float:
        """The cloud of ``depth``, coloured from the camera image ``rgb`` (any size) when given: the
        seconds its publish() took."""
        if rgb is not None and rgb.shape[:2] != depth.shape[:2]:
            # bilinear, not area averaging: a point's colour needs no anti-aliasing, and INTER_AREA
            # at this non-integer factor cost more than the whole network-resolution cloud
            oh, ow = depth.shape[:2]
            rgb = cv2.resize(rgb, (ow, oh), interpolation=cv2.INTER_LINEAR)
        cloud = self._builder.build(depth, intrinsics, header, stride=stride, rgb=rgb)
        return _timed_publish(self.publisher, cloud)


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
