"""A real decompression bomb for the hostile-input tests: a valid PNG of a few hundred kB whose pixels
(all black) would decode to ``width x height`` RGB, gigabytes at 20000x20000. Built without holding
the pixels: one deflate block of zero rows, flushed so it stands alone, repeated."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 20000, height: int = 20000, rows_per_block: int = 100) -> bytes:
    if height % rows_per_block:
        raise ValueError("height must be a multiple of rows_per_block")
    rows = (b"\0" * (width * 3 + 1)) * rows_per_block  # filter byte 0, then black RGB pixels
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(rows) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(height // rows_per_block):
        adler = zlib.adler32(rows, adler)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty last block
    stream = b"\x78\xda" + block * (height // rows_per_block) + final + struct.pack(">I", adler)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")
