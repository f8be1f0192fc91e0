"""What the Swift package's tests (apps/ios/Tests/EdgekitKitTests) read.

    python tests/ios/swift_fixtures.py OUT_DIR [--run CHECKED_RUN | --trained RUN] [--rgb-run CHECKED_RUN]

writes into OUT_DIR:

- ``kit/``: a real golden kit, written by the golden stage from a small
  checked run (the tiny cnn of tests/support/runs.py, converted by the real
  convert stage, checked by the real check stage);
- ``kit-rgb/``: the same for a colour model: support.colour's photo folder
  and its BGR, per-channel mean/std ``.h5`` classifier (the preprocessing an
  app most easily gets wrong), brought in by ``edgekit import``;
- ``cases.json`` (schema ``edgekit.ios-conformance/1``): conformance cases,
  each a variant of that kit, one row of probabilities per sample (perturbed
  from the variant's expected outputs) and the failures
  ``edgekit.runtime.golden.verify`` reports for them, or the error it raises;
  a case's ``kit`` names its kit folder (``kit`` when absent).
  Non-finite numbers are the strings "nan", "inf", "-inf" (JSON has none);
- ``preprocessing.json``: for every sample of each kit (``samples``,
  ``kit_rgb``) the float32 values Python fed the model: the run's
  ``model.io.pixels.apply`` of its test image in the dataset (the call the
  check stage makes before it predicts); and a synthetic RGB buffer with a
  mean/std mapping and ``edgekit.rundir.PixelMapping.apply`` of it;
  ``kit_rgb_photos``: for every sample of the colour kit, the photo the
  dataset read it from, at its own size (40x40), as RGB pixels;
- ``resize.json``: photos of other sizes (grayscale and RGB; down, up, one
  side only) and what edgekit's folder reader (train/data.py, Pillow's
  bilinear over the whole image) made of them at the model's size;
- ``metadata.json``: the ``edgekit.preprocessing`` metadata of converted
  files of each run (the Core ML packages' user-defined metadata, the colour
  run's TFLite file's metadata), what an app reads from the model it ships.

The Swift tests look for them in ``$EDGEKIT_IOS_FIXTURES`` (or
``apps/ios/Fixtures``); tests/ios/test_swift_package.py writes them into a
temporary directory and runs ``swift test`` on them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np

CASES_SCHEMA = "edgekit.ios-conformance/1"
# Small, and still a real kit: two Core ML variants (one that flips a few
# test images, so the kit has known flips) and one TFLite variant.
VARIANTS = ("coreml-fp32", "coreml-pal2", "tflite-dynamic-int8")
CHECK_LIMIT = 300
KIT_COUNT = 40
# A Core ML variant (what the app ships; its BGR image input checked on
# mil-reference) and two TFLite ones, like the grayscale kit
RGB_VARIANTS = ("coreml-fp32", "tflite-fp32", "tflite-dynamic-int8")
RGB_KIT_COUNT = 16


def make_checked_run(run_dir: Path, trained: Path | None = None) -> Path:
    """A checked run in ``run_dir``: ``trained``'s model/ copied (or the tiny
    cnn trained here), VARIANTS converted, CHECK_LIMIT test images checked."""
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run as convert
    from edgekit.runtime import check
    from edgekit.train import TrainConfig
    from edgekit.train import run as train
    from support.runs import TINY, copy_model

    run_dir = Path(run_dir)
    if trained is None:  # what support.runs.train_tiny_run makes
        _ok(train(TrainConfig(run_dir=run_dir, model="cnn", **TINY)))
    else:
        copy_model(trained, run_dir)
    _ok(convert(ConvertConfig(run_dir=run_dir, variants=VARIANTS)))
    # a variant may fail its thresholds on this tiny model (pal2 often does): the
    # kit is made from complete check results all the same, which is what is tested
    check.run(check.CheckConfig(run_dir=run_dir, limit=CHECK_LIMIT, latency_runs=1, warmup_runs=0))
    return run_dir


def make_rgb_checked_run(work: Path) -> Path:
    """A checked colour run in ``work/run``: support.colour's photos and BGR
    mean/std ``.h5`` model, imported with the flags a user of that model
    passes, RGB_VARIANTS converted, every test photo checked."""
    from edgekit.apps.cli import main as edgekit
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run as convert
    from edgekit.runtime import check
    from support import colour

    work = Path(work)
    photos = colour.make_colour_folder(work / "photos")
    model = colour.h5_model(work / "net.h5", photos)
    run_dir = work / "run"
    argv = ["import", "--model", str(model), "--dataset", "folder", "--data-dir", str(photos), "--run", str(run_dir),
            "--color", "bgr", "--mean", ",".join(map(str, colour.MEAN[::-1])),      # in the model's (B, G, R) order
            "--std", ",".join(map(str, colour.STD[::-1]))]
    assert edgekit(argv) == 0, argv
    _ok(convert(ConvertConfig(run_dir=run_dir, variants=RGB_VARIANTS)))
    check.run(check.CheckConfig(run_dir=run_dir, latency_runs=1, warmup_runs=0))
    return run_dir


def _ok(result):
    """The stage's result is ok (the stage protocol's Result)."""
    assert result.ok, result.failure()
    return result


def write_kit(run_dir: Path, count: int = KIT_COUNT) -> Path:
    """``<run>/golden/`` by the golden stage (its public run/config)."""
    from edgekit.runtime import golden

    return _ok(golden.run(golden.GoldenConfig(run_dir=Path(run_dir), count=count))).directory


# ------------------------------------------------------------------ cases

def _json_number(v: float):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _exactly_at(e: float, tol: float) -> float | None:
    """A probability p near e + tol with |p - e| == tol exactly in float64, or
    None: e + tol is often not a float64, and then no p is (p - e is exact
    when p and e are within a factor of two)."""
    p = e + tol
    for _ in range(64):
        d = abs(p - e)
        if d == tol:
            return float(p)
        p = np.nextafter(p, -np.inf) if d > tol else np.nextafter(p, np.inf)
    return None


def _at_tolerance(rows: list[list[float]], tol: float) -> tuple[int, int, float]:
    """(sample, class, p): the first sample and its least probable class where
    a float64 p is exactly ``tol`` from the expected probability and p + 10%
    of tol still leaves the top-1 alone (so the row fails on the tolerance only)."""
    for s, e in enumerate(rows):
        top = max(e)
        for k in np.argsort(e, kind="stable"):
            if e[k] + 1.1 * tol >= top:
                continue
            p = _exactly_at(e[k], tol)
            if p is not None:
                return s, int(k), p
    raise AssertionError(f"no expected probability in the kit is exactly {tol!r} from a float64")


class Cases:
    def __init__(self, kit: dict, folder: str = "kit"):
        self.kit = kit
        self.folder = folder
        self.cases: list[dict] = []

    def expected(self, vid: str) -> list[list[float]]:
        return [list(map(float, e["probabilities"])) for e in self.kit["variants"][vid]["expected"]]

    def add(self, name: str, vid: str, rows, *, must_fail: bool | None = None):
        from edgekit.errors import EdgekitError
        from edgekit.runtime import golden

        case = {"name": name, "variant": vid, "probabilities": [[_json_number(v) for v in r] for r in rows]}
        if self.folder != "kit":
            case["kit"] = self.folder
        try:
            case["failures"] = golden.verify(self.kit, vid, rows)
        except EdgekitError as e:
            case["error"] = type(e).__name__
        if must_fail is not None and "failures" in case:
            assert bool(case["failures"]) == must_fail, (name, case["failures"])
        self.cases.append(case)


def _index(kit: dict, sample_id: str) -> int:
    return next(i for i, s in enumerate(kit["samples"]) if s["id"] == sample_id)


def build_cases(kit: dict) -> list[dict]:
    """Every kind of case the issue names, from the kit's own numbers."""
    c = Cases(kit)
    variants = kit["variants"]
    samples = kit["samples"]
    _exact_matches(c)

    # A flip on a known-flip sample: to the original's top-1 (allowed) and to a third class (not).
    flipper = next((v for v in sorted(variants) if variants[v]["known_flips"]), None)
    assert flipper, f"the kit has no known flips in {sorted(variants)}: pick a variant that flips"
    i = _index(kit, variants[flipper]["known_flips"][0])
    rows = c.expected(flipper)
    orig = list(map(float, samples[i]["original"]["probabilities"]))
    c.add(f"known flip {samples[i]['id']}: the original's output ({flipper})", flipper,
          rows[:i] + [orig] + rows[i + 1:])
    third = next(k for k in range(len(orig))
                 if k not in (variants[flipper]["expected"][i]["top1"], samples[i]["original"]["top1"]))
    r = [0.0] * len(orig)
    r[third] = 1.0
    c.add(f"known flip {samples[i]['id']}: a third class ({flipper})", flipper,
          rows[:i] + [r] + rows[i + 1:], must_fail=True)

    # A flip elsewhere: the top two of a sample with no relaxed rule swapped.
    vid = "coreml-fp32" if "coreml-fp32" in variants else sorted(variants)[0]
    v = variants[vid]
    relaxed = set(v["known_flips"]) | set(v["near_ties"])
    rows = c.expected(vid)
    j = next(n for n, s in enumerate(samples) if s["id"] not in relaxed)
    r = list(rows[j])
    a, b = np.argsort(r)[::-1][:2]
    r[a], r[b] = r[b], r[a]
    c.add(f"flip on {samples[j]['id']}, not a known flip ({vid})", vid, rows[:j] + [r] + rows[j + 1:],
          must_fail=True)

    # A near-tie: the top two swapped (allowed when that is the original's top-1)
    # and a tie of the top two (the first index wins, as numpy's argmax).
    tie_vid = next((x for x in sorted(variants) if variants[x]["near_ties"]), None)
    assert tie_vid, "the kit has no near-ties: the cases need one"
    rows = c.expected(tie_vid)
    t = _index(kit, variants[tie_vid]["near_ties"][0])
    r = list(rows[t])
    a, b = np.argsort(r)[::-1][:2]
    r[a], r[b] = r[b], r[a]
    c.add(f"near-tie {samples[t]['id']}: top two swapped ({tie_vid})", tie_vid, rows[:t] + [r] + rows[t + 1:])
    r = list(rows[t])
    r[a] = r[b] = (r[a] + r[b]) / 2
    c.add(f"near-tie {samples[t]['id']}: top two equal ({tie_vid})", tie_vid, rows[:t] + [r] + rows[t + 1:])

    _tolerance_cases(c)
    _unjudgeable_rows(c)
    return c.cases


