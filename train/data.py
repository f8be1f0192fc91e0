"""Datasets in, a validated train/val/test split out.

``load_dataset(name, data_dir, ...)`` reads one of:

- ``mnist``: the bundled IDX files (``edgekit.data/mnist``), each checked
  against the sha256 of its uncompressed content (a corrupt copy is refused);
  with ``data_dir``, the same four files from there, checked the same way;
- ``fashion-mnist``: ``/usr/share/datasets/fashion-mnist/`` (Debian package
  ``dataset-fashion-mnist``) or ``data_dir``;
- ``idx``: any directory holding the four IDX files
  (``train-images``/``train-labels``/``t10k-images`` or ``test-images``/...
  labels, gzipped or raw);
- ``folder``: an image folder with one subfolder per class (PNG/JPEG,
  resized to ``image_size`` bilinear, whole image, no crop; grayscale or
  colour as ``color`` says), with ``train/`` and ``test/``
  subfolders if present, otherwise a seeded stratified 80/20 split. Class
  names are the folder names, sorted. Hidden files (``.DS_Store``) are
  ignored; any other non-image file is an error.

and returns a ``Dataset``: uint8 ``[N,H,W]`` images (``[N,H,W,3]`` for a
colour dataset, channels in the order ``color`` names), int64 labels, class
names, and ``info``, the manifest's ``dataset`` section (source, file hashes,
split), from which ``load_from_manifest`` rebuilds exactly the same split
later, after checking that the files have not changed.

Colour (``color``): ``"grayscale"`` (the default: every image made
one-channel, as before), ``"rgb"``/``"bgr"`` (three channels in that
order), or ``"auto"`` (a folder is RGB when any image in it is stored in
colour, grayscale otherwise; IDX data is grayscale). IDX datasets stay
grayscale. With ``strict_color`` (what ``edgekit import`` passes unless
``--color`` was given) a grayscale dataset asked for in colour, or a colour
folder asked for in grayscale, is a DataError instead of a conversion.

The validation split is taken from the training set with a seeded
permutation; ``train_limit``/``test_limit`` take seeded, class-balanced
subsets (for fast tests).
"""
from __future__ import annotations

import hashlib
import importlib.resources
import math
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit import artifacts
from edgekit.errors import ArtifactError, ConfigError, DataError
from edgekit.rundir import MODEL_MANIFEST
from edgekit.train.idx import read_idx

