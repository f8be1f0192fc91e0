"""The on-device parity kit: test inputs and the outputs a phone must reproduce.

In: a checked run (``check/results.json``, ``check/predictions/*.npz``,
``variants/<id>/variant.json``, ``model/manifest.json`` and its dataset).

Out: ``<run>/golden/`` written atomically (format: docs/GOLDEN.md):

- ``golden.json`` (schema ``edgekit.golden/1``): the model's input spec and
  class names, every sample (test index, label, PNG path, pixels as a plain
  JSON array, the original model's probabilities), and per variant its
  expected probabilities and top-1 on every sample, the known flips, near
  ties and the tolerance an on-device run must meet;
- ``inputs/NNNN.png``: each input as an 8-bit grayscale PNG (what an app
  test bundles and feeds through an image input);
- ``inputs.npy`` (uint8, K x H x W), ``original.npy`` (float32, K x C) and
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
from typing import Any

import numpy as np

from edgekit import artifacts
from edgekit.errors import ArtifactError, ConfigError, ShapeError

SCHEMA = "edgekit.golden/1"
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
    """run: a checked run directory; count: samples in the kit; seed: the stratified fill's order."""

    run: str
    count: int = DEFAULT_COUNT
    seed: int = 0

    def __post_init__(self):
        if not str(self.run):
            raise ConfigError("--run", "a run directory is required")
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
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _round(p: np.ndarray) -> list[float]:
    # 8 significant digits: float32 round-trips within 1e-7 relative, far
    # below every tolerance, and the JSON stays readable.
    return [float(f"{float(v):.8g}") for v in p]


# ------------------------------------------------------------------ build

