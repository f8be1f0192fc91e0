"""The check stage end to end on tiny_run + variants, through edgekit.apps.cli.main."""
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from support.cli import exit_2
from support.runs import index_variants, write_tflite_variant
from support.trees import rehash_variant

from edgekit.apps.cli import main
from edgekit.rundir import CheckArtifact
from edgekit.runtime import check

FAST = ["--latency-runs", "5"]


def test_check_writes_results_junit_and_predictions(make_run, capsys):
    run_dir = make_run()
    # On tiny_run's 1,000 test images tflite-int8 flips 3 (99.70%, 95% CI
    # 99.12% to 99.90%): the interval straddles the quantized 99.5% bar, so it
    # is inconclusive (exit 0, never a pass) and says ~4,800 images would
    # decide it; fp32 agrees exactly and passes.
    assert main(["check", "--run", str(run_dir), *FAST]) == 0
    out = capsys.readouterr().out
    assert "tflite-int8" in out and "INCONCLUSIVE (~4,800 images to decide)" in out
    assert "1 pass, 0 fail, 1 inconclusive" in out
    assert "inconclusive: tflite-int8 (about 4,800 test images would decide them)" in out
    res = json.loads((run_dir / "check" / "results.json").read_text())
    assert res["schema"] == "edgekit.check/2" and res["test_count"] == 1000
    assert res["verdict"] == "inconclusive" and res["failed"] == [] and not res["passed"]
    assert res["inconclusive"] == ["tflite-int8"]
    fp32, int8 = res["variants"]["tflite-fp32"], res["variants"]["tflite-int8"]
    assert fp32["backend"] == int8["backend"] == "litert"
    assert fp32["kind"] == "float32" and int8["kind"] == "quantized"
    assert fp32["reference"] is None and int8["reference"] == "tflite-fp32"
    assert fp32["agreement"] == 1.0 and fp32["max_abs_diff"] < 1e-4 and fp32["flipped"] == []
    assert fp32["verdict"] == "pass" and fp32["passed"] and fp32["reasons"] == fp32["inconclusive_reasons"] == []
    assert fp32["images_to_decide"] is None
    assert int8["thresholds"]["min_agreement"] == 0.995 and int8["thresholds"]["min_psnr_db"] == 30.0
    assert int8["psnr_db"] > 30 and len(int8["flipped"]) == 3 and int8["agreement"] == 0.997
    assert int8["verdict"] == "inconclusive" and not int8["passed"] and int8["reasons"] == []
    assert len(int8["inconclusive_reasons"]) == 1 and "straddles the 99.50% bar" in int8["inconclusive_reasons"][0]
    assert 4700 < int8["images_to_decide"] <= 4800
    lo, hi = int8["agreement_ci"]
    assert lo < 0.995 < hi and lo == pytest.approx(0.9912, abs=1e-4) and hi == pytest.approx(0.9990, abs=1e-4)
    assert len(int8["accuracy_change_ci"]) == 2 and int8["holm_family"] == 1   # fp32 tests no drop
    assert int8["mcnemar_p_holm"] == int8["mcnemar_p"]
    assert int8["size_bytes"] < fp32["size_bytes"] / 3
    for v in (fp32, int8):
        assert 0 < v["latency_ms"]["p50"] <= v["latency_ms"]["p95"]
        assert v["throughput_ips"] > 0 and v["zipped_bytes"] > 0
        assert len(v["per_class_accuracy_change"]) == 10
    # predictions round-trip without pickle and reproduce the reported numbers
    checked = CheckArtifact.read(run_dir)
    orig, labels = checked.original()
    var = checked.probabilities("tflite-int8")
    assert res["predictions"] == {"original": "predictions/original.npz", "tflite-fp32": "predictions/tflite-fp32.npz",
                                  "tflite-int8": "predictions/tflite-int8.npz"}
    assert var.shape == orig.shape == (1000, 10)
    agree = np.mean(var.argmax(1) == orig.argmax(1))
    assert agree == pytest.approx(int8["agreement"])
    assert np.flatnonzero(var.argmax(1) != orig.argmax(1)).tolist() == int8["flipped"]
    from edgekit import artifacts
    assert int8["variant_manifest_sha256"] == artifacts.sha256_file(run_dir / "variants/tflite-int8/variant.json")
    assert res["original"]["accuracy"] == pytest.approx(np.mean(orig.argmax(1) == labels))
    suite = ET.parse(run_dir / "check" / "junit.xml").getroot()
    # inconclusive is a JUnit failure of its own type, never a silent pass
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert sorted(cases) == ["tflite-fp32", "tflite-int8"] and cases["tflite-fp32"].find("failure") is None
    f = cases["tflite-int8"].find("failure")
    assert f.get("type") == "inconclusive"
    assert f.get("message") == "inconclusive: needs about 4,800 test images to decide (checked 1,000)"
    assert check.is_current(run_dir) and check.recorded_failure(run_dir) is None


