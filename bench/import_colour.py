"""`edgekit run --model PATH` on a 96x96 colour model: wall time (issue 11 target: <= 3 minutes on 2 cores).

Builds, untimed, in --work (default runs/bench-import):
  photos/      a generated colour folder: 6 classes of coloured shapes on
               noisy backgrounds, 96x96 PNGs, train/ (60 each) and test/ (30 each)
  phone.keras  a Keras 3 phone-style network (depthwise-separable inverted
               residuals, batch norm, ReLU6 and hard-swish, global pooling,
               logits out) trained 4 epochs on those photos

then times, in a fresh process, exactly what a user runs:
  edgekit run --model phone.keras --dataset folder --data-dir photos --run RUN [--variants V]

and prints each stage's seconds (from the run's own output), the total, and
the ratio to the 180 s bar.

  .venv/bin/python bench/import_colour.py [--variants all|ID,ID] [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import edgekit  # noqa: F401  (selects tf_keras for TensorFlow; Keras 3 stays `keras`)

SIZE = 96
CLASSES = {"red-square": (200, 40, 40), "green-disc": (40, 180, 60), "blue-square": (40, 60, 200),
           "yellow-disc": (210, 200, 40), "purple-square": (150, 50, 170), "cyan-disc": (40, 190, 200)}
BAR_SECONDS = 180.0


def make_photos(root: Path, train: int = 60, test: int = 30, seed: int = 0) -> None:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("test", test)):
        for name, rgb in CLASSES.items():
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                im = Image.fromarray(rng.integers(50, 170, (SIZE, SIZE, 3), dtype=np.uint8), "RGB")
                draw = ImageDraw.Draw(im)
                r = int(rng.integers(18, 34))
                cx, cy = (int(v) for v in rng.integers(r, SIZE - r, 2))
                colour = tuple(int(np.clip(v + rng.integers(-30, 31), 0, 255)) for v in rgb)
                (draw.rectangle if name.endswith("square") else draw.ellipse)((cx - r, cy - r, cx + r, cy + r),
                                                                             fill=colour)
                im.save(d / f"{i:03d}.png")


def _read(root: Path, split: str):
    from PIL import Image

    xs, ys = [], []
    for label, name in enumerate(sorted(CLASSES)):
        for p in sorted((root / split / name).glob("*.png")):
            with Image.open(p) as im:
                xs.append(np.asarray(im.convert("RGB"), np.uint8))
            ys.append(label)
    return np.stack(xs).astype(np.float32), np.asarray(ys)


def make_model(path: Path, photos: Path) -> float:
    """Train the phone network; returns its own test accuracy."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(0)

    def block(x, expand, out, stride, act, name):
        y = L.Conv2D(expand, 1, use_bias=False, name=f"{name}_expand")(x)
        y = L.BatchNormalization(momentum=0.9, name=f"{name}_expand_bn")(y)
        y = act(y, f"{name}_expand_act")
        y = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(y)
        y = L.BatchNormalization(momentum=0.9, name=f"{name}_dw_bn")(y)
        y = act(y, f"{name}_dw_act")
        y = L.Conv2D(out, 1, use_bias=False, name=f"{name}_project")(y)
        y = L.BatchNormalization(momentum=0.9, name=f"{name}_project_bn")(y)
        return L.Add(name=f"{name}_add")([x, y]) if stride == 1 and x.shape[-1] == out else y

    relu6 = lambda t, n: L.ReLU(6.0, name=n)(t)  # noqa: E731
    hswish = lambda t, n: L.Activation("hard_swish", name=n)(t)  # noqa: E731
    inp = keras.Input((SIZE, SIZE, 3), name="photo")
    x = L.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inp)
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = L.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = hswish(x, "stem_act")
    x = block(x, 32, 16, 1, relu6, "b1")
    x = block(x, 48, 24, 2, relu6, "b2")
    x = block(x, 72, 24, 1, relu6, "b3")
    x = block(x, 72, 40, 2, hswish, "b4")
    x = block(x, 120, 40, 1, hswish, "b5")
    x = block(x, 160, 64, 2, hswish, "b6")
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.2, name="drop")(x)
    out = L.Dense(len(CLASSES), name="logits")(x)
    model = keras.Model(inp, out, name="phone")
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    xt, yt = _read(photos, "train")
    model.fit(xt, yt, batch_size=32, epochs=4, verbose=0, shuffle=True)
    model.save(path)
    xs, ys = _read(photos, "test")
    return float(np.mean(model.predict(xs, verbose=0).argmax(1) == ys))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="runs/bench-import")
    ap.add_argument("--variants", default="all")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    photos, model = work / "photos", work / "phone.keras"
    if not model.is_file():
        shutil.rmtree(work, ignore_errors=True)
        make_photos(photos)
        acc = make_model(model, photos)
        print(f"built {model} ({SIZE}x{SIZE}x3, {len(CLASSES)} classes), its own test accuracy {acc:.4f}")
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    edgekit_cmd = str(Path(sys.executable).with_name("edgekit"))
    argv = [edgekit_cmd, "run", "--model", str(model), "--dataset", "folder", "--data-dir", str(photos),
            "--run", str(run), "--variants", args.variants]
    print("timing:", " ".join(argv[1:]), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "EDGEKIT_PROGRESS": "0"})
    seconds = time.perf_counter() - t0
    stages = re.findall(r"^\[(\w+)\] (?:done|finished with failures) in ([\d.]+) s", proc.stdout, flags=re.M)
    for name, s in stages:
        print(f"  {name:8s} {float(s):7.1f} s")
    print(f"edgekit run --model (96x96 colour): {seconds:.1f} s, exit {proc.returncode}, "
          f"{seconds / BAR_SECONDS:.2f}x of the {BAR_SECONDS:.0f} s bar")
    if proc.returncode not in (0, 1):
        print(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "(no stderr)")
    tail = [ln for ln in proc.stdout.splitlines() if ln.startswith(("iOS", "Android", "test accuracy"))]
    print("\n".join(tail))
    return 0


if __name__ == "__main__":
    sys.exit(main())
