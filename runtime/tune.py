"""The tune stage: the smallest per-layer precision plan that keeps the original's answers.

In: a checked run (``model/``, ``variants/``, ``check/``), a platform (``ios``:
Core ML; ``android``: TFLite), a target top-1 agreement F in (0, 1] and
optionally a size cap in KB. Out:

- ``<run>/tune/recipes/<platform variant>.json``: the plan as a recipe file
  (schema ``edgekit.recipe/2``, per-layer ``layers``), data like the shipped
  recipes; ``edgekit convert --recipes <run>/tune/recipes`` rebuilds it;
- ``<run>/variants/coreml-tuned/`` (or ``tflite-tuned``), converted from that
  recipe by the convert stage and listed in ``variants/index.json``, so
  ``edgekit check``, ``report`` and ``golden`` treat it like any other variant;
- ``<run>/tune/<id>.json`` (schema ``edgekit.tune/1``): the search: the test
  split, each layer's local sensitivity, every candidate tried (plan, size,
  agreement on the verify half), the final plan and its numbers on the
  report half, the smallest uniform variant of the run that meets the
  target (from check) and the size ratio to it, the wall time.

Per layer, Core ML: float16, 8-bit linear per channel, or 6/4/3/2-bit k-means
palettes, one per tensor or (6 and 4 bits) one per group of 16 output channels,
through coremltools' ``OptimizationConfig(op_name_configs=...)``. Candidates
are compressed from an iOS18 program; the recipe asks for iOS18 only when its
plan uses an op only iOS18 has (3-bit or grouped palettes), iOS16 otherwise,
and edgekit's mil-reference interpreter runs either. TFLite: float32, int8 or
int4 weights (weight-only, per channel) through ai-edge-quantizer 0.10.0 on a
float32 conversion (convert/tflite_layers.py); the converter's own options
quantize a whole model at once and have no 4-bit weights.

How it searches:

1. The test set is split once (seeded permutation) into a verify half and a
   report half. Candidates are judged only on the verify half; the final
   numbers are measured on the report half, so the search does not tune to
   its own test.
2. Sensitivity: for each lower option, one probe program with every layer at
   that option is measured by ``edgekit.runtime.diagnose.measure``: each
   layer's local SNR (the layer alone, float inputs). Layers are ranked by
   their local noise power at the lowest option per byte that option saves,
   least first: an insensitive layer goes early, and so does a large one
   (ranking by SNR alone would spend the error budget on a 400-weight conv
   that saves nothing).
3. Seed: the uniform plans (every layer at one option; the probe programs)
   are tried smallest option first; the first that meets the target on the
   verify half (its 95% Wilson lower bound of top-1 agreement with the
   original is at least F) is the seed. A candidate stops being evaluated as
   soon as it has more disagreements than the bound allows.
4. Greedy: from the seed, each layer in rank order is lowered to the smallest
   option below its own whose candidate meets the target and is smaller than
   the plan so far, so the result is never larger than the seed; the sweep
   is repeated (at most three times) while it lowers a layer, and a plan
   already tried is not tried again. The record says when no layer could be
   lowered.
5. The plan is written as a recipe, converted by the convert stage, and the
   converted file is measured on both halves.

A target no plan reaches (not even every layer at the largest option, or none under
``--max-size``) is a failure (exit 1) that says so and records the best plan
found.
"""
from __future__ import annotations

import dataclasses
import enum
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from edgekit import artifacts, quiet
from edgekit.errors import ArtifactError, ConfigError, first_line
from edgekit.progress import bar
from edgekit.rundir import (RECIPE_SCHEMA, TUNE_SCHEMA, CheckArtifact, ModelArtifact, RunDir, VariantArtifact,
                            VariantIndex)
from edgekit.runtime import metrics
from edgekit.train.predict import predict as keras_predict


class Platform(str, enum.Enum):
    IOS = "ios"
    ANDROID = "android"


