"""Salvaging a damaged MCAP file: read it front to back without its index (the index is at the end,
which a file cut short lacks) and give every message before the damage."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

from depth_attn.data.bag_common import BagError, BagMessage, storage_files


class McapScanner:
    """Reads an MCAP file front to back without its index: schemas, channels and messages, in and out
    of chunks, until the data ends. After ``messages()`` is exhausted, ``complete`` says whether the
    footer was reached and ``damage`` what stopped it otherwise."""

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


def salvage_messages(path: Path, wanted: Optional[set], cause: Exception) -> Iterator[BagMessage]:
    """Every readable message of ``wanted`` topics (all if None) of a bag the index reader refused
    (``cause``); raises BagError naming the file at the damage."""
    files = [f for f in storage_files(path) if f.suffix == ".mcap"]
    if not files:
        raise BagError(f"cannot read bag {path}: {cause}") from cause
    for file in files:
        scanner = McapScanner(file)
        for msg in scanner.messages():
            if wanted is None or msg.topic in wanted:
                yield msg
        if not scanner.complete:
            raise BagError(
                f"bag file {file} is truncated or damaged ({scanner.damage}); "
                f"{scanner.count} messages before the damage were read"
            ) from cause


def salvage_topics(path: Path) -> Dict[str, str]:
    """{topic: message type} of a damaged bag, learnt by scanning what is readable."""
    topics: Dict[str, str] = {}
    for file in storage_files(path):
        if file.suffix == ".mcap":
            scanner = McapScanner(file)
            try:
                for _ in scanner.messages():
                    pass
            except BagError:
                pass
            topics.update(scanner.topics)
    return topics
