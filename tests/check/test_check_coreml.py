"""Core ML variants through the mil-reference backend (Linux) and broken .mlpackages."""
import json
import platform
import struct

import numpy as np
import pytest
from support.cli import exit_2
from support.trees import rehash_variant

from edgekit.apps.cli import main
from edgekit.runtime import backends

FAST = ["--latency-runs", "3"]


@pytest.mark.skipif(platform.system() == "Darwin", reason="on macOS auto picks the real Core ML runtime")
def test_coreml_variants_run_on_mil_reference_and_are_labelled_so(converted_run, copy_run, capsys):
    run_dir = copy_run(converted_run)
    assert main(["check", "--run", str(run_dir), *FAST]) == 0
    res = json.loads((run_dir / "check/results.json").read_text())
    fp32, w8 = res["variants"]["coreml-fp32"], res["variants"]["coreml-w8"]
    assert fp32["backend"] == w8["backend"] == "mil-reference"
    assert "coreml " not in capsys.readouterr().out.replace("coreml-", "")  # never labelled as Core ML
    assert fp32["kind"] == "float32" and w8["kind"] == "quantized"
    # the fp32 program vs Keras: same top-1 everywhere, probabilities within 1e-4
    assert fp32["agreement"] == 1.0 and fp32["max_abs_diff"] < 1e-4 and fp32["passed"]
    # w8 now compresses every kernel (weight_threshold 0): a few hundred test images
    # cannot prove its 99.5% agreement bar, so it may be inconclusive, never a failure
    assert w8["psnr_db"] > 40 and w8["agreement"] > 0.99 and w8["verdict"] in ("pass", "inconclusive")


def test_explicit_coreml_backend_on_linux_says_why(converted_run, capsys):
    if platform.system() == "Darwin":
        pytest.skip("the Core ML runtime exists on macOS: asking for it is valid there")
    exit_2(capsys, ["check", "--run", str(converted_run), "--backend", "coreml"], "only on macOS")


def _weight_file(vdir):
    files = list(vdir.rglob("weight.bin"))
    assert len(files) == 1
    return files[0]


def _damage_missing(path):
    path.unlink()


def _damage_sentinel(path):
    data = bytearray(path.read_bytes())
    assert struct.unpack_from("<I", data, 64)[0] == 0xDEADBEEF   # first metadata record
    struct.pack_into("<I", data, 64, 0x12345678)
    path.write_bytes(bytes(data))


def _damage_offset(path):
    data = bytearray(path.read_bytes())
    # metadata record: sentinel u32, dtype u32, size u64, offset u64
    struct.pack_into("<Q", data, 64 + 16, len(data) + 4096)
    path.write_bytes(bytes(data))


def _damage_truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", [_damage_missing, _damage_sentinel, _damage_offset, _damage_truncate],
                         ids=["missing-weights", "bad-sentinel", "offset-past-end", "truncated"])
def test_corrupt_mlpackage_is_one_line_exit_2(converted_run, copy_run, capsys, damage):
    run_dir = copy_run(converted_run)
    vdir = run_dir / "variants" / "coreml-w8"
    damage(_weight_file(vdir))
    rehash_variant(vdir)
    exit_2(capsys, ["check", "--run", str(run_dir), "--variants", "coreml-w8", "--limit", "100",
                    "--backend", "mil-reference"], "coreml-w8")
    assert not (run_dir / "check").exists()


def test_mil_backend_checks_input_before_the_interpreter(converted_run):
    pkg = next((converted_run / "variants/coreml-fp32").glob("*.mlpackage"))
    b = backends.MilReferenceBackend(pkg, [str(i) for i in range(10)])
    assert b.image_shape == (28, 28, 1)
    with pytest.raises(backends.ShapeError) as e:
        b.predict(np.zeros((2, 28, 28), np.uint8))
    assert "Model.mlpackage" in str(e.value)
    out = b.predict(np.zeros((3, 28, 28, 1), np.float32))
    assert out.shape == (3, 10) and np.allclose(out.sum(1), 1, atol=1e-5)


def test_litert_backend_on_coreml_variants_names_them(converted_run, capsys):
    exit_2(capsys, ["check", "--run", str(converted_run), "--backend", "litert"],
           "--backend", "coreml-fp32", "coreml-w8", "--variants")


def test_coreml_backend_glue_with_a_stand_in_runtime(converted_run, monkeypatch):
    """Linux cannot run MLModel.predict, so this tests only edgekit's glue around it
    (images to PIL grayscale, the classifier's {label: probability} dicts back to
    class-index order, batching) with a stand-in MLModel that answers through the
    mil-reference interpreter. The real runtime is exercised only on macOS."""
    import coremltools as ct
    from PIL import Image

    from edgekit.runtime import mil

    pkg = next((converted_run / "variants/coreml-fp32").glob("*.mlpackage"))
    program = mil.load(pkg)
    calls = []

    class StandIn:
        def __init__(self, path, compute_units=None):
            self.compute_units = compute_units

        def get_spec(self):
            return ct.utils.load_spec(str(pkg))

        def predict(self, batch):
            calls.append(len(batch))
            out = []
            for item in batch:
                img = item["image"]
                assert isinstance(img, Image.Image) and img.mode == "L" and img.size == (28, 28)
                probs = program.predict(np.asarray(img, np.uint8)[None])[0]
                labels = [str(v) for v in program.class_labels]
                out.append({"classLabel": labels[int(probs.argmax())],
                            "classLabel_probs": dict(reversed(list(zip(labels, probs.tolist()))))})
            return out

    monkeypatch.setattr(backends, "coreml_runtime_available", lambda: True)
    monkeypatch.setattr(ct.models, "MLModel", StandIn)
    names = [str(i) for i in range(10)]
    coreml = backends.open_backend("coreml", pkg, class_names=names, image_shape=(28, 28, 1))
    assert coreml.name == "coreml"
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 256, (5, 28, 28, 1)) / 255).astype(np.float32)
    got = coreml.predict(x)
    want = backends.MilReferenceBackend(pkg, names).predict(x)
    assert calls == [5]
    # batch-of-1 vs batch-of-5 BLAS sums differ by ~1e-7; a wrong class order by ~0.1
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert (got.argmax(1) == want.argmax(1)).all()
