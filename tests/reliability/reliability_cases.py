"""The bad-input catalogue: every case a user can cause, what edgekit must say.

Each ``Case`` builds a damaged input under a fresh directory (whose path has
spaces and non-ASCII characters) and returns the ``edgekit`` argv to run.
``test_rel_catalogue.py`` runs each through ``edgekit.apps.cli.main`` and asserts:
exit code 2, exactly one stderr line ``edgekit: error: <where>: <problem>``
that names the file or flag (``where``) and contains ``expect``, no
traceback, and the case directory byte-for-byte as before (paths, sizes,
sha256, mtimes). docs/RELIABILITY.md's table is checked against this list.
"""
from __future__ import annotations

import errno
import gzip
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from support.trees import copy_run, edit_json, rehash_keras, rehash_variant
from support import import_cases


@dataclass
class Ctx:
    root: Path          # the case directory (snapshotted)
    base: Path          # rel_base: model/, variants/, check/ of a tiny run
    monkeypatch: object

    def run(self, parts=("model", "variants", "check")) -> Path:
        return copy_run(self.base, self.root / "my run", parts)


@dataclass(frozen=True)
class Case:
    id: str
    stage: str                      # data | train | convert | check | report
    what: str                       # the input, for the docs table
    setup: Callable[[Ctx], list]    # builds the input, returns argv
    expect: str | tuple             # must appear in the error line (case-insensitive); a tuple: one of them
    where: str | None = None        # must appear in the error line's location part
    nobody: bool = False            # run the CLI as an unprivileged user (permission cases)
    post: Callable[[Ctx], None] | None = field(default=None)  # extra assertion after the run


# ----------------------------------------------------------------- data

def _idx_dir(c: Ctx, n_train=60, n_test=20, classes=3, size=8, compress=True) -> Path:
    from edgekit.train.idx import write_idx

    d = c.root / "idx data"
    d.mkdir()
    rng = np.random.default_rng(0)
    gz = ".gz" if compress else ""
    write_idx(d / f"train-images-idx3-ubyte{gz}", rng.integers(0, 256, (n_train, size, size)))
    write_idx(d / f"train-labels-idx1-ubyte{gz}", np.arange(n_train) % classes)
    write_idx(d / f"t10k-images-idx3-ubyte{gz}", rng.integers(0, 256, (n_test, size, size)))
    write_idx(d / f"t10k-labels-idx1-ubyte{gz}", np.arange(n_test) % classes)
    return d


def _train_idx(c: Ctx, d: Path) -> list:
    return ["train", "--dataset", "idx", "--data-dir", str(d), "--run", str(c.root / "new run"), "--epochs", "1"]


def _idx_case(edit):
    def setup(c: Ctx):
        d = _idx_dir(c, compress=False)
        edit(d)
        return _train_idx(c, d)
    return setup


def _patch_bytes(path: Path, offset: int, data: bytes) -> None:
    b = bytearray(path.read_bytes())
    b[offset:offset + len(data)] = data
    path.write_bytes(bytes(b))


def _folder(c: Ctx, classes=("a", "b"), per_class=3) -> Path:
    from PIL import Image

    root = c.root / "image folder"
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def _train_folder(c: Ctx, root: Path) -> list:
    return ["train", "--dataset", "folder", "--data-dir", str(root), "--run", str(c.root / "new run")]


def _unreadable_dir(c: Ctx):
    """An IDX dir nobody may read, and a run dir nobody *can* create (in a
    world-writable folder), so the one error is the data dir's, not the run dir's."""
    d = _idx_dir(c)
    os.chmod(d, 0o000)
    open_dir = c.root / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o1777)
    return ["train", "--dataset", "idx", "--data-dir", str(d), "--run", str(open_dir / "new run"), "--epochs", "1"]


def _mnist_copy_flipped(c: Ctx):
    from edgekit.train.data import bundled_mnist_dir

    d = c.root / "mnist copy"
    d.mkdir()
    for p in bundled_mnist_dir().glob("*.gz"):
        (d / p.name).write_bytes(p.read_bytes())
    labels = d / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one label changed: still a valid IDX file
    labels.write_bytes(gzip.compress(bytes(raw), mtime=0))
    return ["train", "--data-dir", str(d), "--run", str(c.root / "new run")]


# ---------------------------------------------------------------- train

def _train_flags(*flags):
    return lambda c: ["train", "--run", str(c.root / "new run"), *flags]


def _train_existing(c: Ctx):
    run = c.run(("model",))
    return ["train", "--run", str(run), "--epochs", "1", "--train-limit", "100"]


def _train_run_is_file(c: Ctx):
    (c.root / "a file").write_text("not a directory")
    return ["train", "--run", str(c.root / "a file" / "run"), "--epochs", "1"]


def _train_unwritable(c: Ctx):
    d = c.root / "read-only"
    d.mkdir()
    os.chmod(d, 0o555)
    return ["train", "--run", str(d / "run"), "--epochs", "1", "--train-limit", "100"]


def _enospc(*_, **__):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _train_disk_full(c: Ctx):
    # the manifest is the last file train writes: fail its fsync as a full disk would
    c.monkeypatch.setattr(os, "fsync", _enospc)
    return ["train", "--run", str(c.root / "new run"), "--epochs", "1", "--train-limit", "200",
            "--test-limit", "100", "--val-size", "50"]


# -------------------------------------------------------------- convert

def _convert(c: Ctx, run: Path, *flags):
    return ["convert", "--run", str(run), "--variants", "tflite-fp16", *flags]


def _conv_manifest(change, parts=("model",)):
    def setup(c: Ctx):
        run = c.run(parts)
        edit_json(run / "model" / "manifest.json", change)
        return _convert(c, run)
    return setup


