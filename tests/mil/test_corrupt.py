"""Corrupt, truncated and foreign packages are one ModelFileError each,
never a traceback or an allocation the file cannot back."""
from __future__ import annotations

import shutil
import struct

import pytest

from edgekit.errors import ModelFileError
from edgekit.runtime import mil


@pytest.fixture
def pkg(cnn_packages, tmp_path):
    """A writable copy of the pal4 iOS18 package (blob weights, constexpr inputs)."""
    dst = tmp_path / "Model.mlpackage"
    shutil.copytree(cnn_packages["pal4-iOS18"], dst)
    return dst


def weight_file(pkg):
    return pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"


def model_file(pkg):
    return pkg / "Data" / "com.apple.CoreML" / "model.mlmodel"




def edit_spec(pkg, fn):
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.ParseFromString(model_file(pkg).read_bytes())
    fn(spec)
    model_file(pkg).write_bytes(spec.SerializeToString())


def main_ops(spec):
    f = spec.mlProgram.functions["main"]
    return f.block_specializations[f.opset].operations


def test_intact_copy_loads(pkg):
    assert mil.load(pkg).class_labels is not None


def test_missing_weight_file(pkg):
    weight_file(pkg).unlink()
    with pytest.raises(ModelFileError, match="weight file is missing"):
        mil.load(pkg)


def test_bad_sentinel(pkg):
    wf = weight_file(pkg)
    data = bytearray(wf.read_bytes())
    data[64:68] = struct.pack("<I", 0x12345678)
    wf.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"offset 64\).*bad blob sentinel 0x12345678"):
        mil.load(pkg)


def test_data_offset_past_end(pkg):
    wf = weight_file(pkg)
    data = bytearray(wf.read_bytes())
    struct.pack_into("<Q", data, 64 + 16, len(data) + 4096)  # data_offset of the first blob
    wf.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="runs past the end"):
        mil.load(pkg)


def test_huge_size_is_refused_before_allocating(pkg):
    wf = weight_file(pkg)
    data = bytearray(wf.read_bytes())
    struct.pack_into("<Q", data, 64 + 8, 1 << 62)  # size_in_bytes of the first blob
    wf.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="runs past the end"):
        mil.load(pkg)


def test_truncated_weight_file(pkg):
    wf = weight_file(pkg)
    wf.write_bytes(wf.read_bytes()[: wf.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="weight.bin"):
        mil.load(pkg)


def test_metadata_offset_past_end(pkg):
    def move(spec):
        for op in main_ops(spec):
            for binding in op.inputs.values():
                for arg in binding.arguments:
                    if arg.WhichOneof("binding") == "value" and arg.value.WhichOneof("value") == "blobFileValue":
                        arg.value.blobFileValue.offset = 10**12
                        return
        raise AssertionError("no blob input found")
    edit_spec(pkg, move)
    with pytest.raises(ModelFileError, match=r"offset 1000000000000\).*outside"):
        mil.load(pkg)


def test_declared_type_disagrees_with_blob(pkg):
    def retag(spec):
        for op in main_ops(spec):
            if op.type == "const" and op.attributes["val"].WhichOneof("value") == "blobFileValue":
                op.attributes["val"].type.tensorType.dataType = 11  # fp32, the blob holds fp16
                return
    edit_spec(pkg, retag)
    with pytest.raises(ModelFileError, match="blob holds fp16 but the program declares fp32"):
        mil.load(pkg)


def test_unknown_op_is_refused_by_name(pkg):
    def rename(spec):
        for op in main_ops(spec):
            if op.type == "relu":
                op.type = "foo"
                return
    edit_spec(pkg, rename)
    with pytest.raises(ModelFileError, match=r"op 'foo' \(in block main/CoreML8\) is not supported by the mil-reference interpreter"):
        mil.load(pkg)


@pytest.mark.parametrize("content, match", [
    (b"", "not an ML Program"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not a Core ML model|not an ML Program"),
    (b'{"schema": "edgekit.variant/1"}', "not a Core ML model|not an ML Program"),
])
def test_foreign_model_file(pkg, content, match):
    model_file(pkg).write_bytes(content)
    with pytest.raises(ModelFileError, match=match):
        mil.load(pkg)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_truncated_model_file(pkg, fraction):
    data = model_file(pkg).read_bytes()
    model_file(pkg).write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelFileError):
        mil.load(pkg)


def test_missing_model_file_and_not_a_directory(pkg, tmp_path):
    model_file(pkg).unlink()
    with pytest.raises(ModelFileError, match="missing"):
        mil.load(pkg)
    with pytest.raises(ModelFileError, match="not an .mlpackage directory"):
        mil.load(tmp_path / "nothing.mlpackage")


def test_weight_path_cannot_leave_the_package(pkg):
    def escape(spec):
        for op in main_ops(spec):
            if op.type == "const" and op.attributes["val"].WhichOneof("value") == "blobFileValue":
                op.attributes["val"].blobFileValue.fileName = "@model_path/../../../../etc/passwd"
                return
    edit_spec(pkg, escape)
    with pytest.raises(ModelFileError, match="outside"):
        mil.load(pkg)


def test_missing_required_input(pkg):
    def drop(spec):
        for op in main_ops(spec):
            if op.type == "conv":
                del op.inputs["weight"]
                return
    edit_spec(pkg, drop)
    with pytest.raises(ModelFileError, match="lacks its required input 'weight'"):
        mil.load(pkg).predict(__import__("numpy").zeros((1, 28, 28), "uint8"))


def test_dangling_input_is_a_model_file_error(pkg):
    def dangle(spec):
        for op in main_ops(spec):
            if op.type == "relu":
                op.inputs["x"].arguments[0].name = "no_such_value"
                return
    edit_spec(pkg, dangle)
    with pytest.raises(ModelFileError, match="'no_such_value'"):
        mil.load(pkg).predict(__import__("numpy").zeros((1, 28, 28), "uint8"))


def test_lut_shape_larger_than_its_indices(cnn_packages, tmp_path):
    """An iOS16 lut_to_dense whose shape attribute claims far more values than
    its index bytes hold is refused before anything that size is allocated."""
    import numpy as np

    dst = tmp_path / "Model.mlpackage"
    shutil.copytree(cnn_packages["pal4-iOS16"], dst)

    def inflate(spec):
        for op in main_ops(spec):
            if op.type == "constexpr_lut_to_dense":
                op.attributes["shape"].immediateValue.tensor.bytes.values = np.array([1 << 30, 1 << 30, 1, 1], "<u4").tobytes()
                return
    edit_spec(dst, inflate)
    with pytest.raises(ModelFileError, match="cannot hold"):
        mil.load(dst)