def build(run: str | os.PathLike, count: int = DEFAULT_COUNT, seed: int = 0) -> tuple[dict, dict[str, Any]]:
    """golden.json content and the arrays/PNGs to write with it."""
    from edgekit.runtime.report import input_hashes, load_checked_run, recommend, rows_from

    c = load_checked_run(run)
    k = len(c.class_names)
    entries = c.results["variants"]
    flipped = {vid: list(e.get("flipped") or []) for vid, e in entries.items()}
    idx = select_samples(c.labels, flipped, count, seed)
    pos = {i: s for s, i in enumerate(idx)}
    h, w = int(c.images.shape[1]), int(c.images.shape[2])
    orig = c.original_probs[idx]
    sample_ids = [f"{s:04d}" for s in range(len(idx))]

    flip_sets = {vid: {int(x) for x in f} for vid, f in flipped.items()}
    samples = []
    for s, i in enumerate(idx):
        samples.append({
            "id": sample_ids[s], "test_index": int(i), "label": int(c.labels[i]),
            "label_name": c.class_names[int(c.labels[i])], "png": f"inputs/{sample_ids[s]}.png",
            "pixels": [int(v) for v in c.images[i].reshape(-1)],
            "original": {"top1": int(orig[s].argmax()), "probabilities": _round(orig[s])},
            "flipped_in": sorted(v for v, f in flip_sets.items() if i in f),
        })

    variants = {}
    arrays: dict[str, np.ndarray] = {"inputs.npy": c.images[idx].astype(np.uint8),
                                     "original.npy": orig.astype(np.float32)}
    for vid, e in sorted(entries.items()):
        probs = c.variant_probs[vid][idx]
        kind = str(e.get("kind") or "")
        tol = TOLERANCES.get(kind, DEFAULT_TOLERANCE)
        top = np.sort(probs, axis=1)
        margin = top[:, -1] - top[:, -2] if k > 1 else np.ones(len(idx))
        known = sorted(sample_ids[pos[int(i)]] for i in flipped[vid] if int(i) in pos)
        # A device output within `tol` of the expected one can change the top-1
        # only if the top two expected probabilities are within 2*tol.
        ties = [sample_ids[s] for s in range(len(idx)) if margin[s] <= 2 * tol and sample_ids[s] not in known]
        vm = c.variants.get(vid) or {}
        file_rec = vm.get("file") or {}
        variants[vid] = {
            "format": e.get("format") or vm.get("format"), "kind": kind or None, "backend": e.get("backend"),
            "file": (f"variants/{vid}/{file_rec['path']}" if file_rec.get("path") else e.get("file")),
            "file_sha256": file_rec.get("sha256"),
            "passed_check": bool(e.get("passed")),
            "tolerance": {"max_abs_prob_diff": tol},
            "known_flips": known, "near_ties": ties,
            "expected": [{"top1": int(probs[s].argmax()), "probabilities": _round(probs[s])} for s in range(len(idx))],
            "npy": f"expected/{vid}.npy",
        }
        arrays[f"expected/{vid}.npy"] = probs.astype(np.float32)

    rec = recommend(rows_from(c.results, c.variants))
    inputs = input_hashes(c.run)
    io_spec = ((c.manifest.get("io") or {}).get("inputs") or [{}])[0]
    kit = {
        "schema": SCHEMA,
        "run": c.run.resolve().name,
        "inputs": inputs,
        "model": {
            "input": {"name": io_spec.get("name", "image"), "height": h, "width": w, "channels": 1,
                      "color": "grayscale", "pixel_dtype": "uint8", "scale": 1 / 255,
                      "layout": "row-major, top row first"},
            "output": {"name": "probabilities", "classes": k},
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
    return kit, {"arrays": arrays, "pngs": {s["png"]: _png(c.images[i]) for s, i in zip(samples, idx)}}


def write(kit: dict, extra: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    out_dir = Path(out_dir)
    with artifacts.atomic_dir(out_dir, overwrite=True) as tmp:
        (tmp / "inputs").mkdir()
        (tmp / "expected").mkdir()
        for rel, data in extra["pngs"].items():
            (tmp / rel).write_bytes(data)
        for rel, arr in extra["arrays"].items():
            np.save(tmp / rel, arr, allow_pickle=False)
        artifacts.write_json(tmp / "golden.json", kit)
    return out_dir


def run(config: GoldenConfig) -> GoldenResult:
    """Build ``<run>/golden/`` from a checked run (replacing an older kit)."""
    kit, extra = build(config.run, config.count, config.seed)
    out = write(kit, extra, Path(config.run) / "golden")
    flipped = sum(1 for s in kit["samples"] if s["flipped_in"])
    return GoldenResult(directory=out, count=kit["count"], flipped_included=flipped, variants=tuple(kit["variants"]))


def is_current(run: str | os.PathLike) -> bool:
    """True if ``<run>/golden/golden.json`` was built from the current check results."""
    from edgekit.runtime.report import recorded_inputs_current

    return recorded_inputs_current(run, Path(run) / "golden" / "golden.json", SCHEMA)


# ------------------------------------------------------------------ use

def load(kit_dir: str | os.PathLike) -> dict:
    """Read and sanity-check a golden kit's golden.json."""
    kit_dir = Path(kit_dir)
    kit = artifacts.read_manifest(kit_dir / "golden.json", SCHEMA, {"samples": list, "variants": dict, "model": dict})
    for s in kit["samples"]:
        artifacts.resolve_inside(kit_dir, s["png"], "input PNG")
    return kit


def load_inputs(kit_dir: str | os.PathLike, kit: dict) -> np.ndarray:
    """The kit's inputs decoded from its PNGs (uint8 K x H x W), checked
    against the JSON pixels: what an app would feed its model."""
    from PIL import Image

    kit_dir = Path(kit_dir)
    h, w = kit["model"]["input"]["height"], kit["model"]["input"]["width"]
    out = np.zeros((len(kit["samples"]), h, w), np.uint8)
    for n, s in enumerate(kit["samples"]):
        path = artifacts.resolve_inside(kit_dir, s["png"], "input PNG")
        with Image.open(path) as img:
            if img.mode != "L" or img.size != (w, h):
                raise ArtifactError(path, f"expected a {w}x{h} grayscale PNG, got {img.mode} {img.size}")
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