def _conv_missing_model(c: Ctx):
    (c.root / "empty run").mkdir()
    return _convert(c, c.root / "empty run")


def _conv_raw_manifest(text: bytes):
    def setup(c: Ctx):
        run = c.run(("model",))
        (run / "model" / "manifest.json").write_bytes(text)
        return _convert(c, run)
    return setup


def _conv_huge_float(c: Ctx):
    run = c.run(("model",))
    p = run / "model" / "manifest.json"
    m = json.loads(p.read_text())
    m["config"]["learning_rate"] = "@INF@"
    p.write_text(json.dumps(m).replace('"@INF@"', "1e999"))  # json.loads turns 1e999 into inf
    return _convert(c, run)


def _conv_huge_manifest(c: Ctx):
    run = c.run(("model",))
    m = json.loads((run / "model" / "manifest.json").read_text())
    m["padding"] = "x" * (17 * 1024 * 1024)
    (run / "model" / "manifest.json").write_text(json.dumps(m))
    return _convert(c, run)


def _conv_corrupt_keras(c: Ctx):
    run = c.run(("model",))
    p = run / "model" / "model.keras"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])  # truncated zip
    rehash_keras(run)
    return _convert(c, run)


def _conv_keras_changed(c: Ctx):
    run = c.run(("model",))
    _patch_bytes(run / "model" / "model.keras", 100, b"\x00\x01\x02")
    return _convert(c, run)


def _conv_keras_missing(c: Ctx):
    run = c.run(("model",))
    (run / "model" / "model.keras").unlink()
    return _convert(c, run)


def _conv_keras_outside(c: Ctx):
    run = c.run(("model",))
    edit_json(run / "model" / "manifest.json",
              lambda m: m["files"]["keras"].__setitem__("path", "../../outside.keras"))
    return _convert(c, run)


def _conv_keras_symlink(c: Ctx):
    run = c.run(("model",))
    keras = run / "model" / "model.keras"
    outside = c.root / "outside.keras"
    keras.rename(outside)
    keras.symlink_to(outside)
    return _convert(c, run)


def _conv_lambda(c: Ctx):
    """A model with a Lambda layer whose code writes a marker file if it ever runs."""
    import tf_keras as keras

    run = c.run(("model",))
    marker = c.root / "LAMBDA RAN"
    inp = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Flatten()(inp)
    m = str(marker)
    x = keras.layers.Lambda(lambda t: (open(m, "w").close(), t)[1], name="evil")(x)
    x = keras.layers.Dense(10, name="logits")(x)
    out = keras.layers.Softmax(name="probabilities")(x)
    model = keras.Model(inp, out)
    if marker.exists():   # building the graph ran the lambda once; that is us, not edgekit
        marker.unlink()
    (run / "model" / "model.keras").unlink()
    model.save(run / "model" / "model.keras")
    rehash_keras(run)
    return _convert(c, run)


def _no_marker(c: Ctx):
    assert not (c.root / "LAMBDA RAN").exists(), "the Lambda layer's code ran while edgekit loaded the model"


def _conv_variants(ids):
    def setup(c: Ctx):
        return ["convert", "--run", str(c.run(("model",))), "--variants", ids]
    return setup


def _conv_bad_recipe(c: Ctx):
    from edgekit.convert.recipe import builtin_dir

    d = c.root / "my recipes"
    d.mkdir()
    r = json.loads((builtin_dir() / "tflite-fp16.json").read_text())
    r["tflite"]["supported_types"] = ["float8"]
    (d / "tflite-fp16.json").write_text(json.dumps(r))
    return _convert(c, c.run(("model",)), "--recipes", str(d))


def _conv_recipe_ios18_palette(c: Ctx):
    from edgekit.convert.recipe import builtin_dir

    d = c.root / "my recipes"
    d.mkdir()
    r = json.loads((builtin_dir() / "coreml-pal4.json").read_text())
    r["coreml"]["compression"].update(granularity="per_grouped_channel", group_size=16)   # target stays iOS16
    (d / "coreml-pal4.json").write_text(json.dumps(r))
    return ["convert", "--run", str(c.run(("model",))), "--variants", "coreml-pal4", "--recipes", str(d)]


def _conv_recipe_not_json(c: Ctx):
    d = c.root / "my recipes"
    d.mkdir()
    (d / "tflite-fp16.json").write_text("{ not json")
    return _convert(c, c.run(("model",)), "--recipes", str(d))


def _conv_existing(c: Ctx):
    return ["convert", "--run", str(c.run(("model", "variants"))), "--variants", "tflite-fp32"]


def _conv_variants_is_file(c: Ctx):
    run = c.run(("model",))
    (run / "variants").write_text("a file where variants/ should be")
    return _convert(c, run)


def _conv_unwritable(c: Ctx):
    run = c.run(("model", "variants"))
    os.chmod(run / "variants", 0o555)
    return _convert(c, run)


def _conv_disk_full(c: Ctx):
    c.monkeypatch.setattr(os, "fsync", _enospc)  # variant.json is written with write_json -> fsync
    return _convert(c, c.run(("model", "variants")))


# ---------------------------------------------------------------- check

def _check(run: Path, *flags):
    return ["check", "--run", str(run), "--latency-runs", "2", "--limit", "50", *flags]


def _chk(edit, parts=("model", "variants", "check"), flags=()):
    def setup(c: Ctx):
        run = c.run(parts)
        edit(run)
        return _check(run, *flags)
    return setup


def _truncate_tflite(run: Path):
    v = run / "variants" / "tflite-fp32"
    p = v / "model.tflite"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    rehash_variant(v)


