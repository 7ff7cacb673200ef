"""Reading rosbag2 files (MCAP or sqlite3) with ``rosbags``: topics, serialized messages in log-time
order, message counts and the metadata's custom data. No ROS install needed.

Reading is damage-tolerant: a bag cut short (a recorder that died, a copy that stopped) yields every
message before the damage (``bag_salvage``) and then raises :class:`BagError` naming the file, so
callers keep what they processed so far."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional

from depth_attn.data.bag_common import BagError, BagMessage, storage_files
from depth_attn.data.bag_salvage import salvage_messages, salvage_topics


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
    except Exception as exc:  # noqa: BLE001  damaged: learn the topics by scanning what is readable
        if not any(f.suffix == ".mcap" for f in storage_files(path)):  # sqlite3: nothing to scan
            files = ", ".join(str(f) for f in storage_files(path)) or str(path)
            raise BagError(f"bag {files} is damaged: {exc}") from exc
    return salvage_topics(path)


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
        yield from salvage_messages(path, wanted, exc)
        return
    yielded = 0
    try:
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if connections:
            for connection, timestamp, rawdata in reader.messages(connections=connections):
                yield BagMessage(connection.topic, connection.msgtype, timestamp, bytes(rawdata))
                yielded += 1
    except Exception as exc:  # noqa: BLE001  sqlite3, struct, zstd and rosbags errors all mean damage here
        files = ", ".join(str(f) for f in storage_files(path)) or str(path)
        raise BagError(f"bag {files} is damaged after {yielded} messages: {exc}") from exc
    finally:
        reader.close()


def count_messages(path: Path, topic: str) -> int:
    """Messages on ``topic`` according to the bag's index (0 when unknown)."""
    from rosbags.rosbag2 import Reader

    try:
        with Reader(Path(path)) as reader:
            return sum(c.msgcount for c in reader.connections if c.topic == topic)
    except Exception:  # noqa: BLE001
        return 0


def bag_custom_data(path: Path) -> Dict[str, str]:
    """The ``custom_data`` of the bag's metadata.yaml (kitti2bag records there whether the stamps are
    recorded or nominal); {} when it has none (a bare .mcap file has no metadata.yaml)."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    try:
        with Reader(path) as reader:
            custom = getattr(getattr(reader.storage, "metadata", None), "custom", None)
    except Exception as exc:  # noqa: BLE001  rosbags raises several types for damaged metadata
        raise BagError(f"cannot read the metadata of bag {path}: {exc}") from exc
    return {str(k): str(v) for k, v in (custom or {}).items()}
