"""rosbag2 files (MCAP or sqlite3) written and read with ``rosbags``: no ROS install needed.

Reading is damage-tolerant: a bag cut short (a recorder that died, a copy that stopped) yields every
message before the damage and then raises :class:`BagError` naming the file, so callers keep what
they processed so far.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from depth_attn.geometry import Intrinsics

IMAGE_TOPIC = "/kitti/camera_color_left/image_raw"
INFO_TOPIC = "/kitti/camera_color_left/camera_info"
GT_TOPIC = "/kitti/depth/ground_truth"
VELO_TOPIC = "/kitti/velo/pointcloud"
TF_STATIC_TOPIC = "/tf_static"
CAMERA_FRAME = "kitti_camera_color_left_optical_frame"
VELO_FRAME = "kitti_velo_link"

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
TF_TYPE = "tf2_msgs/msg/TFMessage"
STORAGES = ("mcap", "sqlite3")


class BagError(RuntimeError):
    """A bag that cannot be read (missing, damaged, truncated) or written; the message names the file."""


def typestore():
    from rosbags.typesys import Stores, get_typestore

    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
    return _TYPESTORE


_TYPESTORE = None


# ----------------------------------------------------------------------------------------------
# Messages (rosbags types) from numpy: what kitti2bag writes


def _header(stamp_ns: int, frame_id: str):
    ts = typestore()
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    stamp = Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))
    return Header(stamp=stamp, frame_id=frame_id)


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_message(stamp_ns: int, frame_id: str, array: np.ndarray, encoding: str):
    Image = typestore().types[IMAGE_TYPE]
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    data = array.view(np.uint8).reshape(-1)
    return Image(header=_header(stamp_ns, frame_id), height=h, width=w, encoding=encoding, is_bigendian=0,
                 step=int(array.strides[0]), data=data)


def compressed_image_message(stamp_ns: int, frame_id: str, rgb: np.ndarray, fmt: str = "jpeg"):
    CompressedImage = typestore().types[COMPRESSED_TYPE]
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise BagError(f"cannot encode a {fmt} image")
    # image_transport's format string: original encoding; codec + the encoding it holds
    return CompressedImage(header=_header(stamp_ns, frame_id), format=f"rgb8; {fmt} compressed bgr8",
                           data=np.asarray(buf, dtype=np.uint8).reshape(-1))


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


def _quaternion_xyzw(rotation: np.ndarray) -> Tuple[float, float, float, float]:
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


def tf_static_message(stamp_ns: int, parent: str, child: str, transform: np.ndarray):
    """One static transform: ``transform`` (4x4) maps points of ``child`` into ``parent``."""
    ts = typestore()
    types = ts.types
    x, y, z, w = _quaternion_xyzw(transform[:3, :3])
    t = transform[:3, 3]
    stamped = types["geometry_msgs/msg/TransformStamped"](
        header=_header(stamp_ns, parent),
        child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
            rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        ),
    )
    return types[TF_TYPE](transforms=[stamped])


# ----------------------------------------------------------------------------------------------
# numpy from messages (rosbags types): what offline evaluation reads


def decode_rgb(msg) -> np.ndarray:
    """An Image or CompressedImage message -> HxWx3 uint8 RGB."""
    from rosbags.image import message_to_cvimage

    if hasattr(msg, "format"):
        bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BagError(f"cannot decode a compressed image ({msg.format!r})")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        return np.ascontiguousarray(message_to_cvimage(msg, "rgb8"))
    except Exception as exc:  # rosbags raises its own error types for unknown encodings
        raise BagError(f"cannot convert a {msg.encoding!r} image to rgb8: {exc}") from exc


def decode_depth(msg) -> np.ndarray:
    """A 32FC1 (metres, NaN = none) or 16UC1 (millimetres, 0 = none) depth Image -> float32 metres, NaN = none."""
    h, w = int(msg.height), int(msg.width)
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if msg.encoding == "32FC1":
        dtype = np.dtype(">f4" if msg.is_bigendian else "<f4")
        depth = np.lib.stride_tricks.as_strided(raw.view(dtype), (h, w), (int(msg.step), 4)).astype(np.float32)
    elif msg.encoding in ("16UC1", "mono16"):
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        mm = np.lib.stride_tricks.as_strided(raw.view(dtype), (h, w), (int(msg.step), 2)).astype(np.float32)
        depth = np.where(mm > 0, mm / np.float32(1000.0), np.float32(np.nan))
    else:
        raise BagError(f"depth images must be 32FC1 or 16UC1, got {msg.encoding!r}")
    return depth


def camera_info_intrinsics(msg) -> Intrinsics:
    """The projection a depth node uses for a rectified image: P (K if P is empty)."""
    p = np.asarray(msg.p, dtype=np.float64)
    return Intrinsics.from_matrix(p if p.any() else np.asarray(msg.k, dtype=np.float64))


# ----------------------------------------------------------------------------------------------
# Writing


class BagWriter:
    """A rosbag2 being written; connections are created on first use. Use as a context manager."""

    def __init__(self, path: Path, storage: str = "mcap", overwrite: bool = False) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise BagError(f"storage must be one of {STORAGES}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            if not overwrite:
                raise BagError(f"{self.path} exists; choose another --out or pass --overwrite")
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=8, storage_plugin=plugin)
        self._connections: Dict[str, object] = {}
        self.counts: Dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    def write(self, topic: str, msg, stamp_ns: int) -> None:
        ts = typestore()
        msgtype = msg.__msgtype__
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=ts)
        self._writer.write(self._connections[topic], int(stamp_ns), ts.serialize_cdr(msg, msgtype))
        self.counts[topic] = self.counts.get(topic, 0) + 1


# ----------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    log_time_ns: int
    rawdata: bytes

    def deserialize(self):
        return typestore().deserialize_cdr(self.rawdata, self.msgtype)


def _storage_files(path: Path) -> List[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
    return [path]


def bag_topics(path: Path) -> Dict[str, str]:
    """{topic: message type} of a bag (from its index; a damaged bag is scanned)."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    try:
        with Reader(path) as reader:
            return {c.topic: c.msgtype for c in reader.connections}
    except FileNotFoundError:
        if not path.exists():
            raise BagError(f"bag not found: {path}") from None
    except Exception:  # noqa: BLE001  damaged: learn the topics by scanning what is readable
        pass
    topics: Dict[str, str] = {}
    for file in _storage_files(path):
        if file.suffix == ".mcap":
            scanner = _McapScanner(file)
            try:
                for _ in scanner.messages():
                    pass
            except BagError:
                pass
            topics.update(scanner.topics)
    return topics