def test_failing_threshold_exits_1_with_reasons_in_junit(make_run, capsys):
    run_dir = make_run()
    # int8 cannot reach 100% agreement with a 1e-6 max abs diff; fp32 only fails the atol
    assert main(["check", "--run", str(run_dir), "--variants", "tflite-int8", "--min-agreement", "1",
                 "--max-abs-diff", "0.000001", *FAST]) == 1
    err = capsys.readouterr()
    assert "FAIL" in err.out and "tflite-int8" in err.err
    res = json.loads((run_dir / "check" / "results.json").read_text())
    assert list(res["variants"]) == ["tflite-int8"] and res["failed"] == ["tflite-int8"]
    v = res["variants"]["tflite-int8"]
    assert not v["passed"] and len(v["reasons"]) == 2
    assert v["thresholds"]["min_agreement"] == 1.0
    assert v["thresholds"]["min_psnr_db"] == 30.0     # default kept where not overridden
    case = ET.parse(run_dir / "check" / "junit.xml").getroot().find("testcase")
    failure = case.find("failure")
    assert failure is not None and failure.text.count("\n") == 1 and "agreement" in failure.get("message")
    assert failure.get("type") == "threshold" and v["verdict"] == "fail"
    # the pipeline's view of this check: current, and why it failed
    assert check.is_current(run_dir)
    assert check.recorded_failure(run_dir).startswith("1 of 1 variants failed their thresholds: tflite-int8")
    vjson = run_dir / "variants/tflite-int8/variant.json"
    vjson.write_text(vjson.read_text() + "\n")          # a changed variant manifest: the check is stale
    assert not check.is_current(run_dir)
    vjson.write_text(vjson.read_text()[:-1])
    assert check.is_current(run_dir)
    (run_dir / "check/predictions/original.npz").unlink()  # a recorded predictions file gone
    assert not check.is_current(run_dir)


def test_limit_checks_first_n_images(make_run):
    run_dir = make_run(("tflite-fp32",))
    result = check.run(check.CheckConfig(run_dir=run_dir, limit=50, latency_runs=3))
    assert result.test_count == 50 and result.passed
    assert result.variants[0].comparison.count == 50
    assert math.isfinite(result.original["throughput_ips"])


def test_run_without_variants(make_run, capsys):
    run_dir = make_run(())
    exit_2(capsys, ["check", "--run", str(run_dir)], "no variants", "edgekit convert")


def test_variant_dir_outside_the_index_is_not_checked(make_run):
    """check reads variants/index.json, not the folder: a stray directory (an
    interrupted conversion) is not a variant. An indexed variant without its
    variant.json is the catalogue's check-variant-without-json case."""
    run_dir = make_run(("tflite-fp32",))
    (run_dir / "variants" / "tflite-int8").mkdir()
    result = check.run(check.CheckConfig(run_dir=run_dir, limit=50, latency_runs=3))
    assert [v.id for v in result.variants] == ["tflite-fp32"] and result.ok and result.failure() is None


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_broken_tflite(make_run, capsys, damage):
    """The model file is damaged and variant.json re-recorded to match it, so the
    damage reaches the runtime (not only the hash check)."""
    run_dir = make_run(("tflite-fp32",))
    vdir = run_dir / "variants" / "tflite-fp32"
    good = (vdir / "model.tflite").read_bytes()
    (vdir / "model.tflite").write_bytes(good[: len(good) // 2] if damage == "truncated" else b"\x89PNG\r\n" + good[8:200])
    rehash_variant(vdir)
    exit_2(capsys, ["check", "--run", str(run_dir)], "model.tflite")


def test_changed_model_file_is_caught_by_hash(make_run, capsys):
    run_dir = make_run(("tflite-fp32",))
    with open(run_dir / "variants/tflite-fp32/model.tflite", "ab") as f:
        f.write(b"\0")
    exit_2(capsys, ["check", "--run", str(run_dir)], "sha256 differs")


def test_foreign_variant_manifest(make_run, capsys):
    run_dir = make_run(("tflite-fp32",))
    (run_dir / "variants/tflite-fp32/variant.json").write_text('{"schema": "edgekit.model/1"}')
    exit_2(capsys, ["check", "--run", str(run_dir)], "variant.json", "edgekit.variant/2")


def test_unknown_variant_id(make_run, capsys):
    run_dir = make_run(("tflite-fp32",))
    exit_2(capsys, ["check", "--run", str(run_dir), "--variants", "tflite-int4"], "tflite-int4", "tflite-fp32")


def test_input_shape_mismatch_names_the_variant(make_run, capsys):
    """A variant built for 32x32 images cannot run on the run's 28x28 test set."""
    import tensorflow as tf
    import tf_keras as keras


    inp = keras.Input((32, 32, 1))
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inp))
    content = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out)).convert()
    run_dir = make_run(())
    write_tflite_variant(run_dir, "tflite-fp32", content)
    index_variants(run_dir)
    exit_2(capsys, ["check", "--run", str(run_dir)], "tflite-fp32", "32, 32, 1")


