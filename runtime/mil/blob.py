"""Reader for Core ML's weight file (``weights/weight.bin``, MIL blob storage v2).

In: the path of a ``weight.bin`` and, per constant, the offset, data type and
element count the program's ``blobFileValue`` declares. Out: numpy arrays
(sub-byte types unpacked to one ``uint8``/``int8`` per element).

Layout (little endian; coremltools' ``MILBlob/Blob/StorageFormat.hpp``):

- file header, 64 bytes: ``uint32 count, uint32 version (=2)``, zero padding;
- per blob, a 64-byte metadata record at the offset the program names:
  ``uint32 sentinel (=0xDEADBEEF), uint32 dtype, uint64 size_in_bytes,
  uint64 data_offset, uint64 padding_size_in_bits``, reserved;
- the blob's bytes at ``data_offset``. Sub-byte types are packed starting
  with the least significant bit of each byte (``pack_elements_into_bits``).

Every offset and size read from the file is checked against the file's size
before anything is sliced or allocated; a bad one is a ``ModelFileError``
naming the file and the offset.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from edgekit.errors import ModelFileError

HEADER_BYTES = 64
RECORD_BYTES = 64
SENTINEL = 0xDEADBEEF
STORAGE_VERSION = 2

# BlobDataType code -> (name, bits per element). Names match the MIL dtype
# names used by the program parser (program.py, MIL_DTYPES).
BLOB_DTYPES = {
    1: ("fp16", 16), 2: ("fp32", 32), 3: ("uint8", 8), 4: ("int8", 8),
    6: ("int16", 16), 7: ("uint16", 16), 8: ("int4", 4), 9: ("uint1", 1),
    10: ("uint2", 2), 11: ("uint4", 4), 12: ("uint3", 3), 13: ("uint6", 6),
    14: ("int32", 32), 15: ("uint32", 32),
}
_NUMPY = {"fp16": np.float16, "fp32": np.float32, "uint8": np.uint8, "int8": np.int8,
          "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32}


def unpack_bits(raw: np.ndarray, nbits: int, count: int, signed: bool, lsb_first: bool = True) -> np.ndarray:
    """``count`` integers of ``nbits`` bits packed back to back into ``raw``
    bytes, least significant bit first (MIL's order). ``lsb_first=False`` is
    the wrong order, kept only so tests can prove it would be caught."""
    bits = np.unpackbits(raw, bitorder="little" if lsb_first else "big")[: count * nbits]
    bits = bits.reshape(count, nbits).astype(np.uint16)
    values = bits @ (np.uint16(1) << np.arange(nbits, dtype=np.uint16))
    if signed:
        values = values.astype(np.int16)
        values[values >= 1 << (nbits - 1)] -= 1 << nbits
        return values.astype(np.int8)
    return values.astype(np.uint8)


class WeightFile:
    """One ``weight.bin``, read once and sliced per blob with bounds checks."""

    def __init__(self, path: str | os.PathLike, *, lsb_first: bool = True):
        self.path = Path(path)
        self.lsb_first = lsb_first
        try:
            self.data = self.path.read_bytes()
        except FileNotFoundError:
            raise ModelFileError(self.path, "weight file is missing (the package is incomplete)") from None
        except OSError as e:
            raise ModelFileError(self.path, f"cannot read weight file: {e.strerror or e}") from None
        self.size = len(self.data)
        if self.size < HEADER_BYTES:
            raise ModelFileError(self.path, f"weight file is {self.size} bytes, shorter than its {HEADER_BYTES}-byte header")
        count, version = struct.unpack_from("<II", self.data, 0)
        if version != STORAGE_VERSION:
            raise ModelFileError(self.path, f"blob storage version {version}, this reader knows version {STORAGE_VERSION}")
        if HEADER_BYTES + count * RECORD_BYTES > self.size:
            raise ModelFileError(self.path, f"header claims {count} blobs, more records than the {self.size}-byte file can hold")
        self.count = count

    def read(self, offset: int, dtype: str, count: int) -> np.ndarray:
        """The blob whose metadata record is at ``offset``: ``count`` elements
        of MIL type ``dtype`` (e.g. "fp16", "uint4"), as a flat array."""
        where = f"{self.path} (blob at offset {offset})"
        if offset < HEADER_BYTES or offset + RECORD_BYTES > self.size:
            raise ModelFileError(where, f"metadata offset lies outside the {self.size}-byte weight file")
        sentinel, code, nbytes, data_offset, _pad_bits = struct.unpack_from("<IIQQQ", self.data, offset)
        if sentinel != SENTINEL:
            raise ModelFileError(where, f"bad blob sentinel 0x{sentinel:08X} (expected 0x{SENTINEL:08X}): not a blob record")
        if code not in BLOB_DTYPES:
            raise ModelFileError(where, f"unknown blob data type code {code}")
        name, bits = BLOB_DTYPES[code]
        if name != dtype:
            raise ModelFileError(where, f"blob holds {name} but the program declares {dtype}")
        if data_offset < HEADER_BYTES or data_offset > self.size or nbytes > self.size - data_offset:
            raise ModelFileError(where, f"data ({nbytes} bytes at offset {data_offset}) runs past the end of the {self.size}-byte weight file")
        expected = -(-count * bits // 8)
        if nbytes != expected:
            raise ModelFileError(where, f"blob is {nbytes} bytes, but {count} {dtype} values need {expected}")
        raw = np.frombuffer(self.data, dtype=np.uint8, count=nbytes, offset=data_offset)
        if bits >= 8:
            return raw.view(np.dtype(_NUMPY[name]).newbyteorder("<")).astype(_NUMPY[name])
        return unpack_bits(raw, bits, count, signed=name.startswith("int"), lsb_first=self.lsb_first)
