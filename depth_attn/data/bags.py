"""rosbag2 files (MCAP or sqlite3) with ``rosbags``, no ROS install needed: one module per job, all
re-exported here so ``from depth_attn.data import bags`` keeps working.

=====================  ==========================================================================
``bag_common``         topic, frame and type names; ``BagError``; ``BagMessage``; the type store
``bag_writer``         messages from numpy (image, camera info, cloud, tf) and ``BagWriter``
``bag_reader``         topics, messages in log-time order, counts, metadata custom data
``bag_salvage``        what a damaged or cut-short MCAP file still holds
``restamp``            header stamps replaced in serialized messages (the player's restamp)
``frames``             image + ground truth + camera info of one stamp as numpy (via ``encodings``)
=====================  ==========================================================================
"""

from __future__ import annotations

from typing import Sequence

from depth_attn.data.bag_common import (
    CAMERA_FRAME,
    CLOUD_TYPE,
    COMPRESSED_TYPE,
    GT_KEY,
    GT_TOPIC,
    IMAGE_TOPIC,
    IMAGE_TYPE,
    INFO_TOPIC,
    INFO_TYPE,
    RATE_KEY,
    RIGHT_CAMERA_FRAME,
    RIGHT_GT_TOPIC,
    RIGHT_IMAGE_TOPIC,
    RIGHT_INFO_TOPIC,
    SOURCE_KEY,
    STAMPS_KEY,
    STORAGES,
    TF_STATIC_TOPIC,
    TF_TYPE,
    VELO_FRAME,
    VELO_TOPIC,
    BagError,
    BagMessage,
    stamp_to_ns,
    typestore,
)
from depth_attn.data.bag_reader import bag_custom_data, bag_topics, count_messages, iter_messages
from depth_attn.data.bag_writer import (
    BagWriter,
    camera_info_message,
    compressed_image_message,
    image_message,
    pointcloud_message,
    tf_static_message,
)
from depth_attn.data.frames import (
    BagFrame,
    camera_info_intrinsics,
    decode_depth,
    decode_rgb,
    find_image_topic,
    iter_frames,
    iter_images,
)
from depth_attn.data.restamp import restamp_cdr, stamp_of_cdr, starts_with_header

__all__: Sequence[str] = (
    "CAMERA_FRAME", "CLOUD_TYPE", "COMPRESSED_TYPE", "GT_KEY", "GT_TOPIC", "IMAGE_TOPIC", "IMAGE_TYPE",
    "INFO_TOPIC", "INFO_TYPE", "RATE_KEY", "RIGHT_CAMERA_FRAME", "RIGHT_GT_TOPIC", "RIGHT_IMAGE_TOPIC",
    "RIGHT_INFO_TOPIC", "SOURCE_KEY", "STAMPS_KEY", "STORAGES", "TF_STATIC_TOPIC", "TF_TYPE", "VELO_FRAME",
    "VELO_TOPIC", "BagError", "BagFrame", "BagMessage", "BagWriter", "bag_custom_data", "bag_topics",
    "camera_info_intrinsics", "camera_info_message", "compressed_image_message", "count_messages",
    "decode_depth", "decode_rgb", "find_image_topic", "image_message", "iter_frames", "iter_images",
    "iter_messages", "pointcloud_message", "restamp_cdr", "stamp_of_cdr", "starts_with_header", "stamp_to_ns",
    "tf_static_message", "typestore",
)