def _foreign_tflite(run: Path):
    v = run / "variants" / "tflite-fp32"
    (v / "model.tflite").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    rehash_variant(v)


def _bitflip_tflite(run: Path):
    v = run / "variants" / "tflite-fp32"
    p = v / "model.tflite"
    b = bytearray(p.read_bytes())
    struct.pack_into("<I", b, 0, 0x7FFFFFF0)  # root table offset far past the end
    p.write_bytes(bytes(b))
    rehash_variant(v)


def _mlpackage_weights(run: Path) -> Path:
    return next((run / "variants" / "coreml-fp32" / "Model.mlpackage").rglob("weight.bin"))


def _ml_missing_weights(run: Path):
    _mlpackage_weights(run).unlink()
    rehash_variant(run / "variants" / "coreml-fp32")


def _ml_bad_sentinel(run: Path):
    _patch_bytes(_mlpackage_weights(run), 64, struct.pack("<I", 0x12345678))
    rehash_variant(run / "variants" / "coreml-fp32")


def _ml_offset_past_end(run: Path):
    p = _mlpackage_weights(run)
    _patch_bytes(p, 64 + 16, struct.pack("<Q", p.stat().st_size + 4096))
    rehash_variant(run / "variants" / "coreml-fp32")


def _ml_missing_spec(run: Path):
    next((run / "variants" / "coreml-fp32" / "Model.mlpackage").rglob("model.mlmodel")).unlink()
    rehash_variant(run / "variants" / "coreml-fp32")


def _ml_garbage_spec(run: Path):
    next((run / "variants" / "coreml-fp32" / "Model.mlpackage").rglob("model.mlmodel")).write_bytes(b"\xff" * 300)
    rehash_variant(run / "variants" / "coreml-fp32")


def _variant_json(change, vid="tflite-fp32"):
    return lambda run: edit_json(run / "variants" / vid / "variant.json", change)


def _shape_mismatch(run: Path):
    """A real .tflite that takes 32x32 images in a run whose images are 28x28."""
    import tensorflow as tf
    import tf_keras as keras

    inp = keras.Input((32, 32, 1), name="image")
    x = keras.layers.Flatten()(inp)
    out = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    blob = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out)).convert()
    v = run / "variants" / "tflite-fp32"
    (v / "model.tflite").write_bytes(blob)
    rehash_variant(v)


