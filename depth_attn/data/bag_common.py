"""What every rosbag2 module shares: the topic and frame names kitti2bag writes, the message type
names, the error type and the ``rosbags`` type store (ROS 2 Humble message definitions, no ROS)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

IMAGE_TOPIC = "/kitti/camera_color_left/image_raw"
INFO_TOPIC = "/kitti/camera_color_left/camera_info"
GT_TOPIC = "/kitti/depth/ground_truth"
RIGHT_IMAGE_TOPIC = "/kitti/camera_color_right/image_raw"
RIGHT_INFO_TOPIC = "/kitti/camera_color_right/camera_info"
RIGHT_GT_TOPIC = "/kitti/depth/ground_truth_right"
VELO_TOPIC = "/kitti/velo/pointcloud"
TF_STATIC_TOPIC = "/tf_static"
CAMERA_FRAME = "kitti_camera_color_left_optical_frame"
RIGHT_CAMERA_FRAME = "kitti_camera_color_right_optical_frame"
VELO_FRAME = "kitti_velo_link"

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
TF_TYPE = "tf2_msgs/msg/TFMessage"
STORAGES = ("mcap", "sqlite3")

# custom_data keys of the bag's metadata.yaml that kitti2bag writes
STAMPS_KEY = "depth_attn.stamps"  # "recorded" (timestamps.txt) or "nominal" (a fixed rate from a fixed start)
RATE_KEY = "depth_attn.rate_hz"  # the rate of nominal stamps
SOURCE_KEY = "depth_attn.source"  # the folder the frames came from
GT_KEY = "depth_attn.ground_truth"  # where the ground truth came from


class BagError(RuntimeError):
    """A bag that cannot be read (missing, damaged, truncated) or written; the message names the file."""


_TYPESTORE = None


def typestore():
    """The rosbags type store of ROS 2 Humble (created once)."""
    from rosbags.typesys import Stores, get_typestore

    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
    return _TYPESTORE


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass(frozen=True)
class BagMessage:
    """One serialized message of a bag, as stored (CDR)."""

    topic: str
    msgtype: str
    log_time_ns: int
    rawdata: bytes

    def deserialize(self):
        return typestore().deserialize_cdr(self.rawdata, self.msgtype)


def storage_files(path: Path) -> List[Path]:
    """The .mcap / .db3 files of a bag folder (or the file itself)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
    return [path]
