"""The IDX file format, the container MNIST and Fashion-MNIST ship in.

This file teaches how to read a binary format defensively. An IDX file is a 4-byte magic number,
one 4-byte size per dimension, then the raw array in C order, all big-endian:

    magic   = 0x00 0x00 <type code> <ndim>
    dims    = ndim unsigned 32-bit integers
    payload = prod(dims) * itemsize bytes, nothing more, nothing less

Every check below exists because skipping it produces a wrong array instead of an error: a
truncated download would reshape into garbage or fail deep inside NumPy with a message that names
no file. So we validate the whole header and the exact payload length first, and only then make
the array, with `np.frombuffer`, which reuses the bytes we already hold instead of copying them
(that keeps the 47 MB MNIST training images quick to load).

Read next: `mnist.py`, which finds, downloads and checksums the MNIST files and parses them here.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DatasetError", "IDX_DTYPES", "parse_idx", "read_idx", "read_payload", "write_idx"]

# Every gzip stream starts with these two bytes (RFC 1952), whatever the file is called.
GZIP_MAGIC = b"\x1f\x8b"

# The standard IDX type codes. The '>' makes the multi-byte types big-endian, as the format says.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetError(ValueError):
    """A data file exists but its contents are wrong: bad format, wrong size or wrong checksum."""


def read_payload(path: str | os.PathLike) -> bytes:
    """Return the bytes of `path`, gunzipped when the file starts with the gzip magic bytes.

    We sniff the content rather than trust the `.gz` suffix, so a decompressed file that kept
    its old name (or the reverse) still loads.
    """
    data = Path(path).read_bytes()
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    # A cut-off stream raises EOFError, a damaged one zlib.error, a bad header or CRC
    # BadGzipFile (an OSError). The caller only needs to know the file is unusable.
    except (EOFError, OSError, zlib.error) as err:
        raise DatasetError(f"{path}: corrupt gzip stream ({err})") from err


def parse_idx(raw: bytes, source: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Parse uncompressed IDX bytes into an array; `source` names the file in error messages.

    The result is a read-only view of `raw` for ubyte files (no copy) and a read-only native-endian
    array otherwise; call `.copy()` if you need to write to it.
    """
    dtype, shape, header_len = _parse_header(raw, source)
    expected = math.prod(shape) * dtype.itemsize
    actual = len(raw) - header_len
    if actual < expected:
        raise DatasetError(f"{source}: truncated IDX payload: dims {shape} need {expected} "
                           f"bytes after the header, found {actual}")
    if actual > expected:
        raise DatasetError(f"{source}: {actual - expected} bytes of trailing garbage after "
                           f"the IDX payload (dims {shape} need exactly {expected} bytes)")
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header_len)
    # Multi-byte types are stored big-endian; convert once so later maths runs at native speed.
    array = array.astype(dtype.newbyteorder("="), copy=False).reshape(shape)
    array.flags.writeable = False
    return array


def _parse_header(raw: bytes, source) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validate the magic number and dims; return (dtype, shape, header length in bytes)."""
    if len(raw) < 4:
        raise DatasetError(f"{source}: truncated IDX file: {len(raw)} bytes, too short for "
                           "the 4-byte magic number")
    zero0, zero1, code, ndim = raw[:4]
    if zero0 != 0 or zero1 != 0:
        raise DatasetError(f"{source}: bad IDX magic number 0x{raw[:4].hex()}: it must start "
                           "with two zero bytes (is this really an IDX file?)")
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DatasetError(f"{source}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DatasetError(f"{source}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DatasetError(f"{source}: truncated IDX header: {ndim} dims need {header_len} "
                           f"bytes, file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return IDX_DTYPES[code], shape, header_len


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a read-only array; see `parse_idx`."""
    return parse_idx(read_payload(path), source=path)


def write_idx(path: str | os.PathLike, array, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file; gzip it when `compress` is True or, by default, when the
    name ends in `.gz`. Returns the path. Used by the tests to make small IDX files."""
    path = Path(path)
    array = np.asarray(array)
    code = _type_code(array.dtype)
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    raw = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if path.suffix == ".gz" if compress is None else compress:
        # mtime=0 keeps the bytes, and so the md5, identical from run to run.
        raw = gzip.compress(raw, mtime=0)
    path.write_bytes(raw)
    return path


def _type_code(dtype: np.dtype) -> int:
    """The IDX type code for a NumPy dtype, ignoring byte order."""
    for code, idx_dtype in IDX_DTYPES.items():
        if idx_dtype.newbyteorder("=") == dtype.newbyteorder("="):
            return code
    raise ValueError(f"IDX cannot store dtype {dtype}; use one of uint8, int8, int16, int32, "
                     "float32, float64")
