"""``edgekit convert`` through ``edgekit.apps.cli.main``: only what the
reliability catalogue does not cover (it asserts each bad-input message once):
bad input is one line and exit 2 with nothing written; a failing variant is
exit 1 and leaves no directory while the others complete."""
from __future__ import annotations

import copy
import json

from edgekit import artifacts
from edgekit.apps.cli import main
from edgekit.convert import recipe as recipes
from edgekit.rundir import VARIANT_SCHEMA, VariantIndex, VariantStatus


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("edgekit: error: ")
    return err[0]


def _no_variants_written(run_dir):
    vdir = run_dir / "variants"
    assert not vdir.exists() or not any(vdir.iterdir())


def test_unknown_variant_lists_known(fresh_run, capsys):
    assert main(["convert", "--run", str(fresh_run), "--variants", "tflite-fp32,tflite-int9"]) == 2
    line = _one_error_line(capsys)
    assert "'tflite-int9'" in line and "tflite-int8" in line and "coreml-pal4" in line
    _no_variants_written(fresh_run)


def test_invalid_recipe_file(fresh_run, tmp_path, capsys):
    data = copy.deepcopy(recipes.load("coreml-pal4").data)
    data["coreml"]["compression"]["nbits"] = 5
    bad = tmp_path / "recipes" / "coreml-pal4.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(data))
    assert main(["convert", "--run", str(fresh_run), "--recipes", str(bad.parent)]) == 2
    line = _one_error_line(capsys)
    assert str(bad) in line and "coreml.compression.nbits" in line
    _no_variants_written(fresh_run)


