"""Writing rosbag2 files (MCAP or sqlite3) with ``rosbags``: the messages kitti2bag writes, built
from numpy, and :class:`BagWriter`. No ROS install needed."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from depth_attn import encodings
from depth_attn.data.bag_common import (
    CLOUD_TYPE,
    COMPRESSED_TYPE,
    IMAGE_TYPE,
    INFO_TYPE,
    STORAGES,
    TF_TYPE,
    BagError,
    typestore,
)


def _header(stamp_ns: int, frame_id: str):
    ts = typestore()
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    stamp = Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))
    return Header(stamp=stamp, frame_id=frame_id)


def image_message(stamp_ns: int, frame_id: str, array: np.ndarray, encoding: str):
    """sensor_msgs/Image of an (H, W[, C]) array already in ``encoding``'s layout (rgb8, 32FC1, ...)."""
    Image = typestore().types[IMAGE_TYPE]
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    data = array.view(np.uint8).reshape(-1)
    return Image(header=_header(stamp_ns, frame_id), height=h, width=w, encoding=encoding, is_bigendian=0,
                 step=int(array.strides[0]), data=data)


def compressed_image_message(stamp_ns: int, frame_id: str, rgb: np.ndarray, fmt: str = "jpeg"):
    """sensor_msgs/CompressedImage (JPEG or PNG) of an RGB image, encoded by ``encodings``."""
    CompressedImage = typestore().types[COMPRESSED_TYPE]
    try:
        data = encodings.encode_compressed(rgb, fmt)
    except encodings.EncodingError as exc:
        raise BagError(str(exc)) from exc
    # image_transport's format string: original encoding; codec + the encoding it holds
    return CompressedImage(header=_header(stamp_ns, frame_id), format=f"rgb8; {fmt} compressed bgr8",
                           data=np.frombuffer(data, dtype=np.uint8).copy())


def camera_info_message(stamp_ns: int, frame_id: str, p_rect: np.ndarray, image_wh: Tuple[int, int]):
    """CameraInfo of a rectified image: K = left 3x3 of P, no distortion, R = identity (the image is
    already rectified), P = the rectified projection (with its baseline column)."""
    ts = typestore()
    CameraInfo = ts.types[INFO_TYPE]
    RegionOfInterest = ts.types["sensor_msgs/msg/RegionOfInterest"]
    p = np.asarray(p_rect, dtype=np.float64).reshape(3, 4)
    return CameraInfo(
        header=_header(stamp_ns, frame_id), height=int(image_wh[1]), width=int(image_wh[0]),
        distortion_model="plumb_bob", d=np.zeros(5), k=p[:, :3].reshape(-1).copy(), r=np.eye(3).reshape(-1),
        p=p.reshape(-1).copy(), binning_x=0, binning_y=0,
        roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def pointcloud_message(stamp_ns: int, frame_id: str, points: np.ndarray):
    """Unorganised XYZI PointCloud2 (float32 x, y, z, intensity)."""
    ts = typestore()
    PointCloud2 = ts.types[CLOUD_TYPE]
    PointField = ts.types["sensor_msgs/msg/PointField"]
    points = np.ascontiguousarray(points[:, :4], dtype=np.float32)
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, n in enumerate(("x", "y", "z", "intensity"))]
    return PointCloud2(header=_header(stamp_ns, frame_id), height=1, width=len(points), fields=fields,
                       is_bigendian=False, point_step=16, row_step=16 * len(points),
                       data=points.view(np.uint8).reshape(-1), is_dense=True)


def quaternion_xyzw(rotation: np.ndarray) -> Tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a rotation matrix (Shepperd's method)."""
    m = np.asarray(rotation, dtype=np.float64)
    u, _, vt = np.linalg.svd(m)  # nearest proper rotation: calibration matrices are rounded
    m = u @ vt
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
        q = tuple(q)
    return tuple(float(v) for v in q)  # type: ignore[return-value]


def _transform_stamped(stamp_ns: int, parent: str, child: str, transform: np.ndarray):
    types = typestore().types
    x, y, z, w = quaternion_xyzw(transform[:3, :3])
    t = transform[:3, 3]
    return types["geometry_msgs/msg/TransformStamped"](
        header=_header(stamp_ns, parent),
        child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
            rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        ),
    )


def tf_static_message(stamp_ns: int, parent: str, child: str, transform: np.ndarray,
                      *more: Tuple[str, str, np.ndarray]):
    """Static transforms: ``transform`` (4x4) maps points of ``child`` into ``parent``; ``more`` adds
    further (parent, child, transform) triples to the same message."""
    triples = [(parent, child, transform), *more]
    return typestore().types[TF_TYPE](transforms=[_transform_stamped(stamp_ns, p, c, t) for p, c, t in triples])


class BagWriter:
    """A rosbag2 being written; connections are created on first use; ``custom_data`` (strings) goes
    into metadata.yaml. Use as a context manager. The bag is written aside (a hidden folder beside
    ``path``) and moved into place only when the ``with`` block ends without an exception: a run that
    fails half-way leaves nothing that looks like a bag (and an ``overwrite``-n bag stays until then)."""

    def __init__(self, path: Path, storage: str = "mcap", overwrite: bool = False,
                 custom_data: Optional[Mapping[str, str]] = None) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise BagError(f"storage must be one of {STORAGES}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise BagError(f"{self.path} exists; choose another --out or pass --overwrite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._aside = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=self.path.parent))
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self._aside / self.path.name, version=8, storage_plugin=plugin)
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(str(key), str(value))
        self._connections: Dict[str, object] = {}
        self.counts: Dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        try:
            self._writer.open()
        except BaseException:
            shutil.rmtree(self._aside, ignore_errors=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._writer.close()
            if exc_type is None:
                if self.path.exists():  # overwrite: the old bag goes only now that the new one is whole
                    shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
                (self._aside / self.path.name).rename(self.path)
        finally:
            shutil.rmtree(self._aside, ignore_errors=True)

    def write(self, topic: str, msg, stamp_ns: int) -> None:
        ts = typestore()
        msgtype = msg.__msgtype__
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=ts)
        self._writer.write(self._connections[topic], int(stamp_ns), ts.serialize_cdr(msg, msgtype))
        self.counts[topic] = self.counts.get(topic, 0) + 1
