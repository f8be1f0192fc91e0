"""The weight-file reader on its own: coremltools' writer as the reference,
and arbitrary header/record values that must end in a ModelFileError or a
correctly sized array, never another exception or an oversized allocation."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.errors import ModelFileError
from edgekit.runtime.mil.blob import BLOB_DTYPES, WeightFile


def test_reads_what_coremltools_writes(tmp_path):
    from coremltools.libmilstoragepython import _BlobStorageWriter

    rng = np.random.default_rng(0)
    values = {"fp16": rng.standard_normal(37).astype(np.float16), "fp32": rng.standard_normal(5).astype(np.float32),
              "int8": rng.integers(-128, 128, 70).astype(np.int8), "uint8": rng.integers(0, 256, 9).astype(np.uint8)}
    path = tmp_path / "weight.bin"
    writer = _BlobStorageWriter(str(path))
    offsets = {"fp16": writer.write_fp16_data(values["fp16"].view(np.uint16)),
               "fp32": writer.write_float_data(values["fp32"]),
               "int8": writer.write_int8_data(values["int8"]),
               "uint8": writer.write_uint8_data(values["uint8"])}
    del writer
    wf = WeightFile(path)
    assert wf.count == 4
    for name, arr in values.items():
        got = wf.read(offsets[name], name, arr.size)
        assert got.dtype == arr.dtype and got.tobytes() == arr.tobytes()
    with pytest.raises(ModelFileError, match="blob holds fp16 but the program declares fp32"):
        wf.read(offsets["fp16"], "fp32", 37)
    with pytest.raises(ModelFileError, match="need"):
        wf.read(offsets["fp32"], "fp32", 6)  # the program claims more values than the blob has


@settings(max_examples=200, deadline=None)
@given(count=st.integers(0, 2**32 - 1), version=st.integers(0, 3), sentinel=st.sampled_from([0xDEADBEEF, 0, 0xBEEFDEAD]),
       code=st.integers(0, 20), size=st.integers(0, 2**64 - 1), data_offset=st.integers(0, 2**64 - 1),
       record_offset=st.integers(0, 400), n=st.integers(0, 2**40), tail=st.integers(0, 300))
def test_arbitrary_records_never_crash(tmp_path_factory, count, version, sentinel, code, size, data_offset,
                                       record_offset, n, tail):
    path = tmp_path_factory.mktemp("blob") / "weight.bin"
    header = struct.pack("<II", count, version).ljust(64, b"\0")
    record = struct.pack("<IIQQQ", sentinel, code, size, data_offset, 0).ljust(64, b"\0")
    path.write_bytes(header + record + bytes(tail))
    dtype = BLOB_DTYPES.get(code, ("fp16", 16))[0]
    try:
        arr = WeightFile(path).read(record_offset, dtype, n)
    except ModelFileError:
        return
    assert arr.size == n and arr.nbytes <= max(8 * n, 1) and size <= path.stat().st_size