def iter_messages(path: Path, topics: Optional[Iterable[str]] = None) -> Iterator[BagMessage]:
    """Every message of ``topics`` (all if None) in log-time order.

    A damaged or truncated bag yields what can be read and then raises BagError naming the file."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    wanted = set(topics) if topics is not None else None
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # noqa: BLE001  rosbags raises several types for damaged files
        yield from _salvage(path, wanted, exc)
        return
    yielded = 0
    try:
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if connections:
            for connection, timestamp, rawdata in reader.messages(connections=connections):
                yield BagMessage(connection.topic, connection.msgtype, timestamp, bytes(rawdata))
                yielded += 1
    except Exception as exc:  # noqa: BLE001  sqlite3, struct, zstd and rosbags errors all mean damage here
        raise BagError(f"bag {_describe(path)} is damaged after {yielded} messages: {exc}") from exc
    finally:
        reader.close()


def _describe(path: Path) -> str:
    files = _storage_files(path) if path.is_dir() else [path]
    return ", ".join(str(f) for f in files) or str(path)


def _salvage(path: Path, wanted: Optional[set], cause: Exception) -> Iterator[BagMessage]:
    files = [f for f in _storage_files(path) if f.suffix == ".mcap"]
    if not files:
        raise BagError(f"cannot read bag {path}: {cause}") from cause
    for file in files:
        scanner = _McapScanner(file)
        for msg in scanner.messages():
            if wanted is None or msg.topic in wanted:
                yield msg
        if not scanner.complete:
            raise BagError(
                f"bag file {file} is truncated or damaged ({scanner.damage}); "
                f"{scanner.count} messages before the damage were read"
            ) from cause


class _McapScanner:
    """Reads an MCAP file front to back without its index (the index is at the end, which a cut-short
    file lacks): schemas, channels and messages, in and out of chunks, until the data ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.topics: Dict[str, str] = {}
        self.count = 0
        self.complete = False
        self.damage = ""
        self._schemas: Dict[int, str] = {}
        self._channels: Dict[int, Tuple[str, str]] = {}

    def messages(self) -> Iterator[BagMessage]:
        with open(self.path, "rb") as f:
            data = f.read()
        if data[:8] != b"\x89MCAP0\r\n":
            raise BagError(f"{self.path} is not an MCAP file")
        try:
            yield from self._records(memoryview(data), 8, len(data), top=True)
        except _Damaged as exc:
            self.damage = str(exc)
            return

    def _records(self, buf: memoryview, pos: int, end: int, top: bool) -> Iterator[BagMessage]:
        while pos < end:
            if pos + 9 > end:
                raise _Damaged(f"record header cut at byte {pos}")
            op = buf[pos]
            (length,) = struct.unpack_from("<Q", buf, pos + 1)
            start, pos = pos + 9, pos + 9 + length
            if pos > end:
                raise _Damaged(f"record at byte {start - 9} runs past the end of the data")
            if op == 0x02 and top:  # footer: the file is whole
                self.complete = True
                return
            if op == 0x03:
                (sid,) = struct.unpack_from("<H", buf, start)
                name, _ = _string(buf, start + 2)
                self._schemas[sid] = name
            elif op == 0x04:
                cid, sid = struct.unpack_from("<HH", buf, start)
                topic, _ = _string(buf, start + 4)
                msgtype = self._schemas.get(sid, "")
                self._channels[cid] = (topic, msgtype)
                self.topics[topic] = msgtype
            elif op == 0x05:
                (cid,) = struct.unpack_from("<H", buf, start)
                (log_time,) = struct.unpack_from("<Q", buf, start + 6)
                if cid in self._channels:
                    topic, msgtype = self._channels[cid]
                    self.count += 1
                    yield BagMessage(topic, msgtype, log_time, bytes(buf[start + 22 : pos]))
            elif op == 0x06:
                records = self._chunk(buf, start, pos)
                yield from self._records(records, 0, len(records), top=False)
        if top:
            raise _Damaged("no footer")

    def _chunk(self, buf: memoryview, start: int, end: int) -> memoryview:
        from rosbags.rosbag2.storage_mcap import decompress

        _, _, size, crc = struct.unpack_from("<QQQI", buf, start)
        compression, pos = _string(buf, start + 28)
        (length,) = struct.unpack_from("<Q", buf, pos)
        payload = bytes(buf[pos + 8 : pos + 8 + length])
        try:
            return memoryview(decompress(payload, compression, size, crc))
        except Exception as exc:  # noqa: BLE001
            raise _Damaged(f"chunk at byte {start - 9} does not decompress: {exc}") from exc


