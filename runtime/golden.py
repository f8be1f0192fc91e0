"""The on-device parity kit: test inputs and the outputs a phone must reproduce.

In: a checked run, read as ``edgekit.rundir.CheckedRun`` (check results and
predictions, each variant's manifest with its kind, the model manifest with
its typed I/O (``ModelIO``: size, color, per-channel pixel scale and bias)
and its dataset).

Out: ``<run>/golden/`` written atomically (format: docs/GOLDEN.md):

- ``golden.json`` (schema ``edgekit.golden/1``): the model's input spec and
  class names, every sample (test index, label, PNG path, pixels as a plain
  JSON array, the original model's probabilities), and per variant its
  expected probabilities and top-1 on every sample, the known flips, near
  ties and the tolerance an on-device run must meet;
- ``inputs/NNNN.png``: each input as an 8-bit grayscale (or RGB) PNG (what
  an app test bundles and feeds through an image input);
- ``inputs.npy`` (uint8, K x H x W, or K x H x W x 3), ``original.npy`` (float32, K x C) and
  ``expected/<id>.npy`` (float32, K x C): the same numbers for numpy
  (``np.load(..., allow_pickle=False)``).

Samples: every test image some variant flipped (up to half the kit), then
a class-stratified fill up to ``count`` (default 100). ``verify`` applies the
kit's rules to outputs from any runtime, so Python and Swift test the same
contract.
"""
from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit import artifacts, rundir
from edgekit.errors import ArtifactError, ConfigError, ShapeError
from edgekit.rundir import GOLDEN_SCHEMA, CheckedRun, ModelIO, RunDir

if TYPE_CHECKING:
    from edgekit.runtime.report.policy import Policy

SCHEMA = GOLDEN_SCHEMA
KIT_JSON = RunDir(Path()).golden_json.name      # golden.json inside any kit folder
DEFAULT_COUNT = 100

# Tolerances: how far an on-device output may be from this kit's expected
# output (the same variant run here by LiteRT or mil-reference), in
# probability units, by what the variant changes.
TOLERANCES = {
    # fp32 on a phone's CPU differs only in summation order (~1e-6); 1e-3 is
    # generous and still catches a wrong scale or channel order.
    "float32": 1e-3,
    # fp16 arithmetic (GPU/ANE) accumulates in another order than the
    # reference's per-op rounding: ~1e-3 on a softmax; 1e-2 is the bar.
    "float16": 1e-2,
    # Integer kernels are exact up to requantization rounding: one or two
    # output steps of 1/256 (0.008); 1e-2 leaves room for that only, and
    # tells the int8 model from the float one (which differs by ~2e-2).
    "quantized": 1e-2,
    # Decompressed low-bit weights run in fp16 on the device: fp16 error on
    # top of a coarser function; 2e-2 as for quantized.
    "low-bit": 2e-2,
}
DEFAULT_TOLERANCE = 2e-2