@pytest.mark.parametrize("flags,needle", [
    (["--min-agreement", "99.8"], "--min-agreement"),
    (["--min-agreement", "-0.1"], "--min-agreement"),
    (["--max-accuracy-drop", "-1"], "--max-accuracy-drop"),
    (["--min-psnr", "nan"], "--min-psnr"),
    (["--min-psnr", "3"], "--min-psnr"),
    (["--limit", "0"], "--limit"),
    (["--backend", "tpu"], "--backend"),
    (["--variants", ","], "--variants"),
])
def test_bad_flags(tmp_path, capsys, flags, needle):
    exit_2(capsys, ["check", "--run", str(tmp_path), *flags], needle)


@pytest.mark.skipif(__import__("platform").system() == "Darwin", reason="the Core ML runtime exists on macOS")
def test_coreml_backend_on_linux_is_a_config_error(make_run, capsys):
    run_dir = make_run(("tflite-fp32",))
    # a tflite variant cannot run on coreml, and coreml is unavailable here anyway
    exit_2(capsys, ["check", "--run", str(run_dir), "--backend", "coreml"], "--backend")


def test_missing_run_dir(tmp_path, capsys):
    exit_2(capsys, ["check", "--run", str(tmp_path / "nope")], "not found")


def test_check_cli_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, edgekit.runtime.check_cli, edgekit.runtime.check, edgekit.runtime.backends; "
            "sys.exit('tensorflow' in sys.modules or 'ai_edge_litert' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_check_help_teaches_with_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--min-agreement" in out and "Example:" in out and "mil-reference" in out


def test_gate_catches_a_miscalibrated_int8_model(make_run, capsys):
    """A real int8 model whose activation ranges are 50x too narrow loads and runs
    fine; only the numbers show it is broken, and the default gate must fail it."""
    run_dir = make_run((("tflite-int8", "miscalibrated-int8"),))
    assert main(["check", "--run", str(run_dir), *FAST]) == 1
    v = json.loads((run_dir / "check" / "results.json").read_text())["variants"]["tflite-int8"]
    assert not v["passed"] and v["kind"] == "quantized"
    assert v["psnr_db"] < 30 and any("PSNR" in r for r in v["reasons"])
    assert any("agreement" in r for r in v["reasons"])


def test_gate_catches_a_quantized_file_shipped_as_fp32(make_run, capsys):
    """int8 bytes under the tflite-fp32 recipe: the float32 bars (exact top-1,
    1e-4 atol) must fail it although the same bytes pass as tflite-int8."""
    run_dir = make_run((("tflite-fp32", "tflite-int8"),))
    assert main(["check", "--run", str(run_dir), *FAST]) == 1
    v = json.loads((run_dir / "check" / "results.json").read_text())["variants"]["tflite-fp32"]
    assert v["kind"] == "float32" and any("max abs probability difference" in r for r in v["reasons"])


def test_variant_kind_is_what_it_declares(make_run, capsys):
    """The kind comes from variant.json, never from its recipe: an unknown kind
    is refused naming the file; a declared one decides the thresholds."""
    run_dir = make_run(("tflite-fp32",))
    path = run_dir / "variants/tflite-fp32/variant.json"
    man = json.loads(path.read_text())
    path.write_text(json.dumps({**man, "kind": "six-bit"}))
    exit_2(capsys, ["check", "--run", str(run_dir)], "variant.json", "unknown kind 'six-bit'")
    path.write_text(json.dumps({**man, "kind": "float16", "recipe": {"nonsense": True}}))
    result = check.run(check.CheckConfig(run_dir=run_dir, limit=50, latency_runs=3))
    assert result.variants[0].kind.value == "float16" and result.variants[0].thresholds.min_psnr_db == 60.0


def test_input_dtype_mismatch_names_the_variant(make_run, capsys):
    """A variant whose input tensor is int32 (not float32 images, not quantized
    int8/uint8) is refused before anything runs."""
    import tensorflow as tf
    import tf_keras as keras

    inp = keras.Input((28, 28, 1), dtype="int32")
    x = keras.layers.Flatten()(tf.cast(inp, tf.float32))
    content = tf.lite.TFLiteConverter.from_keras_model(
        keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x))).convert()
    run_dir = make_run(())
    write_tflite_variant(run_dir, "tflite-fp32", content)
    index_variants(run_dir)
    exit_2(capsys, ["check", "--run", str(run_dir)], "tflite-fp32", "dtype int32")


def test_nan_output_is_one_line_naming_the_file(make_run, capsys):
    """A model that runs but returns NaN (here: a Dense layer whose weights are NaN)."""
    import tensorflow as tf
    import tf_keras as keras

    inp = keras.Input((28, 28, 1))
    dense = keras.layers.Dense(10, activation="softmax")
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    dense.set_weights([np.full((784, 10), np.nan, np.float32), np.zeros(10, np.float32)])
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    run_dir = make_run(())
    write_tflite_variant(run_dir, "tflite-fp32", content)
    index_variants(run_dir)
    exit_2(capsys, ["check", "--run", str(run_dir), "--limit", "20", *FAST], "model.tflite", "NaN")
