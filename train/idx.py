"""IDX files (the MNIST container format) in, validated numpy arrays out.

``read_idx(path, kind)`` reads an image file (magic ``0x00000803``: count,
rows, cols, then uint8 pixels) or a label file (magic ``0x00000801``: count,
then uint8 labels), gzip-compressed or raw (detected by the gzip magic bytes,
not the file name). It returns an ``IdxArray``: the array (uint8,
``[N, H, W]`` or ``[N]``) and the sha256 of the uncompressed content.

Every size in the header is checked against what the file can hold *before*
anything is allocated, so a hostile or damaged header cannot make edgekit
allocate gigabytes: a raw file must hold exactly the payload its header
promises, a gzip file cannot expand beyond deflate's maximum ratio, and the
payload is read incrementally up to the promised size. Every problem is a
``DataError(path, problem)`` with a message a person can act on.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_KINDS = {"images": (IMAGES_MAGIC, 3), "labels": (LABELS_MAGIC, 1)}
_GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot expand data by more than ~1032:1; a gzip file claiming more
# payload than that is truncated or lying, whatever its header says.
_MAX_DEFLATE_RATIO = 1032
# Far above any image dataset edgekit trains on (MNIST is 47 MB); refusing
# larger payloads keeps a forged header from exhausting memory.
MAX_PAYLOAD_BYTES = 4 * 1024**3
_CHUNK = 1 << 20


@dataclass(frozen=True)
class IdxArray:
    array: np.ndarray
    content_sha256: str  # sha256 of the uncompressed bytes (header + payload)


def _describe(kind: str, dims: tuple[int, ...]) -> str:
    if kind == "images":
        return f"{dims[0]} images of {dims[1]}x{dims[2]}"
    return f"{dims[0]} labels"


def _open(path: Path):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, "is a directory, expected an IDX file") from None
    except OSError as e:
        raise DataError(path, f"cannot read: {e.strerror or e}") from None
    head = f.read(2)
    f.seek(0)
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb"), f, True
    return f, f, False


def read_idx(path: str | os.PathLike, kind: str) -> IdxArray:
    """Read an IDX ``kind`` ("images" or "labels") file, gzipped or raw."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'images' or 'labels', got {kind!r}")
    path = Path(path)
    magic_expected, ndim = _KINDS[kind]
    stream, raw, compressed = _open(path)
    try:
        file_size = os.fstat(raw.fileno()).st_size
        h = hashlib.sha256()
        try:
            header = stream.read(4 + 4 * ndim)
            if len(header) < 4:
                raise DataError(path, f"file holds {len(header)} bytes, too short for an IDX header")
            (magic,) = struct.unpack(">I", header[:4])
            if magic != magic_expected:
                other = {IMAGES_MAGIC: "an IDX image file", LABELS_MAGIC: "an IDX label file"}.get(magic)
                found = f" (this is {other})" if other else ""
                raise DataError(path, f"wrong magic 0x{magic:08x} (expected an IDX {kind[:-1]} file, "
                                      f"0x{magic_expected:08x}){found}")
            if len(header) < 4 + 4 * ndim:
                raise DataError(path, f"truncated: header needs {4 + 4 * ndim} bytes, file holds {len(header)}")
            dims = struct.unpack(f">{ndim}I", header[4:])
            if kind == "images" and (dims[1] == 0 or dims[2] == 0):
                raise DataError(path, f"header says images of {dims[1]}x{dims[2]}; an image needs at least 1x1 pixels")
            payload = math.prod(dims)
            what = "pixels" if kind == "images" else "labels"
            if payload > MAX_PAYLOAD_BYTES:
                raise DataError(path, f"header says {_describe(kind, dims)} ({payload} bytes), "
                                      f"more than the {MAX_PAYLOAD_BYTES} bytes edgekit reads")
            if not compressed and payload > file_size - len(header):
                raise DataError(path, f"truncated: header says {_describe(kind, dims)}, "
                                      f"file holds {max(file_size - len(header), 0)} bytes of {what}")
            if compressed and payload > file_size * _MAX_DEFLATE_RATIO:
                raise DataError(path, f"truncated: header says {_describe(kind, dims)} ({payload} bytes), "
                                      f"more than a {file_size}-byte gzip file can hold")
            h.update(header)
            chunks, got = [], 0
            while got < payload:
                block = stream.read(min(_CHUNK, payload - got))
                if not block:
                    break
                chunks.append(block)
                got += len(block)
            if got < payload:
                raise DataError(path, f"truncated: header says {_describe(kind, dims)}, file holds {got} bytes of {what}")
            extra = stream.read(1)
            if extra:
                raise DataError(path, f"header says {_describe(kind, dims)} but the file holds more bytes than that "
                                      "(wrong header or two files joined)")
        except (OSError, EOFError, zlib.error) as e:
            # gzip raises these for corrupt or cut-off compressed streams
            raise DataError(path, f"corrupt or truncated gzip data: {e}") from None
        data = b"".join(chunks)
        h.update(data)
        array = np.frombuffer(data, dtype=np.uint8).reshape(dims)
        return IdxArray(array=array, content_sha256=h.hexdigest())
    finally:
        stream.close()
        raw.close()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a uint8 ``[N,H,W]`` image or ``[N]`` label array as IDX (gzip if
    ``compress`` or the name ends in .gz). Used by tests and to export data."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim not in (1, 3):
        raise ValueError(f"IDX arrays here are [N] labels or [N,H,W] images, got shape {array.shape}")
    magic = LABELS_MAGIC if array.ndim == 1 else IMAGES_MAGIC
    data = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