@dataclasses.dataclass(frozen=True)
class GoldenConfig:
    """run_dir: a checked run directory; count: samples in the kit; seed: the
    stratified fill's order; policy: the recommendation rule the kit's
    ``recommended`` follows (the report's: ``--target-agreement``,
    ``--max-size``, ``--max-accuracy-drop``; None: the defaults)."""

    run_dir: Path
    count: int = DEFAULT_COUNT
    seed: int = 0
    policy: "Policy | None" = None

    def __post_init__(self):
        if not isinstance(self.run_dir, (str, os.PathLike)) or not str(self.run_dir):
            raise ConfigError("--run", "a run directory is required")
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not 1 <= self.count <= 10_000:
            raise ConfigError("--count", f"must be an integer in [1, 10000], got {self.count!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("--seed", f"must be a non-negative integer, got {self.seed!r}")


@dataclasses.dataclass(frozen=True)
class GoldenResult:
    directory: Path
    count: int
    flipped_included: int
    variants: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """A written kit is a success (whether the variants passed their check is the check's verdict)."""
        return True

    def failure(self) -> str | None:
        return None


# ------------------------------------------------------------------ selection

def select_samples(labels: np.ndarray, flipped: dict[str, list[int]], count: int, seed: int = 0) -> list[int]:
    """Test indices for the kit: flipped samples first (round-robin over
    variants, at most half the kit), then a class-stratified fill."""
    n = len(labels)
    count = min(count, n)
    chosen: list[int] = []
    seen: set[int] = set()
    queues = [list(dict.fromkeys(int(i) for i in v if 0 <= int(i) < n)) for _, v in sorted(flipped.items())]
    cap = count // 2
    while len(chosen) < cap and any(queues):
        for q in queues:
            while q and q[0] in seen:
                q.pop(0)
            if q and len(chosen) < cap:
                i = q.pop(0)
                chosen.append(i)
                seen.add(i)
    rng = np.random.default_rng(seed)
    by_class = {int(c): [int(i) for i in rng.permutation(np.flatnonzero(labels == c)) if int(i) not in seen]
                for c in np.unique(labels)}
    while len(chosen) < count and any(by_class.values()):
        for c in sorted(by_class):
            if by_class[c] and len(chosen) < count:
                i = by_class[c].pop(0)
                chosen.append(i)
                seen.add(i)
    return chosen


def _png(image: np.ndarray) -> bytes:
    """One input as an 8-bit PNG: grayscale for one channel, RGB for three."""
    from PIL import Image

    x = np.asarray(image, np.uint8)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    buf = io.BytesIO()
    Image.fromarray(x, mode="L" if x.ndim == 2 else "RGB").save(buf, format="PNG")
    return buf.getvalue()


def input_spec(model_io: ModelIO) -> dict:
    """golden.json's ``model.input``: what an app feeds the model. ``pixels``
    is the model's own per-channel mapping (input = pixel * scale + bias);
    ``scale``, ``mean`` and ``std`` state the same mapping the way the Swift
    kit applies it: input = (pixel * scale - mean[c]) / std[c]."""
    px = model_io.pixels
    std = [1.0 / (255.0 * s) for s in px.scale]
    mean = [0.0 - b * d for b, d in zip(px.bias, std)]   # 0.0 -: no -0.0 in the JSON
    spec = {"name": model_io.input_name, "height": model_io.height, "width": model_io.width,
            "channels": model_io.channels, "color": model_io.color.value, "pixel_dtype": "uint8",
            "scale": 1 / 255, "mean": mean, "std": std, "pixels": px.to_json(),
            "layout": "row-major, top row first" + (", channels interleaved" if model_io.channels > 1 else ""),
            "resize": f"{model_io.resize}, whole image, no crop (aspect ratio not kept)"}
    if model_io.channels > 1:
        # the PNGs and "pixels" are what a photo gives an app: RGB. A BGR model's
        # Core ML image input swaps the channels itself; fed by hand (TFLite), the
        # app reverses them first; mean/std/pixels are in the model's channel order.
        spec["sample_channel_order"] = "rgb"
        spec["model_channel_order"] = "bgr" if model_io.color.value == "bgr" else "rgb"
    return spec


def _round(p: np.ndarray) -> list[float]:
    # 8 significant digits: float32 round-trips within 1e-7 relative, far
    # below every tolerance, and the JSON stays readable.
    return [float(f"{float(v):.8g}") for v in p]


# ------------------------------------------------------------------ build

def build(run: "RunDir | str | os.PathLike", count: int = DEFAULT_COUNT, seed: int = 0,
          policy: "Policy | None" = None) -> tuple[dict, dict[str, Any]]:
    """golden.json content and the arrays/PNGs to write with it; ``recommended``
    per platform as the report's ``policy`` picks it."""
    from edgekit.runtime.report.policy import recommend, rows_from

    c = CheckedRun.load(run)
    k = len(c.class_names)
    entries = c.results["variants"]
    flipped = {vid: list(e.get("flipped") or []) for vid, e in entries.items()}
    idx = select_samples(c.labels, flipped, count, seed)
    pos = {i: s for s, i in enumerate(idx)}
    # K x H x W for one channel (as golden/1 has always held), K x H x W x C otherwise
    images = c.images[..., 0] if c.images.shape[-1] == 1 else c.images
    if c.model.io.color.value == "bgr":   # the dataset holds the model's order; samples are RGB (input_spec)
        images = images[..., ::-1]
    orig = c.original_probs[idx]
    sample_ids = [f"{s:04d}" for s in range(len(idx))]

    flip_sets = {vid: {int(x) for x in f} for vid, f in flipped.items()}
    samples = []
    for s, i in enumerate(idx):
        samples.append({
            "id": sample_ids[s], "test_index": int(i), "label": int(c.labels[i]),
            "label_name": c.class_names[int(c.labels[i])], "png": f"inputs/{sample_ids[s]}.png",
            "pixels": [int(v) for v in images[i].reshape(-1)],
            "original": {"top1": int(orig[s].argmax()), "probabilities": _round(orig[s])},
            "flipped_in": sorted(v for v, f in flip_sets.items() if i in f),
        })

    variants = {}
    arrays: dict[str, np.ndarray] = {"inputs.npy": images[idx].astype(np.uint8),
                                     "original.npy": orig.astype(np.float32)}
    for vid, e in sorted(entries.items()):
        probs = c.variant_probs[vid][idx]
        vm = c.variants.get(vid)
        kind = vm.kind.value if vm is not None else str(e.get("kind") or "")
        tol = TOLERANCES.get(kind, DEFAULT_TOLERANCE)
        top = np.sort(probs, axis=1)
        margin = top[:, -1] - top[:, -2] if k > 1 else np.ones(len(idx))
        known = sorted(sample_ids[pos[int(i)]] for i in flipped[vid] if int(i) in pos)
        # A device output within `tol` of the expected one can change the top-1
        # only if the top two expected probabilities are within 2*tol.
        ties = [sample_ids[s] for s in range(len(idx)) if margin[s] <= 2 * tol and sample_ids[s] not in known]
        file_rec = (vm.manifest.get("file") if vm is not None else None) or {}
        variants[vid] = {
            "format": vm.format if vm is not None else e.get("format"), "kind": kind or None,
            "backend": e.get("backend"),
            "file": (c.run.relative(vm.dir / file_rec["path"]) if vm is not None and file_rec.get("path")
                     else e.get("file")),
            "file_sha256": file_rec.get("sha256"),
            "passed_check": bool(e.get("passed")),
            "tolerance": {"max_abs_prob_diff": tol},
            "known_flips": known, "near_ties": ties,
            "expected": [{"top1": int(probs[s].argmax()), "probabilities": _round(probs[s])} for s in range(len(idx))],
            "npy": f"expected/{vid}.npy",
        }
        arrays[f"expected/{vid}.npy"] = probs.astype(np.float32)

    rec = recommend(rows_from(c.results, c.variants), policy)
    kit = {
        "schema": SCHEMA,
        "run": c.run.root.resolve().name,
        "inputs": c.input_hashes(),
        "model": {
            "input": input_spec(c.model.io),
            "output": {"name": c.model.io.output_name, "classes": k},
            "class_names": c.class_names,
        },
        "rules": {
            "top1": "must equal the variant's expected top1, except for samples in known_flips or near_ties, "
                    "where it must equal the expected top1 or the original's top1",
            "probabilities": "max |device - expected| over classes <= tolerance.max_abs_prob_diff for every sample",
        },
        "recommended": {key: (None if r is None else r["id"]) for key, r in rec.items()},
        "count": len(idx),
        "samples": samples,
        "variants": variants,
    }
    return kit, {"arrays": arrays, "pngs": {s["png"]: _png(images[i]) for s, i in zip(samples, idx)}}


def write(kit: dict, extra: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    out_dir = Path(out_dir)
    with artifacts.atomic_dir(out_dir, overwrite=True) as tmp:
        (tmp / "inputs").mkdir()
        (tmp / "expected").mkdir()
        for rel, data in extra["pngs"].items():
            (tmp / rel).write_bytes(data)
        for rel, arr in extra["arrays"].items():
            np.save(tmp / rel, arr, allow_pickle=False)
        artifacts.write_json(tmp / KIT_JSON, kit)
    return out_dir


def run(config: GoldenConfig) -> GoldenResult:
    """Build ``<run>/golden/`` from a checked run (replacing an older kit)."""
    run_dir = RunDir(config.run_dir)
    kit, extra = build(run_dir, config.count, config.seed, config.policy)
    out = write(kit, extra, run_dir.golden_dir)
    flipped = sum(1 for s in kit["samples"] if s["flipped_in"])
    return GoldenResult(directory=out, count=kit["count"], flipped_included=flipped, variants=tuple(kit["variants"]))


def is_current(run_dir: "RunDir | str | os.PathLike") -> bool:
    """True if ``<run>/golden/golden.json`` was built from the run's current check results, predictions and model."""
    run = RunDir.of(run_dir)
    return rundir.recorded_inputs_current(run.golden_json, GOLDEN_SCHEMA, run)


# ------------------------------------------------------------------ use

def load(kit_dir: str | os.PathLike) -> dict:
    """Read and sanity-check a golden kit's golden.json."""
    kit_dir = Path(kit_dir)
    kit = artifacts.read_manifest(kit_dir / KIT_JSON, SCHEMA, {"samples": list, "variants": dict, "model": dict})
    for s in kit["samples"]:
        artifacts.resolve_inside(kit_dir, s["png"], "input PNG")
    return kit


def load_inputs(kit_dir: str | os.PathLike, kit: dict) -> np.ndarray:
    """The kit's inputs decoded from its PNGs (uint8 K x H x W, x 3 for RGB), checked
    against the JSON pixels: what an app would feed its model."""
    from PIL import Image

    kit_dir = Path(kit_dir)
    spec = kit["model"]["input"]
    h, w, c = spec["height"], spec["width"], int(spec.get("channels", 1))
    mode = "L" if c == 1 else "RGB"
    out = np.zeros((len(kit["samples"]), h, w) + (() if c == 1 else (c,)), np.uint8)
    for n, s in enumerate(kit["samples"]):
        path = artifacts.resolve_inside(kit_dir, s["png"], "input PNG")
        with Image.open(path) as img:
            if img.mode != mode or img.size != (w, h):
                raise ArtifactError(path, f"expected a {w}x{h} {'grayscale' if c == 1 else 'RGB'} PNG, "
                                          f"got {img.mode} {img.size}")
            out[n] = np.asarray(img)
        if not np.array_equal(out[n].reshape(-1), np.asarray(s["pixels"], np.uint8)):
            raise ArtifactError(path, f"pixels differ from golden.json sample {s['id']}")
    return out


def verify(kit: dict, variant: str, probabilities) -> list[str]:
    """Every way ``probabilities`` (K rows of C, from any runtime, in the kit's
    sample order) breaks the kit's rules for ``variant``; empty: it passes.
    A row of the wrong length, or holding NaN or infinity, is that sample's
    one failure (its other rules are not applied); fewer or more than K rows
    raise ShapeError."""
    if variant not in kit["variants"]:
        raise ConfigError("--variant", f"the kit has no variant {variant!r}; it has {', '.join(kit['variants'])}")
    v = kit["variants"][variant]
    k = len(kit["model"]["class_names"])
    rows = [np.asarray(r, np.float64) for r in probabilities]
    if len(rows) != len(kit["samples"]):
        raise ShapeError("probabilities", f"{len(rows)} rows, the kit needs {len(kit['samples'])} (one per sample)")
    tol = float(v["tolerance"]["max_abs_prob_diff"])
    relaxed = set(v["known_flips"]) | set(v["near_ties"])
    failures = []
    for row, sample, exp in zip(rows, kit["samples"], v["expected"]):
        where = f"sample {sample['id']} (test #{sample['test_index']})"
        if row.shape != (k,):
            failures.append(f"{where}: {row.size} probabilities, the kit has {k} classes")
            continue
        if not np.all(np.isfinite(row)):
            failures.append(f"{where}: probability {row[~np.isfinite(row)][0]} at class "
                            f"{int(np.flatnonzero(~np.isfinite(row))[0])}")
            continue
        got = int(row.argmax())
        allowed = {exp["top1"], sample["original"]["top1"]} if sample["id"] in relaxed else {exp["top1"]}
        if got not in allowed:
            failures.append(f"{where}: top-1 {got}, expected {' or '.join(map(str, sorted(allowed)))}")
        diff = float(np.max(np.abs(row - np.asarray(exp["probabilities"]))))
        if diff > tol:
            failures.append(f"{where}: max abs probability difference {diff:.3g} > {tol:g}")
    return failures