def test_existing_variant_needs_overwrite(fresh_run, capsys):
    argv = ["convert", "--run", str(fresh_run), "--variants", "tflite-fp32"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "tflite-fp32" in out and "1 of 1 variants converted" in out
    vjson = fresh_run / "variants" / "tflite-fp32" / "variant.json"
    first = vjson.read_text()
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "already exists" in line and "--overwrite" in line
    assert vjson.read_text() == first  # refused means untouched
    assert main(argv + ["--overwrite"]) == 0
    assert "1 of 1 variants converted" in capsys.readouterr().out
    again = json.loads(vjson.read_text())
    assert again["file"]["sha256"] == json.loads(first)["file"]["sha256"]  # deterministic conversion
    assert not [p for p in (fresh_run / "variants").iterdir() if p.name.startswith(".edgekit-")]
    # A later partial run is compared with the fp32 already on disk (same source model).
    assert main(["convert", "--run", str(fresh_run), "--variants", "tflite-dynamic-int8"]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("tflite-dynamic-int8"))
    ratio = float(row.split()[5])
    dyn = json.loads((fresh_run / "variants" / "tflite-dynamic-int8" / "variant.json").read_text())
    assert ratio == round(dyn["file"]["size_bytes"] / again["file"]["size_bytes"], 3) and ratio < 0.3
    # and the index still lists the fp32 this partial run did not touch
    index = VariantIndex.read(fresh_run)
    assert index.ok_ids == ["tflite-dynamic-int8", "tflite-fp32"]
    assert index.entries["tflite-dynamic-int8"].reference == "tflite-fp32"


def test_failing_variant_leaves_no_directory_and_exits_1(fresh_run, tmp_path, capsys):
    """A recipe that validates but asks for the impossible: 4-bit linear weights
    exist only from iOS18, the recipe says iOS16; coremltools refuses."""
    rdir = tmp_path / "recipes"
    rdir.mkdir()
    good = recipes.load("tflite-fp32").data
    (rdir / "tflite-fp32.json").write_text(json.dumps(good))
    bad = copy.deepcopy(recipes.load("coreml-w8").data)
    bad.update(id="coreml-w4")
    bad["coreml"]["compression"]["dtype"] = "int4"
    bad["coreml"]["compression"]["granularity"] = "per_channel"
    (rdir / "coreml-w4.json").write_text(json.dumps(bad))
    assert recipes.parse(rdir / "coreml-w4.json").id == "coreml-w4"  # it does validate
    (rdir / "broken.json").write_text("{}")  # not selected below: must not matter
    assert main(["convert", "--run", str(fresh_run), "--recipes", str(rdir),
                 "--variants", "tflite-fp32,coreml-w4"]) == 1
    cap = capsys.readouterr()
    assert "coreml-w4" in cap.out and "FAILED" in cap.out
    assert "1 of 2 variants converted" in cap.out
    assert "coreml-w4" in cap.err
    names = sorted(p.name for p in (fresh_run / "variants").iterdir())
    assert names == ["index.json", "tflite-fp32"]  # no coreml-w4/, no temporary left behind
    artifacts.read_manifest(fresh_run / "variants" / "tflite-fp32" / "variant.json", VARIANT_SCHEMA)
    index = VariantIndex.read(fresh_run)
    assert index.ok_ids == ["tflite-fp32"]
    w4 = index.entries["coreml-w4"]
    assert (w4.status, w4.format, w4.kind.value, w4.reference) == (VariantStatus.FAILED, "coreml", "quantized",
                                                                   "coreml-fp32")
    assert w4.reason and w4.reason in cap.err


def test_failure_in_the_middle_keeps_the_others(fresh_run, monkeypatch):
    """Any exception inside one conversion (here injected into the TFLite
    converter for one recipe) fails that variant only."""
    from edgekit.convert import stage, tflite
    from edgekit.convert.config import ConvertConfig

    real = tflite.convert

    def flaky(model, recipe, calibration):
        if recipe.id == "tflite-fp16":
            raise RuntimeError("injected converter crash\nsecond line")
        return real(model, recipe, calibration)

    monkeypatch.setattr(tflite, "convert", flaky)
    result = stage.run(ConvertConfig(run_dir=fresh_run, variants=("tflite-fp16", "tflite-fp32")))
    assert not result.ok
    assert [(v.id, v.status) for v in result.variants] == [("tflite-fp16", "failed"), ("tflite-fp32", "ok")]
    assert result.failed[0].reason == "RuntimeError: injected converter crash"
    assert sorted(p.name for p in (fresh_run / "variants").iterdir()) == ["index.json", "tflite-fp32"]
    assert result.failure() == "1 variant(s) failed: tflite-fp16: RuntimeError: injected converter crash"
    index = VariantIndex.read(fresh_run)
    assert {vid: e.status for vid, e in index.entries.items()} == {"tflite-fp16": VariantStatus.FAILED,
                                                                   "tflite-fp32": VariantStatus.OK}
    assert index.entries["tflite-fp16"].reason == result.failed[0].reason
    assert stage.is_current(fresh_run)  # what it wrote is intact; the failure is recorded, not missing
    table = stage.summary_table(result)
    assert "FAILED: RuntimeError: injected converter crash" in table
    assert result.ratio("tflite-fp32") == 1.0


def test_output_stays_readable(fresh_run, capfd):
    """The converters' own chatter (TF's C++ log lines and warnings, coremltools'
    per-pass bars) is held back at the file-descriptor level: stdout is the
    table, stderr is empty on success."""
    assert main(["convert", "--run", str(fresh_run), "--variants", "tflite-int8,coreml-pal4",
                 "--calibration-size", "20"]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["variant", "size"]
    assert [ln.split()[0] for ln in lines[1:3]] == ["tflite-int8", "coreml-pal4"]
    assert lines[-1].startswith("2 of 2 variants converted")
    assert len(lines) == 4


def test_interrupt_leaves_nothing_half_written(fresh_run, monkeypatch, capsys):
    """Ctrl-C in the middle of a conversion: exit 130, the finished variant is
    intact, the interrupted one has no directory and no temporary left."""
    from edgekit.convert import tflite

    real = tflite.convert

    def interrupted(model, recipe, calibration):
        if recipe.id == "tflite-fp16":
            raise KeyboardInterrupt
        return real(model, recipe, calibration)

    monkeypatch.setattr(tflite, "convert", interrupted)
    assert main(["convert", "--run", str(fresh_run), "--variants", "tflite-fp32,tflite-fp16"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in (fresh_run / "variants").iterdir()) == ["tflite-fp32"]
    artifacts.read_manifest(fresh_run / "variants" / "tflite-fp32" / "variant.json", VARIANT_SCHEMA)


def test_is_current_follows_the_index_and_the_files(fresh_run):
    from edgekit.convert import stage
    from edgekit.convert.config import ConvertConfig

    assert not stage.is_current(fresh_run)  # nothing converted yet
    result = stage.run(ConvertConfig(run_dir=fresh_run, variants=("tflite-fp32",)))
    assert result.ok and result.failure() is None
    assert stage.is_current(fresh_run)
    model_file = fresh_run / "variants" / "tflite-fp32" / "model.tflite"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    assert not stage.is_current(fresh_run)  # a variant's file changed


def test_custom_recipe_declares_its_reference(fresh_run, tmp_path, capsys):
    """In a --recipes folder the reference is what a recipe declares, not
    '<format>-fp32' by id; a recipe without a kind is one line naming it."""
    rdir = tmp_path / "recipes"
    rdir.mkdir()
    base = dict(recipes.load("tflite-fp32").data, id="my-float", reference=None)
    (rdir / "my-float.json").write_text(json.dumps(base))
    half = dict(recipes.load("tflite-fp16").data, id="my-half", reference="my-float")
    (rdir / "my-half.json").write_text(json.dumps(half))
    assert main(["convert", "--run", str(fresh_run), "--recipes", str(rdir)]) == 0
    rows = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()[1:3]}
    sizes = {rid: json.loads((fresh_run / "variants" / rid / "variant.json").read_text())["file"]["size_bytes"]
             for rid in ("my-float", "my-half")}
    assert float(rows["my-float"][5]) == 1.0
    assert float(rows["my-half"][5]) == round(sizes["my-half"] / sizes["my-float"], 3) < 0.6
    v = json.loads((fresh_run / "variants" / "my-half" / "variant.json").read_text())
    assert (v["kind"], v["reference"]) == ("float16", "my-float")
    no_kind = dict(half)
    del no_kind["kind"]
    (rdir / "my-half.json").write_text(json.dumps(no_kind))
    assert main(["convert", "--run", str(fresh_run), "--recipes", str(rdir), "--overwrite"]) == 2
    line = _one_error_line(capsys)
    assert str(rdir / "my-half.json") in line and "'kind'" in line