def build_rgb_cases(kit: dict) -> list[dict]:
    """The colour kit's cases: exact matches, the tolerance, rows the rules
    cannot judge (its tiny model may flip nothing, so no flip cases)."""
    c = Cases(kit, "kit-rgb")
    _exact_matches(c)
    _tolerance_cases(c)
    _unjudgeable_rows(c)
    return c.cases


def _exact_matches(c: Cases) -> None:
    for vid in sorted(c.kit["variants"]):
        c.add(f"exact match ({vid}{_in(c)})", vid, c.expected(vid), must_fail=False)


def _in(c: Cases) -> str:
    return "" if c.folder == "kit" else f", {c.folder}"


def _tolerance_cases(c: Cases) -> None:
    # The tolerance: exactly at it passes, one float64 step above fails, below passes.
    variants = c.kit["variants"]
    for vid in sorted(variants):
        tol = float(variants[vid]["tolerance"]["max_abs_prob_diff"])
        rows = c.expected(vid)
        s, k, at = _at_tolerance(rows, tol)
        e = rows[s]
        for name, p, fails in (("exactly at", at, False),
                               ("one step above", float(np.nextafter(at, np.inf)), True),
                               ("one step below", float(np.nextafter(at, -np.inf)), False),
                               ("10% above", e[k] + 1.1 * tol, True),
                               ("10% below", e[k] + 0.9 * tol, False)):
            r = list(e)
            r[k] = p
            c.add(f"probability difference {name} the tolerance {tol:g} ({vid}{_in(c)})", vid,
                  rows[:s] + [r] + rows[s + 1:], must_fail=fails)


