"""Restamping serialized messages (the player's ``restamp``), without a deserialize/serialize round
trip: in CDR a leading std_msgs/Header's stamp is the first 8 bytes after the encapsulation."""

from __future__ import annotations

import struct

from depth_attn.data.bag_common import BagError, typestore


def starts_with_header(msgtype: str) -> bool:
    """True when the message's first field is a std_msgs/Header (Image, CameraInfo, PointCloud2, ...)."""
    try:
        fields = typestore().fielddefs[msgtype][1]
    except KeyError:
        return False
    return bool(fields) and fields[0][0] == "header" and fields[0][1][1] == "std_msgs/msg/Header"


def _byte_order(rawdata: bytes) -> str:
    """struct's byte order of a plain CDR message that starts with a Header (the encapsulation's 2nd byte)."""
    if len(rawdata) < 12 or rawdata[0] != 0 or rawdata[1] not in (0, 1):
        raise BagError("not a plain CDR message: cannot read or replace its stamp")
    return "<" if rawdata[1] == 1 else ">"


def restamp_cdr(rawdata: bytes, stamp_ns: int) -> bytes:
    """A CDR-serialized message that starts with a Header, with header.stamp replaced: the stamp's sec
    (int32) and nanosec (uint32) are the first 8 bytes after the 4-byte encapsulation header."""
    stamp = struct.pack(f"{_byte_order(rawdata)}iI", int(stamp_ns // 1_000_000_000), int(stamp_ns % 1_000_000_000))
    return rawdata[:4] + stamp + rawdata[12:]


def stamp_of_cdr(rawdata: bytes) -> int:
    """header.stamp (ns) of a CDR-serialized message that starts with a Header (see ``restamp_cdr``)."""
    sec, nanosec = struct.unpack_from(f"{_byte_order(rawdata)}iI", rawdata, 4)
    return sec * 1_000_000_000 + nanosec