def _int32_input(run: Path):
    """A real .tflite whose input is int32, not float32 pixels."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.int32)])
    def f(x):
        return tf.nn.softmax(tf.reshape(tf.cast(x, tf.float32), [-1, 784])[:, :10])

    blob = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()]).convert()
    v = run / "variants" / "tflite-fp32"
    (v / "model.tflite").write_bytes(blob)
    rehash_variant(v)


def _check_unwritable(run: Path):
    os.chmod(run, 0o555)


def _check_disk_full(c: Ctx):
    run = c.run()
    import numpy
    real = numpy.savez

    def savez(file, *a, **k):  # the second predictions file hits a full disk
        savez.calls += 1
        if savez.calls == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real(file, *a, **k)
    savez.calls = 0
    c.monkeypatch.setattr(numpy, "savez", savez)
    c.monkeypatch.setattr(numpy, "savez_compressed", savez)
    return _check(run)


# --------------------------------------------------------------- report

def _rep(edit, parts=("model", "variants", "check")):
    def setup(c: Ctx):
        run = c.run(parts)
        edit(run)
        return ["report", "--run", str(run)]
    return setup


def _rep_flags(*flags, command="report"):
    """A sound checked run, a recommendation flag out of range (report; run refuses it before any stage runs)."""
    def setup(c: Ctx):
        run = c.run()
        return [command, "--run", str(run), *flags]
    return setup


def _pickled_npz(run: Path):
    p = run / "check" / "predictions" / "original.npz"
    np.savez(p, probabilities=np.array([{"a": 1}], dtype=object), labels=np.zeros(1, np.int64))


def _truncated_npz(run: Path):
    p = run / "check" / "predictions" / "tflite-fp32.npz"
    p.write_bytes(p.read_bytes()[:200])


def _report_unwritable(run: Path):
    os.chmod(run, 0o555)


# -------------------------------------------------------------- the list

def _diag(edit=lambda run: None, parts=("model", "variants", "check"), variant="tflite-fp32", flags=()):
    """edgekit diagnose on a copy of the base run, damaged by ``edit``."""
    def setup(c: Ctx):
        run = c.run(parts)
        edit(run)
        return ["diagnose", "--run", str(run), "--variant", variant, "--limit", "20", *flags]
    return setup


def _tune(*flags, parts=("model", "variants", "check"), edit=lambda run: None):
    """edgekit tune on a copy of the base run (damaged by ``edit``) with ``flags``."""
    def setup(c: Ctx):
        run = c.run(parts)
        edit(run)
        defaults = {"--platform": "android", "--target-agreement": "0.99"}
        given = dict(zip(flags[::2], flags[1::2]))
        args = [a for k, v in {**defaults, **given}.items() for a in (k, v)]
        return ["tune", "--run", str(run), "--limit", "40", *args]
    return setup


def _set(path, value):
    def change(m):
        node = m
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return change


def _five_classes(m):
    """A consistent io section for 5 classes (the model still gives 10)."""
    m["io"]["class_names"] = list("abcde")
    m["io"]["outputs"][0]["shape"] = [None, 5]


def _delete(key):
    def change(m):
        del m[key]
    return change


CASES = [
    # data (through edgekit train)
    Case("data-dir-missing", "data", "--data-dir does not exist",
         lambda c: _train_idx(c, c.root / "no such dir"), "data directory not found", "no such dir"),
    Case("data-dir-is-file", "data", "--data-dir is a file",
         lambda c: (c.root / "f.txt").write_text("x") and _train_idx(c, c.root / "f.txt"), "is not a directory", "f.txt"),
    Case("data-dir-unreadable", "data", "--data-dir without read permission",
         _unreadable_dir, "cannot read directory", "idx data", nobody=True),
    Case("idx-file-missing", "data", "IDX folder lacks the test labels",
         _idx_case(lambda d: (d / "t10k-labels-idx1-ubyte").unlink()), "missing idx file", "idx data"),
    Case("idx-duplicate-role", "data", "two files for the same role (raw and .gz)",
         _idx_case(lambda d: (d / "train-images-idx3-ubyte.gz").write_bytes(
             gzip.compress((d / "train-images-idx3-ubyte").read_bytes()))), "two files for train-images", "train-images"),
    Case("idx-wrong-magic", "data", "image file with the label magic",
         _idx_case(lambda d: _patch_bytes(d / "train-images-idx3-ubyte", 0, struct.pack(">I", 0x801))),
         "wrong magic 0x00000801", "train-images-idx3-ubyte"),
    Case("idx-not-idx", "data", "a PNG renamed to an IDX name",
         _idx_case(lambda d: (d / "train-images-idx3-ubyte").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)),
         "wrong magic", "train-images-idx3-ubyte"),
    Case("idx-truncated", "data", "raw image file cut short",
         _idx_case(lambda d: (d / "train-images-idx3-ubyte").write_bytes((d / "train-images-idx3-ubyte").read_bytes()[:500])),
         "truncated", "train-images-idx3-ubyte"),
    Case("idx-truncated-header", "data", "file shorter than its header",
         _idx_case(lambda d: (d / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08")), "too short", "t10k-labels"),
    Case("idx-truncated-gzip", "data", "gzip stream cut short",
         lambda c: (lambda d: ((d / "train-labels-idx1-ubyte.gz").write_bytes(
             (d / "train-labels-idx1-ubyte.gz").read_bytes()[:-12]), _train_idx(c, d))[1])(_idx_dir(c)),
         "truncated", "train-labels-idx1-ubyte.gz"),
    Case("idx-huge-header", "data", "header claims 2^32-1 images (no allocation)",
         _idx_case(lambda d: _patch_bytes(d / "train-images-idx3-ubyte", 4, struct.pack(">I", 2**32 - 1))),
         "more than", "train-images-idx3-ubyte"),
    Case("idx-extra-bytes", "data", "bytes after the promised payload",
         _idx_case(lambda d: open(d / "train-labels-idx1-ubyte", "ab").write(b"\0" * 7)),
         "more bytes", "train-labels-idx1-ubyte"),
    Case("idx-count-mismatch", "data", "59 labels for 60 images",
         _idx_case(lambda d: __import__("edgekit.train.idx", fromlist=["x"]).write_idx(
             d / "train-labels-idx1-ubyte", np.arange(59) % 3)), "59 labels for 60 images", "train-labels"),
    Case("idx-no-images", "data", "test file with zero images",
         _idx_case(lambda d: (__import__("edgekit.train.idx", fromlist=["x"]).write_idx(
             d / "t10k-images-idx3-ubyte", np.zeros((0, 8, 8))), __import__("edgekit.train.idx", fromlist=["x"]).write_idx(
             d / "t10k-labels-idx1-ubyte", np.zeros(0)))), "holds no images", "t10k-images"),
    Case("idx-size-mismatch", "data", "test images 9x9, training images 8x8",
         _idx_case(lambda d: __import__("edgekit.train.idx", fromlist=["x"]).write_idx(
             d / "t10k-images-idx3-ubyte", np.zeros((20, 9, 9)))), "images are", "t10k-images"),
    Case("idx-label-out-of-range", "data", "a test label outside the training classes",
         _idx_case(lambda d: __import__("edgekit.train.idx", fromlist=["x"]).write_idx(
             d / "t10k-labels-idx1-ubyte", np.full(20, 7))), "outside the 3 classes", "t10k-labels"),
    Case("mnist-corrupt-copy", "data", "MNIST copy with one changed label",
         _mnist_copy_flipped, "not the original mnist file", "t10k-labels-idx1-ubyte.gz"),
    Case("folder-empty", "data", "image folder with no class folders",
         lambda c: (c.root / "image folder").mkdir() or _train_folder(c, c.root / "image folder"),
         "holds no class subfolders", "image folder"),
    Case("folder-class-without-images", "data", "a class folder with no images",
         lambda c: (_folder(c), (c.root / "image folder" / "empty").mkdir(), _train_folder(c, c.root / "image folder"))[2],
         "class folder holds no images", "empty"),
    Case("folder-non-image-file", "data", "notes.txt among the images",
         lambda c: (_folder(c), (c.root / "image folder" / "a" / "notes.txt").write_text("hi"),
                    _train_folder(c, c.root / "image folder"))[2], "not a png or jpeg", "notes.txt"),
    Case("folder-fake-png", "data", "random bytes named .png",
         lambda c: (_folder(c), (c.root / "image folder" / "b" / "9.png").write_bytes(os.urandom(300)),
                    _train_folder(c, c.root / "image folder"))[2], "not a png or jpeg image", "9.png"),
    Case("folder-gif-as-png", "data", "a GIF named .png",
         lambda c: (_folder(c), __import__("PIL.Image", fromlist=["x"]).new("L", (10, 10)).save(
             c.root / "image folder" / "b" / "9.png", format="GIF"), _train_folder(c, c.root / "image folder"))[2],
         "is a gif image", "9.png"),
    Case("folder-one-class", "data", "an image folder with a single class folder",
         lambda c: _train_folder(c, _folder(c, classes=("a",), per_class=6)),
         "at least two classes", "image folder"),
    Case("folder-class-too-small", "data", "a class folder with one image (no split can give it train and test)",
         lambda c: _train_folder(c, (_folder(c, classes=("a", "b"), per_class=6),
                                     [p.unlink() for p in sorted((c.root / "image folder" / "b").glob("*.png"))[1:]])[0]),
         "at least 5 images", "b"),
    Case("folder-class-names-collide", "data", "class folders Cat and cat (one on a case-insensitive disk)",
         lambda c: _train_folder(c, _folder(c, classes=("Cat", "cat"), per_class=6)),
         "differ only in letter case", "image folder"),
    Case("idx-one-class", "data", "IDX data whose training labels are all the same class",
         _idx_case(lambda d: __import__("edgekit.train.idx", fromlist=["x"]).write_idx(
             d / "train-labels-idx1-ubyte", np.zeros(60))), "at least two classes", "train-labels"),
    Case("folder-stray-file", "data", "a file beside the class folders",
         lambda c: (_folder(c), (c.root / "image folder" / "README").write_text("x"),
                    _train_folder(c, c.root / "image folder"))[2], "is a file", "README"),
    # train flags and output
    Case("train-unknown-model", "train", "--model resnet", _train_flags("--model", "resnet"), "invalid choice: 'resnet'", "--model"),
    Case("train-unknown-dataset", "train", "--dataset cifar", _train_flags("--dataset", "cifar"), "invalid choice: 'cifar'", "--dataset"),
    Case("train-idx-without-data-dir", "train", "--dataset idx without --data-dir", _train_flags("--dataset", "idx"),
         "needs --data-dir", "--data-dir"),
    Case("train-epochs-zero", "train", "--epochs 0", _train_flags("--epochs", "0"), "positive integer", "--epochs"),
    Case("train-batch-negative", "train", "--batch-size -4", _train_flags("--batch-size", "-4"), "positive integer", "--batch-size"),
    Case("train-epochs-not-int", "train", "--epochs two", _train_flags("--epochs", "two"), "invalid int value", "train"),
    Case("train-learning-rate-nan", "train", "--learning-rate nan", _train_flags("--learning-rate", "nan"),
         "number in (0, 1)", "--learning-rate"),
    Case("train-max-epochs-with-epochs", "train", "--max-epochs with --epochs (a cap and a fixed budget)",
         _train_flags("--epochs", "2", "--max-epochs", "8"), "--epochs sets a fixed budget", "--max-epochs"),
    Case("train-max-epochs-below-first-cycle", "train", "--model deep --max-epochs 4 (below deep's first cycle of 8 epochs)",
         _train_flags("--model", "deep", "--max-epochs", "4"), "at least deep's first cycle", "--max-epochs"),
    Case("train-val-size-too-big", "train", "--val-size larger than the training set",
         lambda c: _train_idx(c, _idx_dir(c)) + ["--val-size", "60"], "must be between 0 and 59", "--val-size"),
    Case("train-existing-run", "train", "run dir with model/ and no --overwrite", _train_existing,
         "already exists", "model"),
    Case("train-run-under-file", "train", "--run below a regular file", _train_run_is_file, "not a directory", "a file"),
    Case("train-run-unwritable", "train", "--run in a read-only directory", _train_unwritable, ("not writable", "permission denied"),
         "read-only", nobody=True),
    Case("train-disk-full", "train", "disk full (ENOSPC) while writing the model manifest", _train_disk_full,
         "no space left on device", "manifest.json"),
    # convert
    Case("convert-no-model", "convert", "run dir without model/", _conv_missing_model, "manifest not found", "manifest.json"),
    Case("convert-manifest-not-json", "convert", "manifest.json is not JSON", _conv_raw_manifest(b'{"schema": '),
         "not valid json", "manifest.json"),
    Case("convert-manifest-not-utf8", "convert", "manifest.json is binary", _conv_raw_manifest(b"\xff\xfe\x00{"),
         "not utf-8", "manifest.json"),
    Case("convert-manifest-array", "convert", "manifest.json is a JSON array", _conv_raw_manifest(b"[1, 2]"),
         "not a json object", "manifest.json"),
    Case("convert-manifest-nan", "convert", "manifest.json holds NaN", _conv_raw_manifest(b'{"schema": NaN}'),
         "not valid json", "manifest.json"),
    Case("convert-manifest-huge-float", "convert", "manifest number 1e999 (infinite)",
         _conv_huge_float,
         "not valid json", "manifest.json"),
    Case("convert-manifest-deep", "convert", "manifest nested 100,000 levels deep",
         _conv_raw_manifest(b'{"schema": ' + b"[" * 100000 + b"]" * 100000 + b"}"), "not valid json", "manifest.json"),
    Case("convert-manifest-too-big", "convert", "manifest.json of 17 MB", _conv_huge_manifest, "bytes, more than", "manifest.json"),
    Case("convert-manifest-other-version", "convert", "model manifest of schema edgekit.model/1",
         _conv_manifest(_set(["schema"], "edgekit.model/1")), "not supported by this edgekit", "manifest.json"),
    Case("convert-manifest-foreign", "convert", "a variant.json where the model manifest should be",
         _conv_manifest(_set(["schema"], "edgekit.variant/1")), "not an edgekit manifest of kind", "manifest.json"),
    Case("convert-manifest-missing-key", "convert", "model manifest without files",
         _conv_manifest(_delete("files")), "missing key 'files'", "manifest.json"),
    Case("convert-manifest-wrong-type", "convert", "model manifest whose dataset is a list",
         _conv_manifest(_set(["dataset"], [1])), "should be dict", "manifest.json"),
    Case("convert-manifest-huge-shape", "convert", "io input shape [null, 10^30, 28, 1]",
         _conv_manifest(_set(["io", "inputs", 0, "shape"], [None, 10**30, 28, 1])), "shape should be", "manifest.json"),
    Case("convert-manifest-duplicate-classes", "convert", "class names with a duplicate",
         _conv_manifest(_set(["io", "class_names"], ["0"] * 10)), "duplicates", "manifest.json"),
    Case("convert-manifest-shape-mismatch", "convert", "manifest says 5 classes, the model gives 10",
         _conv_manifest(_five_classes), "gives 10 classes", "manifest.json"),
    Case("convert-keras-missing", "convert", "model.keras deleted", _conv_keras_missing, "model file not found", "model.keras"),
    Case("convert-keras-changed", "convert", "model.keras changed after training", _conv_keras_changed,
         "sha256 differs", "model.keras"),
    Case("convert-keras-corrupt", "convert", "truncated model.keras (hash updated)", _conv_corrupt_keras,
         "not a loadable tf_keras model", "model.keras"),
    Case("convert-keras-lambda", "convert", "model.keras with a Lambda layer (code must not run)", _conv_lambda,
         "not a loadable tf_keras model", "model.keras", post=_no_marker),
    Case("convert-keras-path-outside", "convert", "files.keras.path = ../../outside.keras", _conv_keras_outside,
         "leads outside", "outside.keras"),
    Case("convert-keras-symlink-outside", "convert", "model.keras a symlink out of the run", _conv_keras_symlink,
         "leads outside", "model.keras"),
    Case("convert-unknown-variant", "convert", "--variants tflite-int3", _conv_variants("tflite-int3"),
         "unknown variant id 'tflite-int3'", "--variants"),
    Case("convert-variant-twice", "convert", "--variants tflite-fp32,tflite-fp32", _conv_variants("tflite-fp32,tflite-fp32"),
         "listed twice", "--variants"),
    Case("convert-calibration-zero", "convert", "--calibration-size 0",
         lambda c: _convert(c, c.run(("model",)), "--calibration-size", "0"), "integer in [1,", "--calibration-size"),
    Case("convert-jobs-zero", "convert", "--jobs 0",
         lambda c: _convert(c, c.run(("model",)), "--jobs", "0"), "integer >= 1", "--jobs"),
    Case("convert-recipe-invalid", "convert", "recipe with supported_types float8", _conv_bad_recipe,
         "recipe field", "tflite-fp16.json"),
    Case("convert-recipe-ios18-palette", "convert", "recipe with palettes per group of channels for iOS16",
         _conv_recipe_ios18_palette, "per_grouped_channel needs iOS18", "coreml-pal4.json"),
    Case("convert-recipe-not-json", "convert", "recipe file that is not JSON", _conv_recipe_not_json,
         "not valid json", "tflite-fp16.json"),
    Case("convert-recipes-dir-missing", "convert", "--recipes folder does not exist",
         lambda c: _convert(c, c.run(("model",)), "--recipes", str(c.root / "nope")), "recipe directory not found", "nope"),
    Case("convert-existing-variant", "convert", "variant exists, no --overwrite", _conv_existing, "already exists", "tflite-fp32"),
    Case("convert-variants-is-file", "convert", "variants/ is a regular file", _conv_variants_is_file,
         "exists and is not a directory", "variants"),
    Case("convert-output-unwritable", "convert", "variants/ read-only", _conv_unwritable, ("not writable", "permission denied"), "variants",
         nobody=True),
    Case("convert-disk-full", "convert", "disk full (ENOSPC) while writing variant.json", _conv_disk_full,
         "no space left on device", "variant.json"),
    # check
    Case("check-no-variants", "check", "run without variants/", _chk(lambda r: None, parts=("model",)),
         "no variants to check", "variants"),
    Case("check-no-model", "check", "run without model/", _chk(lambda r: None, parts=("variants",)),
         "manifest not found", "manifest.json"),
    Case("check-variant-without-json", "check", "variant dir without variant.json (interrupted convert)",
         _chk(lambda r: (r / "variants" / "tflite-fp32" / "variant.json").unlink()), "has no variant.json", "tflite-fp32"),
    Case("check-variant-other-schema", "check", "variant.json of schema edgekit.variant/9",
         _chk(_variant_json(_set(["schema"], "edgekit.variant/9"))), "not supported", "variant.json"),
    Case("check-variant-old-schema", "check", "variant.json of the old schema edgekit.variant/1 (an older run)",
         _chk(_variant_json(_set(["schema"], "edgekit.variant/1"))), "not supported", "variant.json"),
    Case("check-index-other-schema", "check", "variants/index.json of schema edgekit.variant-index/2",
         _chk(lambda r: edit_json(r / "variants" / "index.json", _set(["schema"], "edgekit.variant-index/2"))),
         "not supported", "index.json"),
    Case("check-model-old-schema", "check", "model/manifest.json of the old schema edgekit.model/1 (an older run)",
         _chk(lambda r: edit_json(r / "model" / "manifest.json", _set(["schema"], "edgekit.model/1"))),
         "not supported", "manifest.json"),
    Case("check-variant-id-mismatch", "check", "variant.json id differs from its folder",
         _chk(_variant_json(_set(["id"], "tflite-int8"))), "does not match its directory", "variant.json"),
    Case("check-variant-wrong-type", "check", "variant.json file is a string",
         _chk(_variant_json(_set(["file"], "model.tflite"))), "should be dict", "variant.json"),
    Case("check-variant-other-model", "check", "variant converted from another model",
         _chk(_variant_json(_set(["source_model", "sha256"], "0" * 64))), "converted from another model", "variant.json"),
    Case("check-variant-file-outside", "check", "variant file path ../../model/model.keras",
         _chk(_variant_json(_set(["file", "path"], "../../model/model.keras"))), "leads outside", "model.keras"),
    Case("check-variant-symlink-outside", "check", "model.tflite a symlink out of the run",
         _chk(lambda r: ((r / "variants" / "tflite-fp32" / "model.tflite").unlink(),
                         (r / "variants" / "tflite-fp32" / "model.tflite").symlink_to(r.parent / "elsewhere.tflite"))),
         "leads outside", "model.tflite"),
    Case("check-tflite-changed", "check", "model.tflite changed after conversion",
         _chk(lambda r: _patch_bytes(r / "variants" / "tflite-fp32" / "model.tflite", 200, b"\x01\x02")),
         "sha256 differs", "model.tflite"),
    Case("check-tflite-truncated", "check", "model.tflite cut to a third (hash updated)", _chk(_truncate_tflite),
         "cannot load", "model.tflite"),
    Case("check-tflite-foreign", "check", "a zip file as model.tflite", _chk(_foreign_tflite),
         "not a tensorflow lite model", "model.tflite"),
    Case("check-tflite-bad-root", "check", "flatbuffer root offset past the end", _chk(_bitflip_tflite),
         "model.tflite", "model.tflite"),
    Case("check-tflite-input-shape", "check", "a .tflite taking 32x32 images in a 28x28 run", _chk(_shape_mismatch),
         "model input is [32, 32, 1], the dataset's images are [28, 28, 1]", "model.tflite"),
    Case("check-tflite-input-dtype", "check", "a .tflite taking int32 input", _chk(_int32_input),
         "unsupported dtype int32", "model.tflite"),
    Case("check-mlpackage-no-weights", "check", ".mlpackage without weight.bin", _chk(_ml_missing_weights),
         "weight file is missing", "Model.mlpackage"),
    Case("check-mlpackage-bad-sentinel", "check", "weight.bin blob record with a bad sentinel", _chk(_ml_bad_sentinel),
         "bad blob sentinel", "weight.bin"),
    Case("check-mlpackage-offset-past-end", "check", "weight.bin data offset past the end", _chk(_ml_offset_past_end),
         "runs past the end", "weight.bin"),
    Case("check-mlpackage-no-spec", "check", ".mlpackage without model.mlmodel", _chk(_ml_missing_spec),
         "model.mlmodel is missing", "model.mlmodel"),
    Case("check-mlpackage-garbage-spec", "check", "model.mlmodel of random bytes", _chk(_ml_garbage_spec),
         "not a core ml model", "model.mlmodel"),
    Case("check-unknown-variant", "check", "--variants nope", _chk(lambda r: None, flags=("--variants", "nope")),
         "nope", None),
    Case("check-unknown-backend", "check", "--backend tpu", _chk(lambda r: None, flags=("--backend", "tpu")),
         "invalid choice: 'tpu'", "--backend"),   # choices: --help lists them
    Case("check-agreement-above-one", "check", "--min-agreement 1.5", _chk(lambda r: None, flags=("--min-agreement", "1.5")),
         "outside [0, 1]", "--min-agreement"),
    Case("check-psnr-nan", "check", "--min-psnr nan", _chk(lambda r: None, flags=("--min-psnr", "nan")),
         "finite number", "--min-psnr"),
    Case("check-drop-negative", "check", "--max-accuracy-drop -1", _chk(lambda r: None, flags=("--max-accuracy-drop", "-1")),
         "outside", "--max-accuracy-drop"),
    Case("check-limit-zero", "check", "--limit 0", _chk(lambda r: None, flags=("--limit", "0")), "positive", "--limit"),
    Case("check-jobs-zero", "check", "--jobs 0", _chk(lambda r: None, flags=("--jobs", "0")), "integer >= 1", "--jobs"),
    Case("check-output-unwritable", "check", "run dir read-only (check/ cannot be replaced)", _chk(_check_unwritable),
         ("not writable", "permission denied"), "my run", nobody=True),
    Case("check-disk-full", "check", "disk full (ENOSPC) while writing predictions", _check_disk_full,
         "no space left on device", ".npz"),
    # diagnose
    Case("diagnose-unknown-variant", "diagnose", "--variant nope", _diag(variant="nope"), "no variant 'nope'",
         "--variant"),
    Case("diagnose-variant-not-an-id", "diagnose", "--variant ../model (not a variant id)",
         _diag(variant="../model"), "give one variant id", "--variant"),
    Case("diagnose-limit-zero", "diagnose", "--limit 0", _diag(flags=("--limit", "0")), "positive", "--limit"),
    Case("diagnose-no-variants", "diagnose", "run without variants/", _diag(parts=("model",)),
         "no variant index", "variants"),
    Case("diagnose-no-layer-map", "diagnose", "variant.json without a layer map (converted by an older edgekit)",
         _diag(_variant_json(_delete("layers"))), "has no layer map", "variant.json"),
    Case("diagnose-layer-map-error", "diagnose", "variant.json whose layer map failed at convert time",
         _diag(_variant_json(_set(["layers"], {"error": "ValueError: no ops"}))),
         "could not be built at convert time", "variant.json"),
    Case("diagnose-layer-map-malformed", "diagnose", "variant.json layer map with groups a number",
         _diag(_variant_json(_set(["layers", "groups"], 5))), "layer map is malformed", "variant.json"),
    Case("diagnose-layer-map-bad-group", "diagnose", "layer map row pointing at group 99",
         _diag(_variant_json(_set(["layers", "layers", 0, "group"], 99)), variant="tflite-fp32"),
         "layer map is malformed", "variant.json"),
    Case("diagnose-layer-map-foreign-layer", "diagnose", "layer map naming a layer the model does not have",
         _diag(_variant_json(_set(["layers", "layers", 0, "layer"], "conv9")), variant="tflite-fp32"),
         "layers the model does not have: conv9", "variant.json"),
    Case("diagnose-coreml-no-weights", "diagnose", ".mlpackage without weight.bin (hash updated)",
         _diag(_ml_missing_weights, variant="coreml-fp32"), "weight file is missing", "Model.mlpackage"),
    Case("diagnose-output-unwritable", "diagnose", "run dir read-only (diagnose/ cannot be created)",
         _diag(_check_unwritable), ("not writable", "permission denied"), "my run", nobody=True),
    # tune
    Case("tune-target-above-one", "tune", "--target-agreement 1.5", _tune("--target-agreement", "1.5"), "(0, 1]",
         "--target-agreement"),
    Case("tune-target-percentage", "tune", "--target-agreement 99.9 (a percentage)", _tune("--target-agreement", "99.9"),
         "(0, 1]", "--target-agreement"),
    Case("tune-target-zero", "tune", "--target-agreement 0", _tune("--target-agreement", "0"), "(0, 1]",
         "--target-agreement"),
    Case("tune-unknown-platform", "tune", "--platform windows", _tune("--platform", "windows"),
         "invalid choice: 'windows'", "--platform"),
    Case("tune-no-check", "tune", "run without check/ (nothing to compare with)", _tune(parts=("model", "variants")),
         "run `edgekit check", "results.json"),
    Case("tune-max-size-negative", "tune", "--max-size -5", _tune("--max-size", "-5"), "positive number of KB",
         "--max-size"),
    Case("tune-limit-too-small", "tune", "--limit 5 (no two halves)",
         lambda c: _tune()(c) + ["--limit", "5"], "at least 20", "--limit"),
    Case("tune-output-unwritable", "tune", "run dir read-only (tune/ cannot be created)", _tune(edit=_check_unwritable),
         ("not writable", "permission denied"), "my run", nobody=True),
    # report
    Case("report-no-check", "report", "run without check/", _rep(lambda r: None, parts=("model", "variants")),
         "not found", "results.json"),
    Case("report-results-other-schema", "report", "results.json of the old schema edgekit.check/1 (an older run)",
         _rep(lambda r: edit_json(r / "check" / "results.json", _set(["schema"], "edgekit.check/1"))),
         "not supported", "results.json"),
    Case("report-results-wrong-type", "report", "results.json variants is a list",
         _rep(lambda r: edit_json(r / "check" / "results.json", _set(["variants"], []))), "should be dict", "results.json"),
    Case("report-predictions-missing", "report", "check/predictions/original.npz deleted",
         _rep(lambda r: (r / "check" / "predictions" / "original.npz").unlink()), "not found", "original.npz"),
    Case("report-predictions-pickle", "report", "original.npz holding a pickled object array", _rep(_pickled_npz),
         "original.npz", "original.npz"),
    Case("report-predictions-truncated", "report", "a variant's predictions .npz cut short", _rep(_truncated_npz),
         "tflite-fp32.npz", "tflite-fp32.npz"),
    Case("report-output-unwritable", "report", "run dir read-only (report/ cannot be written)", _rep(_report_unwritable),
         ("not writable", "permission denied"), "my run", nobody=True),
    Case("report-target-above-one", "report", "--target-agreement 1.5 (a fraction, not a percentage)",
         _rep_flags("--target-agreement", "1.5"), "(0, 1]", "--target-agreement"),
    Case("report-target-zero", "report", "--target-agreement 0", _rep_flags("--target-agreement", "0"),
         "(0, 1]", "--target-agreement"),
    Case("report-max-size-negative", "report", "--max-size -5", _rep_flags("--max-size", "-5"),
         "positive number of KB", "--max-size"),
    Case("report-max-size-nan", "report", "--max-size nan", _rep_flags("--max-size", "nan"),
         "positive number of KB", "--max-size"),
    Case("report-drop-negative", "report", "--max-accuracy-drop -1 (the recommendation's cap)",
         _rep_flags("--max-accuracy-drop", "-1"), "[0, 100]", "--max-accuracy-drop"),
    Case("run-target-above-one", "report", "edgekit run --target-agreement 99.5 (a percentage)",
         _rep_flags("--target-agreement", "99.5", command="run"), "(0, 1]", "--target-agreement"),
    Case("run-max-size-zero", "report", "edgekit run --max-size 0", _rep_flags("--max-size", "0", command="run"),
         "positive number of KB", "--max-size"),
    Case("report-diagnose-limit-negative", "report", "--diagnose-limit -1 (0 turns the per-layer section off)",
         _rep_flags("--diagnose-limit", "-1"), "[0, 10000]", "--diagnose-limit"),
    Case("run-diagnose-limit-negative", "report", "edgekit run --diagnose-limit -5",
         _rep_flags("--diagnose-limit", "-5", command="run"), "[0, 10000]", "--diagnose-limit"),
]


# edgekit import's cases (issue 11), built in support.import_cases
CASES += [Case(*fields) for fields in import_cases.CASES]


def markdown_table() -> str:
    """The catalogue as the Markdown table of docs/RELIABILITY.md."""
    rows = ["| case | stage | input | the error line contains |", "|---|---|---|---|"]
    for c in CASES:
        expect = " / ".join(c.expect) if isinstance(c.expect, tuple) else c.expect
        rows.append(f"| `{c.id}` | {c.stage} | {c.what.replace('|', '/')} | {expect} |")
    return "\n".join(rows)


if __name__ == "__main__":  # print the docs table
    print(markdown_table())