def _unjudgeable_rows(c: Cases) -> None:
    # Rows the rules cannot judge, and a wrong number of rows or variant.
    vid = sorted(c.kit["variants"])[0]
    rows = c.expected(vid)
    n = len(rows[0])
    for name, r in (("NaN", rows[1][:2] + [math.nan] + rows[1][3:]),
                    ("+infinity", [math.inf] + rows[1][1:]),
                    ("-infinity and NaN", rows[1][:n // 2 - 1] + [-math.inf, math.nan] + rows[1][n // 2 + 1:]),
                    (f"{n - 1} values", rows[1][:-1]),
                    (f"{n + 1} values", rows[1] + [0.0]),
                    ("no values", [])):
        c.add(f"{name} in a row ({vid}{_in(c)})", vid, rows[:1] + [r] + rows[2:], must_fail=True)
    many = [list(r) for r in rows]
    many[0], many[2] = many[2], many[0]
    many[3] = [0.0] * (n - 1) + [1.0]
    c.add(f"several samples failing ({vid}{_in(c)})", vid, many, must_fail=True)
    c.add(f"one row too few ({vid}{_in(c)})", vid, rows[:-1])
    c.add(f"one row too many ({vid}{_in(c)})", vid, rows + [rows[0]])
    c.add(f"a variant the kit does not have{_in(c)}", "no-such-variant", rows)


# ------------------------------------------------------------------ preprocessing

def fed_values(kit: dict, run_dir: Path) -> list[dict]:
    """For each kit sample, what the check stage gave the model: the run's
    ``io.pixels.apply`` of that test image as the dataset holds it (in the
    model's channel order), float32 H x W x C."""
    from edgekit.rundir import ModelArtifact, RunDir

    model = ModelArtifact.read(RunDir(run_dir))
    x_test = model.dataset().x_test
    fed = model.io.pixels.apply(x_test[[s["test_index"] for s in kit["samples"]]])
    return [{"id": s["id"], "sha256": hashlib.sha256(np.ascontiguousarray(x, "<f4").tobytes()).hexdigest(),
             "values": [float(v) for v in x.reshape(-1)]} for s, x in zip(kit["samples"], fed)]


def preprocessing(kit: dict, run_dir: Path, rgb_kit: dict | None = None, rgb_run: Path | None = None) -> dict:
    from edgekit.rundir import PixelMapping

    samples = fed_values(kit, run_dir)
    # RGB: every 8-bit value in every channel, in a 16 x 16 x 3 buffer.
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    rgb = np.stack([np.arange(256).reshape(16, 16), np.arange(256)[::-1].reshape(16, 16),
                    (np.arange(256) * 7 % 256).reshape(16, 16)], axis=-1).astype(np.uint8)
    values = PixelMapping.from_mean_std(mean, std).apply(rgb)
    out = {"samples": samples,
           "rgb": {"height": 16, "width": 16, "mean": mean, "std": std,
                   "pixels": [int(v) for v in rgb.reshape(-1)], "values": [float(v) for v in values.reshape(-1)]}}
    if rgb_kit is not None:
        out["kit_rgb"] = fed_values(rgb_kit, rgb_run)
    return out


def kit_photos(kit: dict, run_dir: Path) -> list[dict]:
    """For each sample of a colour kit, the test photo the dataset read it
    from, at its own size, as RGB pixels: every test photo is read the way
    the dataset reads it, and the one whose pixels are the sample's is taken
    (exactly one must be)."""
    from PIL import Image

    from edgekit.rundir import ModelArtifact, RunDir
    from edgekit.train import data

    source = Path(ModelArtifact.read(RunDir(run_dir)).manifest["dataset"]["source"]) / "test"
    size = (kit["model"]["input"]["height"], kit["model"]["input"]["width"])
    read: dict[bytes, list[Path]] = {}
    for path in sorted(source.rglob("*.png")):
        pixels, _ = data._read_image(path, size, "rgb")   # the dataset's own reader
        read.setdefault(pixels.tobytes(), []).append(path)
    out = []
    for s in kit["samples"]:
        found = read.get(bytes(s["pixels"]), [])
        assert len(found) == 1, f"sample {s['id']}: {len(found)} test photos read as its pixels"
        with Image.open(found[0]) as im:
            photo = np.asarray(im.convert("RGB"), np.uint8)
        assert photo.shape[:2] != size, "the photos are the model's size already: nothing is resized"
        out.append({"id": s["id"], "file": found[0].relative_to(source).as_posix(), "height": photo.shape[0],
                    "width": photo.shape[1], "pixels": [int(v) for v in photo.reshape(-1)]})
    return out


# (source width, height) -> (model width, height), colour: down by integer
# and non-integer factors (Pillow's filter widens with the factor), up, one
# side only, both ways at once, a phone photo's aspect ratio to a square
RESIZE_CASES = (((40, 40), (32, 32), "rgb"), ((97, 61), (28, 28), "grayscale"), ((97, 61), (32, 24), "rgb"),
                ((7, 5), (16, 16), "rgb"), ((30, 30), (30, 12), "grayscale"), ((13, 9), (5, 9), "rgb"),
                ((64, 20), (16, 48), "rgb"), ((400, 300), (96, 96), "rgb"), ((3, 1), (28, 28), "grayscale"))


def resize_cases(work: Path, seed: int = 0) -> dict:
    """Each RESIZE_CASES photo (seeded noise over a gradient, saved as PNG)
    and what train/data.py's reader gives for it at the model's size."""
    from PIL import Image

    from edgekit.train import data

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cases = []
    for (w, h), (ow, oh), color in RESIZE_CASES:
        shape = (h, w) if color == "grayscale" else (h, w, 3)
        ramp = np.add.outer(np.arange(h) * 255 // max(h - 1, 1), np.arange(w) * 255 // max(w - 1, 1)) // 2
        ramp = ramp if color == "grayscale" else ramp[..., None]
        photo = np.clip(ramp + rng.integers(-80, 81, shape), 0, 255).astype(np.uint8)
        path = work / f"{w}x{h}-{color}.png"
        Image.fromarray(photo, "L" if color == "grayscale" else "RGB").save(path)
        resized, _ = data._read_image(path, (oh, ow), color)   # the dataset's own reader
        assert resized.shape[:2] == (oh, ow), resized.shape
        cases.append({"color": color, "width": w, "height": h, "pixels": [int(v) for v in photo.reshape(-1)],
                      "out_width": ow, "out_height": oh, "resized": [int(v) for v in resized.reshape(-1)]})
    return {"method": data.RESIZE_METHOD, "cases": cases}


def model_metadata(kit: str, run_dir: Path, variant: str) -> dict:
    """The ``edgekit.preprocessing`` metadata string of ``variant``'s file,
    read back from the file (Core ML user-defined metadata or TFLite metadata)."""
    from edgekit.convert import coreml, tflite
    from edgekit.rundir import RunDir

    folder = RunDir(run_dir).variant_dir(variant)
    if variant.startswith("coreml-"):
        meta = dict(coreml.load_spec(folder / coreml.FILE_NAME).description.metadata.userDefined)
        text = meta["edgekit.preprocessing"]
    else:
        text = tflite.read_metadata((folder / "model.tflite").read_bytes())["edgekit.preprocessing"].decode()
    return {"kit": kit, "variant": variant, "preprocessing": text}


def _copy_kit(kit_dir: Path, dst: Path) -> dict:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(kit_dir, dst)
    return json.loads((dst / "golden.json").read_text())


def write_fixtures(run_dir: Path, out_dir: Path, rgb_run: Path | None = None) -> Path:
    """The kits of the checked ``run_dir`` and ``rgb_run`` (written by the
    golden stage) and the case files, into ``out_dir`` (created; replaced if
    it holds older fixtures)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kit = _copy_kit(write_kit(run_dir), out_dir / "kit")
    cases = build_cases(kit)
    rgb_kit = None
    if rgb_run is not None:
        rgb_kit = _copy_kit(write_kit(rgb_run, RGB_KIT_COUNT), out_dir / "kit-rgb")
        assert rgb_kit["model"]["input"]["channels"] == 3, "the colour run's kit is not RGB"
        cases += build_rgb_cases(rgb_kit)
    (out_dir / "cases.json").write_text(json.dumps({"schema": CASES_SCHEMA, "kit": "kit", "cases": cases},
                                                   allow_nan=False))
    pre = preprocessing(kit, run_dir, rgb_kit, rgb_run)
    metadata = [model_metadata("kit", run_dir, "coreml-fp32")]
    if rgb_kit is not None:
        pre["kit_rgb_photos"] = kit_photos(rgb_kit, rgb_run)
        metadata += [model_metadata("kit-rgb", rgb_run, v) for v in ("coreml-fp32", "tflite-fp32")]
    (out_dir / "preprocessing.json").write_text(json.dumps(pre, allow_nan=False))
    (out_dir / "resize.json").write_text(json.dumps(resize_cases(out_dir / "resize-photos"), allow_nan=False))
    (out_dir / "metadata.json").write_text(json.dumps(metadata, allow_nan=False))
    return out_dir


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--run", type=Path, help="a checked run to take the kit from (default: make one in OUT/run)")
    p.add_argument("--trained", type=Path, help="a run whose model/ to convert and check (default: train the tiny cnn)")
    p.add_argument("--rgb-run", type=Path, help="a checked colour run to take kit-rgb from (default: make one in OUT/rgb)")
    a = p.parse_args(argv)
    # absolute paths: the stages compare run-relative paths with resolved ones
    # (`edgekit check --run <relative dir>` fails that way; see the report to the lead)
    out_dir = a.out.resolve()
    run_dir = a.run.resolve() if a.run else make_checked_run(out_dir / "run", a.trained and a.trained.resolve())
    rgb_run = a.rgb_run.resolve() if a.rgb_run else make_rgb_checked_run(out_dir / "rgb")
    out = write_fixtures(run_dir, out_dir, rgb_run)
    cases = json.loads((out / "cases.json").read_text())["cases"]
    sizes = [len(json.loads((out / k / "golden.json").read_text())["samples"]) for k in ("kit", "kit-rgb")]
    print(f"{out}: a grayscale kit of {sizes[0]} samples, an RGB kit of {sizes[1]}, {len(cases)} conformance cases")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for support.runs
    import edgekit  # noqa: F401  (selects tf_keras before anything imports TensorFlow)

    sys.exit(main())