DATASETS = ("mnist", "fashion-mnist", "idx", "folder")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# sha256 of the uncompressed content; the same table is in data/mnist/README.md.
MNIST_SHA256 = {
    "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
COLORS = ("grayscale", "rgb", "bgr")
# Resizing, the same everywhere (data, Core ML/TFLite metadata, golden kit):
# bilinear over the whole image, no crop, aspect ratio not kept.
RESIZE_METHOD = "bilinear"
MIN_SIDE, MAX_SIDE = 16, 512          # model input sizes folder data is resized to
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
DEFAULT_VAL_SIZE = 5000
FOLDER_TEST_FRACTION = 0.2
# Images larger than this (pixels) are refused before decoding (decompression bombs).
MAX_IMAGE_PIXELS = 64 * 1024 * 1024

_IDX_ROLE = re.compile(r"^(train|t10k|test)[-_.](images|labels)([-_.]idx[13][-_.]ubyte)?(\.gz)?$")


@dataclass(frozen=True)
class Dataset:
    """A split dataset: uint8 images ``[N,H,W]`` (``[N,H,W,3]`` in colour), int64 labels, and the manifest info."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    image_shape: tuple[int, int, int]
    info: dict = field(repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 ``[N,H,W]`` (or ``[N,H,W,C]``) to float32 ``[N,H,W,C]`` in [0, 1]:
    the zoo's input convention (docs/ARTIFACTS.md; other mappings: ``io.pixels``)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    return x.astype(np.float32) / np.float32(255.0)


# ----------------------------------------------------------------- sources

def bundled_mnist_dir() -> Path:
    return Path(str(importlib.resources.files("edgekit.data") / "mnist"))


def _find_idx_files(directory: Path) -> dict[str, Path]:
    """Map role ("train-images", ...) to the file in ``directory``."""
    if not directory.exists():
        raise DataError(directory, "data directory not found")
    if not directory.is_dir():
        raise DataError(directory, "is not a directory (pass the folder that holds the IDX files)")
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise DataError(directory, f"cannot read directory: {e.strerror or e}") from None
    found: dict[str, Path] = {}
    for name in names:
        m = _IDX_ROLE.match(name)
        if not m:
            continue
        role = f"{'train' if m.group(1) == 'train' else 'test'}-{m.group(2)}"
        if role in found:
            raise DataError(directory / name, f"two files for {role}: {found[role].name} and {name}; keep one")
        found[role] = directory / name
    missing = [r for r in MNIST_SHA256 if r not in found]
    if missing:
        raise DataError(directory, "missing IDX file(s) for " + ", ".join(missing) +
                        " (expected names like train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte)")
    return found


def _read_idx_dir(directory: Path, expect_sha: dict[str, str] | None, dataset: str):
    files = _find_idx_files(directory)
    arrays = {}
    for role, path in files.items():
        got = read_idx(path, role.split("-")[1])
        if expect_sha is not None and got.content_sha256 != expect_sha[role]:
            raise DataError(path, f"corrupt or not the original {dataset} file: sha256 of its content is "
                                  f"{got.content_sha256[:16]}..., expected {expect_sha[role][:16]}... "
                                  "(for other IDX data use --dataset idx)")
        arrays[role] = got.array
    for split in ("train", "test"):
        xi, yi = arrays[f"{split}-images"], arrays[f"{split}-labels"]
        if len(xi) != len(yi):
            raise DataError(files[f"{split}-labels"], f"{len(yi)} labels for {len(xi)} images in "
                                                      f"{files[f'{split}-images'].name}")
        if len(xi) == 0:
            raise DataError(files[f"{split}-images"], "holds no images")
    if arrays["train-images"].shape[1:] != arrays["test-images"].shape[1:]:
        raise DataError(files["test-images"], f"images are {arrays['test-images'].shape[1:]}, the training "
                                              f"images {arrays['train-images'].shape[1:]}")
    hashes = {p.name: artifacts.sha256_file(p) for p in files.values()}
    return arrays, files, hashes


def _check_labels(y: np.ndarray, num_classes: int, where: Path, dataset: str) -> None:
    if len(y) and int(y.max()) >= num_classes:
        bad = int(np.argmax(y >= num_classes))
        raise DataError(where, f"label {int(y[bad])} at record {bad} is outside the {num_classes} classes of {dataset} "
                               f"(0..{num_classes - 1})")


def _read_image(path: Path, size: tuple[int, int], color: str = "grayscale") -> tuple[np.ndarray, bool]:
    """(uint8 pixels ``[H,W]`` for grayscale, ``[H,W,3]`` RGB otherwise, whether
    the file is stored in colour), resized bilinear to ``size`` (whole image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format not in ("PNG", "JPEG"):
                raise DataError(path, f"is a {im.format} image; edgekit reads PNG and JPEG")
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise DataError(path, f"image is {im.width}x{im.height}, larger than edgekit reads")
            colour = im.mode not in _GRAY_MODES
            im = im.convert("L" if color == "grayscale" else "RGB")
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8), colour
    except UnidentifiedImageError:
        raise DataError(path, "is not a PNG or JPEG image (remove it from the image folder)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(path, f"cannot decode image: {e}") from None


def _scan_class_folders(root: Path) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise DataError(root, "image folder not found" if not root.exists() else "is not a directory")
    try:
        entries = sorted(root.iterdir())
    except OSError as e:
        raise DataError(root, f"cannot read directory: {e.strerror or e}") from None
    classes: dict[str, list[Path]] = {}
    for d in entries:
        if d.name.startswith("."):
            continue
        if not d.is_dir():
            raise DataError(d, "is a file; an image folder holds one subfolder per class")
        files = []
        for p in sorted(d.rglob("*")):
            if p.is_dir() or any(part.startswith(".") for part in p.relative_to(root).parts):
                continue
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(p, "is not a PNG or JPEG image (remove it from the image folder)")
            files.append(p)
        classes[d.name] = files
    if not classes:
        raise DataError(root, "holds no class subfolders (expected one subfolder of images per class)")
    empty = [c for c, f in classes.items() if not f]
    if empty:
        raise DataError(root / empty[0], "class folder holds no images")
    if len(classes) < 2:
        raise DataError(root, f"holds only {len(classes)} class folder ({', '.join(classes)}); a classifier needs "
                              "at least two classes (one subfolder of images per class)")
    seen: dict[str, str] = {}
    for name in classes:
        key = unicodedata.normalize("NFC", name).casefold()
        if key in seen:
            raise DataError(root, f"class folders {seen[key]!r} and {name!r} differ only in letter case or Unicode "
                                  "form: they collide on a case-insensitive file system (macOS, Windows) and as "
                                  "class labels; rename one")
        seen[key] = name
    return classes


def _too_few_per_class(root: Path, classes: dict[str, list[Path]], y_train: np.ndarray, y_test: np.ndarray,
                       class_names: list[str]) -> None:
    """Refuse a split that leaves a class without training or test images,
    naming the smallest such class folder and how many images it needs."""
    need = max(2, math.ceil(1 / FOLDER_TEST_FRACTION))
    short = [c for k, c in enumerate(class_names) if not (y_train == k).any() or not (y_test == k).any()]
    if short:
        name = min(short, key=lambda c: len(classes[c]))
        n = len(classes[name])
        raise DataError(root / name, f"class folder holds {n} image{'s' if n != 1 else ''}, too few for both a "
                                     f"training and a test split ({FOLDER_TEST_FRACTION:.0%} is held out for "
                                     f"testing); give every class at least {need} images, or train/ and test/ "
                                     "folders")


def _warn_duplicates(root: Path, train_hashes: list[str], test_hashes: list[str]) -> None:
    """One warning line when test images are byte-identical to training images
    (they make test accuracy look better than it is); not an error."""
    seen = set(train_hashes)
    dup = sum(h in seen for h in test_hashes)
    if dup:
        print(f"edgekit: warning: {root}: {dup} of {len(test_hashes)} test images are byte-identical to training "
              "images; test accuracy overstates how the model does on new images", file=sys.stderr, flush=True)


def _read_folder(root: Path, size: tuple[int, int], seed: int, warn: bool = True, color: str = "grayscale"):
    """Images and labels from an image folder; returns arrays, class names,
    hashes and whether any image is stored in colour. ``color`` "rgb" reads
    RGB (the caller reorders for BGR); "auto" reads RGB and the caller makes
    a grayscale folder one-channel again."""
    if not root.exists():
        raise DataError(root, "data directory not found")
    splits = {}
    has_split = (root / "train").is_dir() and (root / "test").is_dir()
    for split in ("train", "test") if has_split else ("all",):
        splits[split] = _scan_class_folders(root / split if has_split else root)
    class_names = sorted(splits["train" if has_split else "all"])
    if has_split and sorted(splits["test"]) != class_names:
        raise DataError(root / "test", f"class folders {sorted(splits['test'])} differ from train/'s {class_names}")
    h = hashlib.sha256()
    out, contents = {}, {}
    any_colour = False
    read_as = "grayscale" if color == "grayscale" else "rgb"
    for split, classes in splits.items():
        xs, ys, shas = [], [], []
        for label, name in enumerate(class_names):
            for p in classes[name]:
                px, colour = _read_image(p, size, read_as)
                any_colour = any_colour or colour
                xs.append(px)
                ys.append(label)
                shas.append(artifacts.sha256_file(p))
                h.update(p.relative_to(root).as_posix().encode() + b"\0" + shas[-1].encode())
        out[split] = (np.stack(xs), np.asarray(ys, dtype=np.int64))
        contents[split] = shas
    if not has_split:
        x, y = out.pop("all")
        test_idx = _stratified_take(y, int(round(len(y) * FOLDER_TEST_FRACTION)), np.random.default_rng(seed + 1))
        mask = np.zeros(len(y), bool)
        mask[test_idx] = True
        out = {"train": (x[~mask], y[~mask]), "test": (x[mask], y[mask])}
        shas = contents.pop("all")
        contents = {"train": [s for s, m in zip(shas, mask) if not m], "test": [s for s, m in zip(shas, mask) if m]}
        _too_few_per_class(root, splits["all"], out["train"][1], out["test"][1], class_names)
    if warn:
        _warn_duplicates(root, contents["train"], contents["test"])
    return out, class_names, {"images": h.hexdigest()}, any_colour


# ------------------------------------------------------------------ splits

def _stratified_take(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``k`` samples, spread over classes as evenly as the
    data allows, chosen by ``rng``."""
    perm = rng.permutation(len(y))
    yp = y[perm]
    rank = np.empty(len(y), np.int64)
    for c in np.unique(yp):
        where = np.flatnonzero(yp == c)
        rank[where] = np.arange(len(where))
    order = np.lexsort((np.arange(len(y)), rank))  # round-robin over classes
    return np.sort(perm[order[:k]])


def resolve_val_size(val_size: int | None, n_train: int) -> int:
    return min(DEFAULT_VAL_SIZE, n_train // 10) if val_size is None else val_size


def _split(x_train, y_train, x_test, y_test, *, val_size, seed, train_limit, test_limit):
    n = len(y_train)
    val_size = resolve_val_size(val_size, n)
    if val_size < 0 or val_size >= n:
        raise ConfigError("--val-size", f"must be between 0 and {n - 1} (the training set holds {n} images), got {val_size}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    val_idx, train_idx = np.sort(perm[:val_size]), np.sort(perm[val_size:])
    xv, yv = x_train[val_idx], y_train[val_idx]
    xt, yt = x_train[train_idx], y_train[train_idx]
    if train_limit is not None and train_limit < len(yt):
        keep = _stratified_take(yt, train_limit, np.random.default_rng([seed, 1]))
        xt, yt = xt[keep], yt[keep]
    if test_limit is not None and test_limit < len(y_test):
        keep = _stratified_take(y_test, test_limit, np.random.default_rng([seed, 2]))
        x_test, y_test = x_test[keep], y_test[keep]
    return (xt, yt, xv, yv, x_test, y_test), val_size


# -------------------------------------------------------------------- load

def load_dataset(name: str, data_dir: str | os.PathLike | None = None, val_size: int | None = DEFAULT_VAL_SIZE,
                 seed: int = 0, train_limit: int | None = None, test_limit: int | None = None,
                 image_size: tuple[int, int] = (28, 28), warn: bool = True, color: str = "grayscale",
                 strict_color: bool = False) -> Dataset:
    """Load and split a dataset (see the module docstring for the names and ``color``).
    ``val_size=None`` means 5000, or a tenth of a smaller training set.
    ``warn``: print the warnings about the data (test images duplicating
    training images); later stages re-reading a model's data pass False."""
    if name not in DATASETS:
        raise ConfigError("--dataset", f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if color not in (*COLORS, "auto"):
        raise ConfigError("--color", f"unknown colour {color!r}; choose one of {', '.join(COLORS)}")
    for flag, v in (("--train-limit", train_limit), ("--test-limit", test_limit)):
        if v is not None and (not isinstance(v, int) or v <= 0):
            raise ConfigError(flag, f"must be a positive integer, got {v!r}")
    if name in ("idx", "folder") and data_dir is None:
        raise ConfigError("--data-dir", f"--dataset {name} needs --data-dir pointing at the data")
    if name == "folder":
        root = Path(data_dir)
        parts, class_names, hashes, colour = _read_folder(root, tuple(image_size), seed, warn, color)
        x_train, y_train = parts["train"]
        x_test, y_test = parts["test"]
        kind, source = "image-folder", root
        source_color = "rgb" if colour else "grayscale"
        if color != "grayscale" and not colour:   # read as RGB: the three channels are equal
            x_train, x_test = x_train[..., 0], x_test[..., 0]
    else:
        if name == "mnist":
            root, expect = (Path(data_dir) if data_dir is not None else bundled_mnist_dir()), MNIST_SHA256
        elif name == "fashion-mnist":
            root, expect = (Path(data_dir) if data_dir is not None else FASHION_MNIST_DIR), None
            if data_dir is None and not root.exists():
                raise DataError(root, "Fashion-MNIST not found; install it (apt-get install dataset-fashion-mnist) "
                                      "or pass --data-dir with its four IDX files")
        else:
            root, expect = Path(data_dir), None
        arrays, files, hashes = _read_idx_dir(root, expect, name)
        x_train, y_train = arrays["train-images"], arrays["train-labels"].astype(np.int64)
        x_test, y_test = arrays["test-images"], arrays["test-labels"].astype(np.int64)
        if name == "fashion-mnist":
            class_names = list(FASHION_CLASSES)
        elif name == "mnist":
            class_names = [str(i) for i in range(10)]
        else:  # classes are 0..max training label; test labels must be among them
            class_names = [str(i) for i in range(int(y_train.max()) + 1)]
        if len(np.unique(y_train)) < 2:
            raise DataError(files["train-labels"], f"every training label is {int(y_train[0])}; a classifier needs "
                                                   "at least two classes")
        for role, y in (("train-labels", y_train), ("test-labels", y_test)):
            _check_labels(y, len(class_names), files[role], name)
        kind, source, source_color = "idx", root, "grayscale"
    target = source_color if color == "auto" else color
    if strict_color and (target == "grayscale") != (source_color == "grayscale"):
        what = "IDX images are" if kind == "idx" else "the images are stored"
        raise DataError(source, f"{what} {source_color} but the model takes {target} input; pass --color "
                                f"{target} to convert them")
    if target != "grayscale":
        if x_train.ndim == 3:                       # grayscale data for a colour model: replicate
            x_train, x_test = (np.repeat(a[..., None], 3, axis=-1) for a in (x_train, x_test))
        if target == "bgr":
            x_train, x_test = x_train[..., ::-1].copy(), x_test[..., ::-1].copy()
    (xt, yt, xv, yv, xs, ys), val_size = _split(x_train, y_train, x_test, y_test, val_size=val_size, seed=seed,
                                                train_limit=train_limit, test_limit=test_limit)
    h, w = x_train.shape[1:3]
    c = 1 if x_train.ndim == 3 else int(x_train.shape[3])
    info = {
        "name": name, "source": str(Path(source).resolve()), "kind": kind, "files": hashes,
        "class_names": class_names, "num_classes": len(class_names), "image_shape": [h, w, c],
        "color": target, "source_color": source_color, "resize": RESIZE_METHOD,
        "split": {"seed": seed, "val_size": val_size, "train": len(yt), "val": len(yv), "test": len(ys),
                  "train_limit": train_limit, "test_limit": test_limit},
    }
    return Dataset(name=name, x_train=xt, y_train=yt, x_val=xv, y_val=yv, x_test=xs, y_test=ys,
                   class_names=class_names, image_shape=(h, w, c), info=info)


def load_from_manifest(manifest: dict, model_dir: str | os.PathLike) -> Dataset:
    """The exact dataset and split a model was trained on, from its manifest's
    ``dataset`` section: re-reads the same files, checks their sha256 against
    the manifest and rebuilds the same split. The bundled MNIST is found in
    this installation even if the run was made on another machine."""
    where = Path(model_dir) / MODEL_MANIFEST
    info = manifest.get("dataset") if isinstance(manifest, dict) else None
    try:
        name, source, split, files = info["name"], Path(info["source"]), info["split"], info["files"]
        seed, val_size = int(split["seed"]), int(split["val_size"])
        train_limit, test_limit = split.get("train_limit"), split.get("test_limit")
        shape = info["image_shape"]
        image_size = (int(shape[0]), int(shape[1]))
        color = str(info.get("color", "grayscale"))   # absent: a model/2 run from before colour
    except (TypeError, KeyError, ValueError, IndexError) as e:
        raise ArtifactError(where, f"manifest's dataset section is incomplete ({e})") from None
    if not isinstance(files, dict) or any(not isinstance(n, str) or Path(n).name != n or n.startswith(".")
                                          for n in files):
        raise ArtifactError(where, "manifest's dataset.files must map plain file names to sha256")
    if name == "mnist" and not source.exists():
        source = bundled_mnist_dir()
    if info.get("kind") == "idx":
        try:
            actual = {n: artifacts.sha256_file(source / n) for n in files}
        except OSError as e:
            raise DataError(source, f"cannot read the dataset this model was trained on: {e.strerror or e}") from None
        changed = [n for n in files if actual[n] != files[n]]
        if changed:
            raise DataError(source / changed[0], "changed since the model was trained (sha256 differs from the manifest)")
    ds = load_dataset(name, None if name == "mnist" and source == bundled_mnist_dir() else source,
                      val_size=val_size, seed=seed, train_limit=train_limit, test_limit=test_limit,
                      image_size=image_size, warn=False, color=color)
    if ds.info["files"] != files:
        raise DataError(source, "dataset changed since the model was trained (file hashes differ from the manifest)")
    return ds