FORMAT = {Platform.IOS: "coreml", Platform.ANDROID: "tflite"}
TUNED_ID = {Platform.IOS: "coreml-tuned", Platform.ANDROID: "tflite-tuned"}
REFERENCE = {Platform.IOS: "coreml-fp32", Platform.ANDROID: "tflite-fp32"}

# Core ML options per layer, largest first: name -> (bits per weight value, compression or None).
# weight_threshold 0: the plan decides every kernel, small ones too. The "g" palettes are one palette
# per group of GROUP output channels (fewer when a layer's channels do not divide: coremltools needs
# them to), the 16-bit-per-entry palettes adding 2**nbits * 2 bytes per group; they and 3-bit palettes
# need iOS18's constexpr ops, so a plan using one is an iOS18 program, any other an iOS16 one.
_PAL = {"method": "palettize", "mode": "kmeans", "granularity": "per_tensor", "weight_threshold": 0}
GROUP = 16
COREML_OPTIONS: dict[str, tuple[int, dict | None]] = {
    "float16": (16, None),
    "int8": (8, {"method": "linear", "dtype": "int8", "mode": "linear_symmetric", "granularity": "per_channel",
                 "weight_threshold": 0}),
    "pal6g": (6, {**_PAL, "nbits": 6, "granularity": "per_grouped_channel", "group_size": GROUP}),
    "pal6": (6, {**_PAL, "nbits": 6}),
    "pal4g": (4, {**_PAL, "nbits": 4, "granularity": "per_grouped_channel", "group_size": GROUP}),
    "pal4": (4, {**_PAL, "nbits": 4}),
    "pal3": (3, {**_PAL, "nbits": 3}),
    "pal2": (2, {**_PAL, "nbits": 2}),
}
IOS18_OPTIONS = frozenset({"pal6g", "pal4g", "pal3"})
# Measured on the default run and not offered (bench/README.md, issue 13): per-channel palette scales
# (enable_per_channel_scale) made coremltools 9 store the dense layer at 432 KB instead of 208 KB; linear
# int4 per block (block 36/84 on the 1764-input dense layer) flips as many answers as a 4-bit grouped
# palette at a larger file, and a block size must divide each layer's input channels (1 for the first conv).
# TFLite options per layer, largest first: weight-only, per channel, through
# ai-edge-quantizer (convert/tflite_layers.py); the arithmetic stays float32. Blockwise int4
# (ai-edge-quantizer 0.10: blocks of 32-256 inputs, integer compute only) is not offered: it refuses
# the 1764-input dense layer (not divisible), and on the 128-input output layer LiteRT 2.3 runs it
# but flips 8 of 5,000 answers (dynamically quantized activations).
# Within 8 and 4 bits, largest first: a zero point per channel ("a"), symmetric per channel, one scale
# per layer ("t"). They round the same weights differently, and which images near a tie flip differs
# (on the default run, features at int8 per channel flips one verify image, asymmetric or per tensor none).
TFLITE_OPTIONS: dict[str, tuple[int, dict | None]] = {
    "float32": (32, None),
    "int8a": (8, {"weights": "int8", "symmetric": False}),
    "int8": (8, {"weights": "int8"}),
    "int8t": (8, {"weights": "int8", "granularity": "tensor"}),
    "int4a": (4, {"weights": "int4", "symmetric": False}),
    "int4": (4, {"weights": "int4"}),
}
# Greedy sweeps over the layers at most (each after the first only when the one before lowered a layer).
PASSES = 3
# Images the sensitivity probes are measured on (local SNR sums are stable to a fraction of a dB).
PROBE_IMAGES = 200
CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    run_dir: Path
    platform: Platform
    target_agreement: float
    max_size_kb: float | None = None
    seed: int = 0
    limit: int | None = None        # the first N test images only (a quick look; the halves are N/2)

    def __post_init__(self):
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        try:
            object.__setattr__(self, "platform", Platform(self.platform))
        except ValueError:
            raise ConfigError("--platform", f"unknown platform {self.platform!r}; choose ios (Core ML) or "
                                            "android (TFLite)") from None
        t = self.target_agreement
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0 < t <= 1:
            raise ConfigError("--target-agreement", f"must be a fraction in (0, 1], e.g. 0.999, got {t!r}")
        m = self.max_size_kb
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m)
                              or m <= 0):
            raise ConfigError("--max-size", f"must be a positive number of KB, got {m!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 20):
            raise ConfigError("--limit", f"must be at least 20 test images (two halves), got {self.limit!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("--seed", f"must be a non-negative integer, got {self.seed!r}")

    @property
    def format(self) -> str:
        return FORMAT[self.platform]

    @property
    def variant_id(self) -> str:
        return TUNED_ID[self.platform]


@dataclasses.dataclass(frozen=True)
class Candidate:
    plan: dict[str, str]            # layer -> option
    size_bytes: int
    agreement: float                # on the images evaluated (all of the verify half unless stopped early)
    lower_bound: float
    images: int
    passed: bool
    stopped_early: bool
    error: str | None = None        # the candidate could not be built (then it is rejected)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TuneResult:
    run_dir: Path
    platform: Platform
    variant: str
    target: float
    max_size_kb: float | None
    reached: bool
    plan: dict[str, str]            # the final plan, or the best found when not reached
    layers: list[dict]              # the layer-plan table: layer, weights, option, bits, local SNR
    candidates: list[Candidate]
    size_bytes: int | None          # of the converted variant (None when not reached)
    verify: dict | None
    report: dict | None
    uniform: dict | None            # the smallest uniform variant of the run meeting the target (check)
    seconds: float
    record: Path
    recipe: Path | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reached

    def failure(self) -> str | None:
        return None if self.reached else self.reason


# ------------------------------------------------------------------ helpers

def allowed_disagreements(n: int, target: float) -> int:
    """The most disagreements among ``n`` images whose 95% Wilson lower bound
    of agreement still meets ``target`` (-1: not even zero does)."""
    k = -1
    lo, hi = 0, n
    while lo <= hi:       # lower bound falls as disagreements grow: binary search
        mid = (lo + hi) // 2
        if metrics.wilson_interval(n - mid, n)[0] >= target:
            k, lo = mid, mid + 1
        else:
            hi = mid - 1
    return k


def _agreement(predict, x: np.ndarray, expect: np.ndarray, allowed: int) -> tuple[int, int, bool]:
    """(disagreements, images evaluated, stopped early) of ``predict`` against ``expect`` (top-1 labels)."""
    bad = 0
    for start in range(0, len(x), CHUNK):
        got = np.argmax(predict(x[start:start + CHUNK]), axis=1)
        bad += int(np.sum(got != expect[start:start + CHUNK]))
        if bad > allowed:
            return bad, min(start + CHUNK, len(x)), True
    return bad, len(x), False


class _Space:
    """What both platforms' candidate spaces share: the weight layers of the
    base's layer map, numbered candidate files in the work dir, and a
    predictor for a candidate file in the platform's runtime."""

    backend = ""   # the runtime a candidate runs in (a BackendName value)

    def _map_layers(self, layer_map: dict) -> None:
        from edgekit.convert import layermap

        self.layer_map = layer_map
        self.layers = [grp["layers"][-1] for grp in layer_map["groups"]
                       if any(op["type"] in layermap.WEIGHT_OP_TYPES for op in grp["ops"])]
        self._n = 0

    def _next_path(self, suffix: str) -> Path:
        self._n += 1
        return self.workdir / f"candidate-{self._n}{suffix}"

    def predictor(self, path: Path):
        from edgekit.runtime import backends as bk

        backend = bk.open_backend(self.backend, path, class_names=list(self.io.class_names),
                                  image_shape=self.io.image_shape, pixels=self.io.pixels)
        return backend.predict


class _CoreML(_Space):
    """Core ML candidates: one float16 program converted once, compressed per plan."""

    options = COREML_OPTIONS
    backend = "mil-reference"

    def __init__(self, model: ModelArtifact, keras, workdir: Path):
        from edgekit.convert import coreml, layermap, recipe

        self.coreml, self.keras, self.workdir = coreml, keras, workdir
        self.io = model.io
        meta = {"author": "edgekit", "license": "-", "short_description": "edgekit tune candidate",
                "version": "-", "input_description": "-", "output_descriptions": {}, "user_defined": {}}
        base_recipe = recipe.load("coreml-fp16")
        # candidates are compressed from an iOS18 program (every option's ops exist there); the recipe
        # asks for iOS16 when its plan needs no iOS18 op, and the converted variant is measured again
        base_recipe = dataclasses.replace(base_recipe, coreml={**base_recipe.coreml,
                                                                "minimum_deployment_target": "iOS18"})
        with quiet.quiet():
            self.base = coreml.convert(keras, base_recipe, class_names=list(model.io.class_names),
                                       image_shape=model.io.image_shape, metadata=meta, color=model.io.color.value,
                                       pixels=model.io.pixels)
        self._map_layers(layermap.coreml_map(self.base.get_spec(), keras))

    def build(self, plan: dict[str, str]) -> Path:
        layers = self.recipe_layers(plan)
        ml = self.coreml.compress_layers(self.base, layers, self.keras) if any(layers.values()) else self.base
        path = self._next_path(".mlpackage")
        self.coreml.save(ml, path)
        return path

    def recipe_layers(self, plan: dict[str, str]) -> dict:
        """Each layer's compression object; a grouped palette's group is the largest
        divisor of the layer's output channels up to GROUP."""
        out = {}
        for name, opt in plan.items():
            comp = self.options[opt][1]
            if comp is not None and "group_size" in comp:
                comp = {**comp, "group_size": math.gcd(int(self.keras.get_layer(name).output.shape[-1]), GROUP)}
            out[name] = comp
        return out

    def layer_map_of(self, path: Path) -> dict:
        from edgekit.convert import coreml, layermap

        return layermap.coreml_map(coreml.load_spec(path), self.keras)

    def recipe(self, variant_id: str, plan: dict[str, str], description: str) -> dict:
        bits = [self.options[o][0] for o in plan.values()]
        kind = "low-bit" if min(bits) <= 4 else "quantized" if min(bits) <= 8 else "float16"
        target = "iOS18" if IOS18_OPTIONS & set(plan.values()) else "iOS16"
        return {"schema": RECIPE_SCHEMA, "id": variant_id, "format": "coreml", "kind": kind,
                "reference": "coreml-fp32", "description": description, "finetune": None,
                "coreml": {"compute_precision": "float16", "compression": None,
                           "minimum_deployment_target": target, "layers": self.recipe_layers(plan)}}


class _TFLite(_Space):
    """TFLite candidates: one float32 conversion, its layers' weights quantized per plan."""

    options = TFLITE_OPTIONS
    backend = "litert"

    def __init__(self, model: ModelArtifact, keras, workdir: Path):
        from edgekit.convert import layermap, recipe, tflite

        self.keras, self.workdir, self.io = keras, workdir, model.io
        self.base_recipe = recipe.load("tflite-fp32")
        with quiet.quiet():
            self.base = tflite.convert(keras, self.base_recipe, None)
        self._map_layers(layermap.tflite_map(self.base, keras))

    def build(self, plan: dict[str, str]) -> Path:
        from edgekit.convert import tflite_layers

        layers = self.recipe_layers(plan)
        blob = tflite_layers.quantize(self.base, layers, self.keras) if any(layers.values()) else self.base
        path = self._next_path(".tflite")
        path.write_bytes(blob)
        return path

    def recipe_layers(self, plan: dict[str, str]) -> dict:
        return {name: self.options[opt][1] for name, opt in plan.items()}

    def layer_map_of(self, path: Path) -> dict:
        from edgekit.convert import layermap

        return layermap.tflite_map(path.read_bytes(), self.keras)

    def recipe(self, variant_id: str, plan: dict[str, str], description: str) -> dict:
        bits = [self.options[o][0] for o in plan.values()]
        kind = "low-bit" if min(bits) <= 4 else "quantized" if min(bits) <= 8 else "float32"
        return {"schema": RECIPE_SCHEMA, "id": variant_id, "format": "tflite", "kind": kind,
                "reference": "tflite-fp32", "description": description, "finetune": None,
                "tflite": {**self.base_recipe.data["tflite"], "layers": self.recipe_layers(plan)}}


SPACES = {Platform.IOS: _CoreML, Platform.ANDROID: _TFLite}


def _weights(keras, layer: str) -> int:
    """Kernel elements of ``layer`` (what a per-layer option compresses)."""
    ws = keras.get_layer(layer).get_weights()
    return int(sum(w.size for w in ws if w.ndim > 1))


def _uniform_best(check: CheckArtifact, rd: RunDir, fmt: str, target: float) -> dict | None:
    """The smallest checked variant of ``fmt`` without a per-layer plan whose
    agreement lower bound (check's interval) meets ``target``."""
    best = None
    for vid, v in check.results["variants"].items():
        if v.get("format") != fmt or not rd.variant_manifest(vid).is_file():
            continue
        try:
            recipe = VariantArtifact.read(rd, vid).manifest.get("recipe") or {}
        except ArtifactError:
            continue
        if (recipe.get(fmt) or {}).get("layers"):
            continue
        ci = v.get("agreement_ci")
        if isinstance(ci, list) and len(ci) == 2 and ci[0] >= target and isinstance(v.get("size_bytes"), int):
            if best is None or v["size_bytes"] < best["size_bytes"]:
                best = {"id": vid, "size_bytes": v["size_bytes"], "agreement": v.get("agreement"),
                        "agreement_lower_bound": ci[0], "images": check.results.get("test_count")}
    return best


def _uniform_on_verify(check: CheckArtifact, rd: RunDir, fmt: str, expect: np.ndarray, verify_idx: np.ndarray,
                       allowed: int) -> dict | None:
    """The same comparison under tune's own rule: the smallest checked uniform
    variant of ``fmt`` with at most ``allowed`` disagreements on the verify half,
    read from check's predictions (None when check saw other images)."""
    if int(check.results.get("test_count", -1)) != len(expect):
        return None
    best = None
    for vid, v in check.results["variants"].items():
        if v.get("format") != fmt or not isinstance(v.get("size_bytes"), int):
            continue
        try:
            recipe = VariantArtifact.read(rd, vid).manifest.get("recipe") or {}
            probs = check.probabilities(vid)
        except ArtifactError:
            continue
        if (recipe.get(fmt) or {}).get("layers") or probs.shape[0] != len(expect):
            continue
        bad = int(np.sum(np.argmax(probs[verify_idx], axis=1) != expect[verify_idx]))
        if bad <= allowed and (best is None or v["size_bytes"] < best["size_bytes"]):
            best = {"id": vid, "size_bytes": v["size_bytes"], "verify_disagreements": bad}
    return best


def _say(line: str) -> None:
    print(line, flush=True)


# ------------------------------------------------------------------ run

def run(config: TuneConfig) -> TuneResult:
    """Search, write the recipe and the variant; see the module docstring."""
    t0 = time.perf_counter()
    rd = RunDir(config.run_dir)
    if not rd.root.is_dir():
        raise ArtifactError(rd.root, "run directory not found")
    model = ModelArtifact.read(rd)
    if not rd.check_results.is_file():
        raise ArtifactError(rd.check_results, f"not found: tune compares with the checked variants; run "
                                              f"`edgekit check --run {rd.root}` first")
    check = CheckArtifact.read(rd)
    VariantIndex.read(rd)       # a run with variants: refused early otherwise
    artifacts.check_can_create(rd.tune_dir)
    artifacts.check_can_create(rd.variants_dir)
    with quiet.quiet():
        ds = model.dataset()
        keras = model.load_keras()
    x = model.io.pixels.apply(ds.x_test[:config.limit])
    labels_all = np.asarray(ds.y_test[:config.limit])
    n = len(x)
    if n < 20:
        raise ArtifactError(model.path, f"the test split has {n} images; tune needs at least 20 (two halves)")
    with quiet.quiet():
        original = keras_predict(keras, x, batch_size=256)
    expect = np.argmax(original, axis=1)
    perm = np.random.default_rng(config.seed).permutation(n)
    verify_idx, report_idx = np.sort(perm[: n // 2]), np.sort(perm[n // 2:])
    xv, ev = x[verify_idx], expect[verify_idx]
    allowed = allowed_disagreements(len(xv), config.target_agreement)

    with tempfile.TemporaryDirectory(prefix="edgekit-tune-") as work:
        space = SPACES[config.platform](model, keras, Path(work))
        layers = space.layers
        sizes = {name: _weights(keras, name) for name in layers}
        options = list(space.options)                 # largest first
        lower = options[1:]
        built: dict[tuple, Path] = {}

        def build(plan: dict[str, str]) -> Path:
            """One file per plan: a sensitivity probe and the uniform candidate of its option are one build."""
            key = tuple(sorted(plan.items()))
            if key not in built:
                built[key] = space.build(plan)
            return built[key]

        # sensitivity: each lower option on every layer at once, measured per layer (local SNR)
        from edgekit.runtime import diagnose

        sensitivity: dict[str, dict[str, float | None]] = {name: {} for name in layers}
        probe_x = xv[:PROBE_IMAGES]
        # (a target no plan can reach, not even with zero disagreements, needs no probes)
        for opt in bar(lower if allowed >= 0 else [], desc="tune: sensitivity", unit="probe"):
            try:
                path = build({name: opt for name in layers})
            except Exception as e:  # an option some layer cannot take has no probe; its candidates say why
                _say(f"[tune] probe {opt}: cannot be built ({first_line(e, with_type=True)})")
                continue
            rows = {r.layer: r for r in diagnose.measure(path, config.format, space.layer_map_of(path), keras,
                                                           probe_x, model.io.pixels, desc=f"probe {opt}")}
            for name in layers:
                loc = rows[name].local
                sensitivity[name][opt] = None if loc is None or math.isinf(loc.snr_db) else round(loc.snr_db, 3)
        lowest = lower[-1]

        def snr(name: str) -> float:
            v = sensitivity[name].get(lowest)
            return math.inf if v is None else v

        saved_bits = space.options[options[0]][0] - space.options[lowest][0]

        def cost(name: str) -> float:
            """Local noise power (relative to the signal) per byte the lowest option saves."""
            return 10 ** (-snr(name) / 10) / max(1.0, sizes[name] * saved_bits / 8)

        ranked = sorted(layers, key=lambda n_: (cost(n_), -sizes[n_]))
        _say(f"[tune] {config.variant_id}: {len(layers)} layers with weights, least noise per byte saved first: "
             + ", ".join(f"{name} ({snr(name):.1f} dB at {lowest}, {sizes[name]} weights)" for name in ranked))
        _say(f"[tune] verify half {len(xv)} images (at most {allowed} disagreements for a lower bound >= "
             f"{100 * config.target_agreement:g}%), report half {len(report_idx)}")

        candidates: list[Candidate] = []
        measured: set[tuple] = set()

        def evaluate(plan: dict[str, str]) -> Candidate:
            kinds = set(plan.values())
            changed = (f"all {plan[layers[0]]}" if len(kinds) == 1 else
                       ", ".join(f"{k}={v}" for k, v in plan.items()))
            measured.add(tuple(sorted(plan.items())))
            try:
                path = build(plan)
            except Exception as e:  # a plan coremltools refuses is a rejected candidate, not a crash
                c = Candidate(plan=dict(plan), size_bytes=0, agreement=0.0, lower_bound=0.0, images=0,
                              passed=False, stopped_early=False, error=first_line(e, with_type=True))
                candidates.append(c)
                _say(f"[tune] candidate {len(candidates):>2}: {changed}: cannot be built ({c.error}); rejected")
                progress.update(1)
                return c
            size = artifacts.tree_size(path)
            bad, seen, stopped = _agreement(space.predictor(path), xv, ev, allowed)
            agree = (seen - bad) / seen
            lb = metrics.wilson_interval(seen - bad, seen)[0]
            c = Candidate(plan=dict(plan), size_bytes=size, agreement=agree, lower_bound=lb, images=seen,
                          passed=not stopped and bad <= allowed, stopped_early=stopped)
            candidates.append(c)
            _say(f"[tune] candidate {len(candidates):>2}: {changed}: {size / 1024:.1f} KB, agreement "
                 f"{100 * agree:.2f}% on {seen} images (lower bound {100 * lb:.2f}%) "
                 f"{'passes' if c.passed else 'rejected'}")
            progress.update(1)
            progress.set_postfix_str(f"{size / 1024:.0f} KB, {100 * agree:.2f}%")
            return c

        progress = bar(desc="tune: candidates", total=len(options) + PASSES * len(layers) * len(lower),
                       unit="candidate")
        # 1. the seed: the smallest uniform plan (every layer at one option) that passes, smallest option
        #    first; when none below the largest passes, every layer at the largest (a target even that
        #    misses, or no disagreement allowed at all, is decided by that one candidate)
        seed = None
        for opt in (reversed(options) if allowed >= 0 else [options[0]]):
            best = evaluate({name: opt for name in layers})
            if best.passed:
                seed = opt
                break
        plan = dict(best.plan)
        # 2. greedy: each layer in rank order is lowered below its option to the smallest option whose
        #    candidate passes and is smaller than the plan so far (so the result is never larger than the
        #    seed); the sweep is repeated while it lowers something, since a layer that could not go lower
        #    beside its neighbours' seed options may once they have moved (up to PASSES sweeps)
        for _ in range(PASSES if seed is not None else 0):
            moved = False
            for name in ranked:
                below = options[options.index(plan[name]) + 1:]
                for opt in reversed(below):           # smallest first; the first that passes is kept
                    trial = {**plan, name: opt}
                    if tuple(sorted(trial.items())) in measured:   # a uniform plan, or one an earlier sweep tried
                        continue
                    c = evaluate(trial)
                    if c.passed and c.size_bytes < best.size_bytes:
                        plan, best, moved = c.plan, c, True
                        break
            if not moved:
                break
        seed_candidate = next((c for c in candidates if c.passed), None)
        lowered = [name for name in layers if seed is not None and plan[name] != seed]
        if seed is not None:
            _say(f"[tune] seed: every layer at {seed} ({seed_candidate.size_bytes / 1024:.1f} KB); "
                 + (f"lowered from it: {', '.join(f'{n} to {plan[n]}' for n in lowered)} "
                    f"({best.size_bytes / 1024:.1f} KB)" if lowered else
                    "no layer could be lowered from it to a smaller plan that still meets the target on the "
                    "verify half"))
        progress.total = progress.n
        progress.close()

    reached = seed is not None
    reason = None
    if not reached:
        reason = (f"no plan reaches a {100 * config.target_agreement:g}% agreement lower bound on the verify half: "
                  f"even every layer at {options[0]} gives {100 * best.agreement:.2f}% (lower bound "
                  f"{100 * best.lower_bound:.2f}%) on {best.images} images")
    elif config.max_size_kb is not None and best.size_bytes > config.max_size_kb * 1024:
        reached = False
        reason = (f"the smallest plan meeting the target is {best.size_bytes / 1024:.1f} KB, above --max-size "
                  f"{config.max_size_kb:g} KB")
    table = [{"layer": name, "weights": sizes[name], "option": plan[name], "bits": space.options[plan[name]][0],
              "local_snr_db": sensitivity[name].get(plan[name]), "rank": ranked.index(name) + 1}
             for name in layers]
    uniform = _uniform_best(check, rd, config.format, config.target_agreement)
    if uniform is not None:
        uniform["same_rule"] = _uniform_on_verify(check, rd, config.format, expect, verify_idx, allowed)
    record_path = rd.tune_json(config.variant_id)
    recipe_path = None
    size = verify = report = None
    if reached:
        from edgekit.convert.config import ConvertConfig
        from edgekit.convert.stage import run as convert

        description = (f"edgekit tune: per-layer plan for {100 * config.target_agreement:g}% top-1 agreement "
                       f"(lower bound on half the test set): "
                       + ", ".join(f"{k} {v}" for k, v in plan.items()))
        recipe_path = rd.tuned_recipe(config.variant_id)
        recipe_path.parent.mkdir(parents=True, exist_ok=True)
        artifacts.write_json(recipe_path, space.recipe(config.variant_id, plan, description))
        conv = convert(ConvertConfig(run_dir=rd.root, variants=(config.variant_id,), recipe_dir=rd.tuned_recipes_dir,
                                     overwrite=True))
        if not conv.ok:
            raise ArtifactError(recipe_path, f"the tuned recipe did not convert: {conv.failure()}")
        v = VariantIndex.read(rd).variants(model, [config.variant_id])[0]
        size = v.size_bytes
        predict = space.predictor(v.path)
        halves = {}
        for name, idx in (("verify", verify_idx), ("report", report_idx)):
            probs = np.concatenate([predict(x[idx][s:s + CHUNK]) for s in range(0, len(idx), CHUNK)])
            got = np.argmax(probs, axis=1)
            agree = int(np.sum(got == expect[idx]))
            labels = labels_all[idx]
            halves[name] = {"images": int(len(idx)), "agreement": agree / len(idx),
                            "agreement_lower_bound": metrics.wilson_interval(agree, len(idx))[0],
                            "accuracy": float(np.mean(got == labels)),
                            "original_accuracy": float(np.mean(expect[idx] == labels))}
        verify, report = halves["verify"], halves["report"]
        if config.max_size_kb is not None and size > config.max_size_kb * 1024:
            reached = False
            reason = (f"the smallest plan meeting the target is {size / 1024:.1f} KB, above --max-size "
                      f"{config.max_size_kb:g} KB")
    seconds = time.perf_counter() - t0
    rd.tune_dir.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(record_path, {
        "schema": TUNE_SCHEMA, "variant": config.variant_id, "platform": config.platform.value,
        "format": config.format, "target_agreement": config.target_agreement, "max_size_kb": config.max_size_kb,
        "reached": reached, "reason": reason, "plan": plan, "layers": table,
        "split": {"seed": config.seed, "verify_images": int(len(verify_idx)), "report_images": int(len(report_idx)),
                  "allowed_disagreements": allowed},
        "sensitivity": {"images": int(len(probe_x)), "local_snr_db": sensitivity, "ranked": ranked},
        "seed": None if seed is None else {"option": seed, "size_bytes": seed_candidate.size_bytes,
                                           "lowered": lowered},
        "candidates": [c.to_json() for c in candidates], "size_bytes": size, "verify": verify, "report": report,
        "uniform": uniform, "ratio_to_uniform": (size / uniform["size_bytes"]) if size and uniform else None,
        "recipe": rd.relative(recipe_path) if recipe_path else None,
        "model_manifest_sha256": model.sha256, "seconds": round(seconds, 3), "versions": artifacts.library_versions(),
    })
    return TuneResult(run_dir=rd.root, platform=config.platform, variant=config.variant_id,
                      target=config.target_agreement, max_size_kb=config.max_size_kb, reached=reached, plan=plan,
                      layers=table, candidates=candidates, size_bytes=size, verify=verify, report=report,
                      uniform=uniform, seconds=seconds, record=record_path, recipe=recipe_path, reason=reason)


def is_current(run_dir: Path) -> bool:
    """Every tune record made from the current model whose tuned variant is still converted and intact."""
    rd = RunDir(Path(run_dir))
    files = sorted(rd.tune_dir.glob("*.json")) if rd.tune_dir.is_dir() else []
    if not files:
        return False
    try:
        model = ModelArtifact.read(rd)
        for f in files:
            data = artifacts.read_manifest(f, TUNE_SCHEMA, {"variant": str, "reached": bool})
            if data.get("model_manifest_sha256") != model.sha256:
                return False
            if data["reached"]:
                v = VariantIndex.read(rd).variants(model, [data["variant"]])[0]
                if not v.file_intact():
                    return False
    except (ArtifactError, OSError):
        return False
    return True