class _Damaged(Exception):
    pass


def _string(buf: memoryview, pos: int) -> Tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    return bytes(buf[pos + 4 : pos + 4 + n]).decode("utf-8"), pos + 4 + n


# ----------------------------------------------------------------------------------------------
# Restamping serialized messages (the player's --restamp, without a deserialize/serialize round trip)


def starts_with_header(msgtype: str) -> bool:
    """True when the message's first field is a std_msgs/Header (Image, CameraInfo, PointCloud2, ...)."""
    try:
        fields = typestore().fielddefs[msgtype][1]
    except KeyError:
        return False
    return bool(fields) and fields[0][0] == "header" and fields[0][1][1] == "std_msgs/msg/Header"


def restamp_cdr(rawdata: bytes, stamp_ns: int) -> bytes:
    """A CDR-serialized message that starts with a Header, with header.stamp replaced: in CDR the
    stamp's sec (int32) and nanosec (uint32) are the first 8 bytes after the 4-byte encapsulation."""
    if len(rawdata) < 12 or rawdata[0] != 0 or rawdata[1] not in (0, 1):
        raise BagError("not a plain CDR message: cannot restamp it")
    order = "<" if rawdata[1] == 1 else ">"
    stamp = struct.pack(f"{order}iI", int(stamp_ns // 1_000_000_000), int(stamp_ns % 1_000_000_000))
    return rawdata[:4] + stamp + rawdata[12:]


# ----------------------------------------------------------------------------------------------
# Frames: image + ground truth + camera info sharing one stamp


@dataclass
class BagFrame:
    index: int
    stamp_ns: int
    rgb: np.ndarray
    gt: Optional[np.ndarray]
    intrinsics: Optional[Intrinsics]


def find_image_topic(topics: Dict[str, str], preferred: Optional[str] = None) -> str:
    if preferred:
        if preferred not in topics:
            raise BagError(f"the bag has no topic {preferred}; it has {', '.join(sorted(topics))}")
        return preferred
    if IMAGE_TOPIC in topics:
        return IMAGE_TOPIC
    if IMAGE_TOPIC + "/compressed" in topics:
        return IMAGE_TOPIC + "/compressed"
    candidates = [t for t, ty in topics.items() if ty in (IMAGE_TYPE, COMPRESSED_TYPE) and "depth" not in t]
    if not candidates:
        raise BagError(f"the bag has no colour image topic; topics: {', '.join(sorted(topics)) or 'none'}")
    return sorted(candidates)[0]


def _info_topic_for(image_topic: str, topics: Dict[str, str]) -> Optional[str]:
    base = image_topic[: -len("/compressed")] if image_topic.endswith("/compressed") else image_topic
    candidate = base.rsplit("/", 1)[0] + "/camera_info"
    return candidate if candidate in topics else None


def iter_frames(
    path: Path,
    image_topic: Optional[str] = None,
    gt_topic: Optional[str] = GT_TOPIC,
    require_gt: bool = False,
) -> Iterator[BagFrame]:
    """Frames of a bag in stamp order: the RGB image with the ground truth and camera info of the
    same stamp (None where the bag has none). The bag's messages must come in stamp order per topic."""
    topics = bag_topics(path)
    image_topic = find_image_topic(topics, image_topic)
    info_topic = _info_topic_for(image_topic, topics)
    if gt_topic and gt_topic not in topics:
        if require_gt:
            raise BagError(f"the bag {path} has no ground-truth topic {gt_topic}")
        gt_topic = None
    wanted = [t for t in (image_topic, info_topic, gt_topic) if t]
    pending: Dict[int, Dict[str, object]] = {}
    index = 0

    def ready(before_ns: Optional[int]) -> List[BagFrame]:
        nonlocal index
        out = []
        for stamp in sorted(s for s in pending if before_ns is None or s < before_ns):
            parts = pending.pop(stamp)
            if "rgb" not in parts:
                continue
            out.append(BagFrame(index, stamp, parts["rgb"], parts.get("gt"), parts.get("info")))  # type: ignore[arg-type]
            index += 1
        return out

    try:
        for message in iter_messages(path, wanted):
            msg = message.deserialize()
            stamp = stamp_to_ns(msg.header.stamp)
            yield from ready(stamp)
            parts = pending.setdefault(stamp, {})
            if message.topic == image_topic:
                parts["rgb"] = decode_rgb(msg)
            elif message.topic == gt_topic:
                parts["gt"] = decode_depth(msg)
            else:
                parts["info"] = camera_info_intrinsics(msg)
    except BagError:
        # The last frame before the damage may lack parts: it is yielded as read, then the error goes on
        yield from ready(None)
        raise
    yield from ready(None)


def iter_images(bag_path: Path, topic: Optional[str] = None) -> Iterator[np.ndarray]:
    """Every colour image of a bag as HxWx3 uint8 RGB, in order (for calibration sets and the like)."""
    topics = bag_topics(Path(bag_path))
    topic = find_image_topic(topics, topic)
    for message in iter_messages(Path(bag_path), [topic]):
        yield decode_rgb(message.deserialize())


def count_messages(path: Path, topic: str) -> int:
    """Messages on ``topic`` according to the bag's index (0 when unknown)."""
    from rosbags.rosbag2 import Reader

    try:
        with Reader(Path(path)) as reader:
            return sum(c.msgcount for c in reader.connections if c.topic == topic)
    except Exception:  # noqa: BLE001
        return 0


__all__: Sequence[str] = (
    "BagError", "BagFrame", "BagMessage", "BagWriter", "iter_frames", "iter_images", "iter_messages",
    "bag_topics", "count_messages", "decode_rgb", "decode_depth", "camera_info_intrinsics",
)
