"""A user's classifier file in, a checked tf_keras rebuild out (for ``edgekit import``).

In: a path to one of

- a Keras 3 ``.keras`` file (``keras`` 3, TensorFlow 2.21's default Keras);
- a tf_keras / Keras 2 ``.keras`` or ``.h5`` file;
- a TensorFlow SavedModel directory with a ``serving_default`` signature,
  saved by tf_keras (it carries ``keras_metadata.pb``, the layer graph).

Out: a ``Source`` (format, sha256, the model's declared input and output,
the layer classes) and, from ``rebuild``, a tf_keras functional model with
the same weights whose input is named ``image`` and whose last layer is a
``Softmax`` named ``probabilities`` — the contract every edgekit stage reads
(``edgekit.train.models.load_model``).

Why a rebuild: coremltools' ``convert`` and tensorflow-model-optimization
take a tf_keras model (or a SavedModel), never a Keras 3 object, and the
stages after import read one tf_keras ``model.keras``. So every source is
rebuilt layer by layer in tf_keras from its configuration (built-in layer
classes only), its weights are copied, and the rebuild's probabilities are
compared with the source model's own on real and random inputs: more than
``REBUILD_ATOL`` apart and the import is refused. A SavedModel is not kept
as the converted source because the fine-tuning recipes (QAT, pruning,
clustering) need Keras layers.

Safety: before anything is deserialized, the configuration is read as JSON
(from the ``.keras`` zip, the HDF5 ``model_config`` attribute or
``keras_metadata.pb``) and every layer class is checked against
``LAYERS``: a Lambda layer (arbitrary Python), a custom class or a custom
activation is refused with one line naming it. Loading then uses
``safe_mode=True`` and no custom objects.

Logits: a model whose last layer has no softmax gives logits. That is
recorded (``output_activation`` ``"none"``), and the rebuild appends the one
softmax every later stage sees, so the checker compares probabilities and the
Core ML classifier outputs probabilities. A last Dense with
``activation="softmax"`` is split into Dense + Softmax (the same function).
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit import artifacts, quiet
from edgekit.errors import ConfigError, ModelFileError
from edgekit.rundir import INPUT_NAME, OUTPUT_NAME, PixelMapping

FORMATS = ("keras3", "tf_keras", "tf_keras-h5", "saved_model")
# The rebuild's probabilities must equal the source model's within this: the
# same float32 kernels in another framework differ by ~1e-7; a wrong weight,
# activation or layer setting moves them by far more.
REBUILD_ATOL = 1e-5
MIN_SIDE, MAX_SIDE = 16, 512

# Built-in layer classes the rebuild reproduces in tf_keras (same class name).
LAYERS = {
    "InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "BatchNormalization", "ReLU", "Activation",
    "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "MaxPooling2D", "AveragePooling2D", "Add",
    "Multiply", "Concatenate", "Flatten", "Dropout", "Softmax", "Rescaling", "ZeroPadding2D", "Reshape",
    "LeakyReLU", "SpatialDropout2D", "Subtract", "Average", "Maximum", "Minimum",
}
# Augmentation layers are the identity at inference: dropped from the rebuild (recorded).
IDENTITY_LAYERS = {"RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
                   "RandomBrightness", "GaussianNoise", "GaussianDropout", "ActivityRegularization"}
# Activations tf_keras has with the same definition as Keras 3.
ACTIVATIONS = {"linear", "relu", "relu6", "sigmoid", "softmax", "tanh", "swish", "silu", "elu", "selu",
               "gelu", "softplus", "softsign", "exponential"}
# Keras 3 activations tf_keras lacks or defines differently, rebuilt from built-in layers.
COMPOSED = {"hard_swish", "hard_silu", "hard_sigmoid"}
_CONTAINERS = {"Functional", "Sequential", "Model"}
MERGE_LAYERS = ("Add", "Multiply", "Concatenate", "Subtract", "Average", "Maximum", "Minimum")


@dataclass
class Source:
    """What import learned about the file before loading any weights."""

    path: Path
    format: str                       # one of FORMATS
    sha256: str
    keras_version: str | None
    config: dict                      # the model's config (class_name + config), as JSON
    layers: list[dict] = field(default_factory=list)     # flattened layer entries (class_name, config, inbound)
    input_shape: tuple = ()           # (H, W, C), None for a dynamic side
    output_classes: int | None = None
    activation: str = "softmax"       # the model's own last activation: "softmax" or "none" (logits)
    rescaling_first: bool = False     # a Rescaling layer right after the input (default input range 0,255)
    dropped: list[str] = field(default_factory=list)     # identity layers left out of the rebuild
    fold: str | None = None           # the Rescaling layer that is the input's only consumer (folded, see rebuild)

    def to_json(self) -> dict:
        return {"path": str(self.path.resolve()), "sha256": self.sha256, "format": self.format,
                "keras_version": self.keras_version, "input_shape": [None, *self.input_shape],
                "output_shape": [None, self.output_classes], "output_activation": self.activation,
                "dropped_layers": self.dropped}


# ------------------------------------------------------------------ reading

def _first(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


def read(path: str | os.PathLike) -> Source:
    """Identify ``path``'s format and read its configuration as JSON (nothing
    is deserialized); check the layers and the input/output shape."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, "model not found")
    if path.is_dir():
        src = _read_saved_model(path)
    else:
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(b"PK"):
            src = _read_keras_zip(path)
        elif head.startswith(b"\x89HDF\r\n\x1a\n"):
            src = _read_h5(path)
        else:
            raise ModelFileError(path, "is not a Keras model (.keras zip or .h5) or a SavedModel directory")
    _walk(src)
    return src


def _read_keras_zip(path: Path) -> Source:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "config.json" not in names:
                raise ModelFileError(path, "is a zip file but not a .keras model (no config.json)")
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
            config = json.loads(z.read("config.json"))
            if not any(n.endswith(".weights.h5") or n.endswith(".h5") for n in names):
                raise ModelFileError(path, "holds no weights (model.weights.h5 missing)")
            bad = z.testzip()
            if bad is not None:
                raise ModelFileError(path, f"is corrupt ({bad} fails its CRC check)")
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise ModelFileError(path, f"not a readable .keras file, truncated or corrupt ({_first(e)})") from None
    version = str(meta.get("keras_version", "")) or None
    fmt = "keras3" if version and version.split(".")[0] == "3" else "tf_keras"
    return Source(path=path, format=fmt, sha256=artifacts.sha256_file(path), keras_version=version,
                  config=config)


def _read_h5(path: Path) -> Source:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
            if raw is None:
                raise ModelFileError(path, "holds weights only, no model configuration (save the whole model)")
            _ = f["model_weights"] if "model_weights" in f else None
    except ModelFileError:
        raise
    except Exception as e:  # h5py raises OSError/KeyError subclasses for truncated files
        raise ModelFileError(path, f"not a readable .h5 file, truncated or corrupt ({_first(e)})") from None
    raw = raw.decode() if isinstance(raw, bytes) else str(raw)
    version = version.decode() if isinstance(version, bytes) else (str(version) if version is not None else None)
    try:
        config = json.loads(raw)
    except ValueError:
        raise ModelFileError(path, "model_config attribute is not JSON") from None
    return Source(path=path, format="tf_keras-h5", sha256=artifacts.sha256_file(path), keras_version=version,
                  config=config)


def _signature_names(path: Path) -> list[str]:
    pb = path / "saved_model.pb"
    if not pb.is_file():
        raise ModelFileError(path, "is a directory but not a SavedModel (no saved_model.pb)")
    saved_model_pb2 = quiet.import_module("tensorflow.core.protobuf.saved_model_pb2")
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString(pb.read_bytes())
    except Exception as e:
        raise ModelFileError(pb, f"not a readable SavedModel, truncated or corrupt ({_first(e)})") from None
    if not sm.meta_graphs:
        raise ModelFileError(pb, "SavedModel holds no graph")
    return [k for k in sm.meta_graphs[0].signature_def if not k.startswith("__")]


def _read_saved_model(path: Path) -> Source:
    sigs = _signature_names(path)
    if "serving_default" not in sigs:
        raise ModelFileError(path, "SavedModel has no serving signature ('serving_default'; it has "
                                   f"{', '.join(sigs) or 'none'}); export it with one")
    meta = path / "keras_metadata.pb"
    if not meta.is_file():
        raise ModelFileError(path, "SavedModel has no Keras layer metadata (keras_metadata.pb), e.g. one from "
                                   "Keras 3 model.export(): edgekit rebuilds models layer by layer, so import "
                                   "the model's .keras file instead")
    saved_metadata_pb2 = quiet.import_module("tf_keras.protobuf.saved_metadata_pb2")
    sm = saved_metadata_pb2.SavedMetadata()
    try:
        sm.ParseFromString(meta.read_bytes())
        root = next(n for n in sm.nodes if n.node_path == "root")
        data = json.loads(root.metadata)
    except Exception as e:
        raise ModelFileError(meta, f"not readable Keras metadata ({_first(e)})") from None
    if "config" not in data or not isinstance(data.get("config"), dict):
        raise ModelFileError(meta, f"the saved object ({data.get('class_name')}) is not a Keras model with a "
                                   "layer graph (subclassed models cannot be rebuilt)")
    config = _untuple({"class_name": data.get("class_name"), "config": data["config"]})
    return Source(path=path, format="saved_model", sha256=artifacts.sha256_tree(path),
                  keras_version=str(data.get("keras_version") or "") or None, config=config)


def _untuple(obj):
    """Keras metadata writes tuples as {"class_name": "__tuple__", "items": [...]}: lists here."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__tuple__" and "items" in obj:
            return [_untuple(v) for v in obj["items"]]
        return {k: _untuple(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_untuple(v) for v in obj]
    return obj


# ------------------------------------------------------------------ checking

def _activation_name(value, where: Path, layer: str):
    """A layer's activation as a name, refusing a custom one."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        name = value
    elif isinstance(value, dict):  # Keras 3 serializes some built-ins as {"module", "class_name", "config"}
        cfg = value.get("config")
        name = cfg if isinstance(cfg, str) else value.get("class_name")
        if value.get("registered_name") not in (None, name) or str(value.get("module", "keras")).split(".")[0] != "keras":
            raise ModelFileError(where, f"layer {layer!r} uses a custom activation "
                                        f"{value.get('registered_name') or name!r}; edgekit runs no custom code")
    else:
        name = str(value)
    if name not in ACTIVATIONS and name not in COMPOSED:
        raise ModelFileError(where, f"layer {layer!r} uses activation {name!r}, which edgekit cannot rebuild")
    return name


def _layers_of(config: dict, where: Path) -> list[dict]:
    """The flat list of layer entries of a Functional or Sequential config."""
    cls = config.get("class_name")
    cfg = config.get("config") or {}
    layers = cfg.get("layers")
    if cls not in _CONTAINERS or not isinstance(layers, list):
        raise ModelFileError(where, f"is a {cls or 'non-Keras'} object, not a Sequential or functional "
                                    "Keras model (subclassed models cannot be rebuilt safely)")
    if cls == "Sequential":
        out, prev = [], None
        first = layers[0] if layers else {}
        if first.get("class_name") != "InputLayer":
            shape = cfg.get("build_input_shape") or (first.get("config") or {}).get("batch_input_shape") \
                or (first.get("config") or {}).get("batch_shape")
            layers = [{"class_name": "InputLayer", "config": {"name": "input", "batch_shape": shape}}] + layers
        for entry in layers:
            e = dict(entry)
            name = (e.get("config") or {}).get("name")
            e["_inputs"] = [] if prev is None else [prev]
            out.append(e)
            prev = name
        return out
    for entry in layers:
        entry["_inputs"] = _inbound(entry, where)
    return layers


def _inbound(entry: dict, where: Path) -> list:
    """Names of the layers feeding ``entry`` (one call only), in order; a list
    nested once for merge layers (Add, Concatenate) is flattened."""
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise ModelFileError(where, f"layer {entry.get('name')!r} is called {len(nodes)} times (shared "
                                    "layers are not supported)")
    if not nodes:
        return []
    node = nodes[0]
    names: list[str] = []

    def tensor(t):
        if isinstance(t, dict) and t.get("class_name") == "__keras_tensor__":          # Keras 3
            hist = t["config"]["keras_history"]
            names.append(hist[0])
        elif isinstance(t, list) and t and isinstance(t[0], str):                      # tf_keras
            names.append(t[0])
        elif isinstance(t, list):
            for u in t:
                tensor(u)

    if isinstance(node, dict):
        for a in node.get("args", []):
            tensor(a)
    else:
        for t in node:
            tensor(t)
    return names


def _walk(src: Source) -> None:
    """Check every layer, then the input and output shapes (before any loading)."""
    where = src.path
    layers = _layers_of(src.config, where)
    for e in layers:
        cls = e.get("class_name")
        name = (e.get("config") or {}).get("name") or e.get("name") or "?"
        e["name"] = name
        if cls == "Lambda":
            raise ModelFileError(where, f"layer {name!r} is a Lambda layer (arbitrary Python code); edgekit "
                                        "loads models safely and never runs it; rewrite it with built-in layers")
        if cls in _CONTAINERS:
            raise ModelFileError(where, f"layer {name!r} is a nested model ({cls}); edgekit imports flat "
                                        "models: rebuild it without the nesting")
        registered = e.get("registered_name")
        module = str(e.get("module") or "keras.layers")
        custom = (registered not in (None, cls)) or not module.startswith(("keras", "tf_keras"))
        if custom or (cls not in LAYERS and cls not in IDENTITY_LAYERS and not _is_builtin(cls)):
            raise ModelFileError(where, f"layer {name!r} needs the custom layer class {registered or cls!r}; "
                                        "edgekit runs no custom code (no custom objects, safe_mode)")
        if cls not in LAYERS and cls not in IDENTITY_LAYERS:
            raise ModelFileError(where, f"layer {name!r} ({cls}) is a Keras layer edgekit cannot rebuild for "
                                        "conversion")
        if "activation" in (e.get("config") or {}):
            _activation_name(e["config"]["activation"], where, name)
        if cls == "Activation":
            _activation_name(e["config"].get("activation"), where, name)
    src.layers = layers
    cfg = src.config["config"]
    inputs = [e for e in layers if e.get("class_name") == "InputLayer"]
    outputs = cfg.get("output_layers")
    if src.config.get("class_name") == "Sequential":
        outputs = [[layers[-1]["name"], 0, 0]]
    if len(inputs) != 1:
        raise ModelFileError(where, f"model has {len(inputs)} inputs; edgekit imports image classifiers with "
                                    "one image input")
    outs = _flat_outputs(outputs)
    if len(outs) != 1:
        raise ModelFileError(where, f"model has {len(outs)} outputs; edgekit needs one class vector")
    icfg = inputs[0].get("config") or {}
    shape = icfg.get("batch_shape") or icfg.get("batch_input_shape")
    if not isinstance(shape, (list, tuple)) or len(shape) != 4:
        raise ModelFileError(where, f"input shape {_shape(shape)} is not an image batch [N, H, W, C] (rank 4)")
    h, w, c = shape[1:]
    if c not in (1, 3):
        raise ModelFileError(where, f"input has {c} channels; edgekit takes 1 (grayscale) or 3 (colour)")
    src.input_shape = (h, w, c)
    last = next(e for e in layers if e["name"] == outs[0])
    src.output_classes = _output_classes(last, layers, where)
    act = _last_activation(last, layers)
    if act not in ("softmax", "linear"):
        raise ModelFileError(where, f"the last layer's activation is {act!r}; edgekit imports classifiers "
                                    "ending in softmax probabilities or raw logits")
    src.activation = "softmax" if act == "softmax" else "none"
    after_input = [e for e in layers if inputs[0]["name"] in e.get("_inputs", [])]
    src.rescaling_first = any(e.get("class_name") == "Rescaling" for e in after_input)
    if len(after_input) == 1 and after_input[0].get("class_name") == "Rescaling":
        src.fold = after_input[0]["name"]


def _is_builtin(cls: str) -> bool:
    """A layer class tf_keras has by that name (so not a user's own class)."""
    import importlib.util

    if importlib.util.find_spec("tf_keras") is None:
        return False
    layers = quiet.import_module("tf_keras.layers")
    return hasattr(layers, cls)


def _flat_outputs(outputs) -> list[str]:
    if not isinstance(outputs, list):
        return []
    if outputs and isinstance(outputs[0], str):       # a single [name, node, tensor]
        return [outputs[0]]
    return [o[0] for o in outputs if isinstance(o, list) and o]


def _shape(shape) -> str:
    return "[" + ", ".join("N" if i == 0 else ("None" if d is None else str(d)) for i, d in enumerate(shape)) + "]" \
        if isinstance(shape, (list, tuple)) else repr(shape)


def _output_classes(last: dict, layers: list[dict], where: Path) -> int:
    """The class count of the output, walking back through shape-keeping
    layers to the Dense that makes it; refuses anything else."""
    by_name = {e["name"]: e for e in layers}
    e = last
    while e.get("class_name") in ("Softmax", "Activation", "Dropout", "ReLU", "LeakyReLU") and e["_inputs"]:
        e = by_name[e["_inputs"][0]]
    if e.get("class_name") != "Dense":
        raise ModelFileError(where, f"output layer {last['name']!r} ({last.get('class_name')}) does not give one "
                                    "class vector [N, classes] from a Dense layer")
    units = int(e["config"]["units"])
    if units < 2:
        raise ModelFileError(where, f"output has {units} unit; a classifier needs at least two classes")
    return units


def _last_activation(last: dict, layers: list[dict]) -> str:
    cls, cfg = last.get("class_name"), last.get("config") or {}
    if cls == "Softmax":
        return "softmax"
    if cls in ("Dense", "Activation"):
        act = cfg.get("activation")
        return act if isinstance(act, str) else (act or {}).get("config", "linear") if isinstance(act, dict) else "linear"
    if cls == "Dropout":
        by_name = {e["name"]: e for e in layers}
        return _last_activation(by_name[last["_inputs"][0]], layers)
    return cls.lower() if cls else "?"


def fix_size(src: Source, image_size: int | None) -> tuple[int, int, int]:
    """(H, W, C) with a dynamic side fixed to ``image_size`` (or refused), checked against 16..512."""
    h, w, c = src.input_shape
    if h is None or w is None:
        if image_size is None:
            raise ModelFileError(src.path, f"input size {_shape([None, h, w, c])} is dynamic; pass --image-size N "
                                           "to fix it (the data is resized to N x N)")
        h, w = (image_size if h is None else h), (image_size if w is None else w)
    for side in (h, w):
        if not MIN_SIDE <= int(side) <= MAX_SIDE:
            raise ModelFileError(src.path, f"input size {h}x{w} is outside what edgekit takes ({MIN_SIDE} to "
                                           f"{MAX_SIDE} pixels a side)")
    return int(h), int(w), int(c)


# ------------------------------------------------------------------ loading

def load(src: Source):
    """The source model, loaded safely (``safe_mode=True``, no custom objects),
    after ``read`` has checked every layer class."""
    try:
        with quiet.quiet():
            if src.format == "keras3":
                import keras

                return keras.saving.load_model(src.path, compile=False, safe_mode=True)
            import tf_keras

            # a SavedModel restores traced graphs (safe_mode governs the .keras format; it is
            # passed anyway so no load in edgekit goes without it)
            return tf_keras.models.load_model(src.path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for broken files
        raise ModelFileError(src.path, f"cannot load this {src.format} model ({_first(e)})") from None


def _clean(cfg: dict, cls) -> dict:
    """A layer config tf_keras accepts: string dtype, no initializers or
    regularizers (the weights are copied afterwards), only the arguments the
    tf_keras class takes."""
    import inspect

    out = {}
    params = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            params |= set(inspect.signature(klass.__init__).parameters)
        if klass.__name__ == "Layer":
            break
    for k, v in cfg.items():
        if k.endswith(("_initializer", "_regularizer", "_constraint")) or k in ("dtype", "batch_input_shape",
                                                                                 "batch_shape"):
            continue
        if k in params or k in ("name", "trainable"):
            out[k] = v
    dtype = cfg.get("dtype")
    name = dtype if isinstance(dtype, str) else ((dtype or {}).get("config") or {}).get("name", "float32")
    if name not in ("float32", None):
        raise ValueError(f"dtype policy {name!r}")
    return out


@dataclass
class Rebuilt:
    model: object                     # tf_keras.Model: image -> probabilities
    renamed: dict[str, str]           # source layer name -> rebuild layer name, where they differ
    composed: list[str]               # layers whose activation was rebuilt from built-in layers
    folded: dict | None = None        # {"layer", "scale", "offset"}: the leading Rescaling, now in the pixel mapping

    def pixels(self, user: PixelMapping) -> PixelMapping:
        """The mapping from pixels to the rebuild's input: the user's mapping
        followed by the folded Rescaling (``x * scale + offset``), per channel."""
        if self.folded is None:
            return user
        c = user.channels
        scale = np.broadcast_to(np.asarray(self.folded["scale"], np.float64), (c,))
        offset = np.broadcast_to(np.asarray(self.folded["offset"], np.float64), (c,))
        return PixelMapping(tuple(float(s * k) for s, k in zip(user.scale, scale)),
                            tuple(float(b * k + o) for b, k, o in zip(user.bias, scale, offset)))


def rebuild(src: Source, model, image_shape: tuple[int, int, int]) -> Rebuilt:
    """The tf_keras model with ``model``'s weights (see the module docstring)."""
    import tf_keras as keras

    L = keras.layers
    taken = {INPUT_NAME, OUTPUT_NAME}
    renamed: dict[str, str] = {}
    composed: list[str] = []

    def fresh(name: str) -> str:
        new, k = name, 1
        while new in taken:
            new, k = f"{name}_{k}", k + 1
        taken.add(new)
        if new != name:
            renamed[name] = new
        return new

    def activation_layers(x, act: str, base: str):
        if act in ("linear", None):
            return x
        if act in ACTIVATIONS:
            return L.Activation(act, name=fresh(f"{base}_{act}"))(x)
        composed.append(base)
        # Keras 3: hard_sigmoid(x) = relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1); hard_swish(x) = x * hard_sigmoid(x)
        hs = L.Rescaling(1 / 6, offset=0.5, name=fresh(f"{base}_hs_affine"))(x)
        hs = L.ReLU(max_value=1.0, name=fresh(f"{base}_hs_clip"))(hs)
        if act == "hard_sigmoid":
            return hs
        return L.Multiply(name=fresh(f"{base}_hswish"))([x, hs])

    src_layers = {layer.name: layer for layer in model.layers}
    by_name = {e["name"]: e for e in src.layers}
    # The head: the layer whose activation makes the output (the output layer,
    # or the one before trailing Dropout layers). Its softmax, if any, is
    # left out here: the one softmax is appended at the end.
    head = by_name[_final(src)]
    while head["class_name"] in ("Dropout", *IDENTITY_LAYERS) and head["_inputs"]:
        head = by_name[head["_inputs"][0]]
    tensors: dict[str, object] = {}
    inp = L.Input(shape=image_shape, name=INPUT_NAME, dtype="float32")
    folded = None
    for e in src.layers:
        name, cls_name, cfg = e["name"], e["class_name"], dict(e.get("config") or {})
        ins = [tensors[n] for n in e["_inputs"]]
        if cls_name == "InputLayer":
            tensors[name] = inp
            continue
        if name == src.fold and _plain_numbers(cfg.get("scale")) and _plain_numbers(cfg.get("offset", 0.0)):
            # the input's only consumer: its affine map joins the pixel mapping (so the
            # Core ML image input applies it, and tfmot, which has no Rescaling, can wrap the rest)
            folded = {"layer": name, "scale": cfg["scale"], "offset": cfg.get("offset", 0.0)}
            tensors[name] = inp
            continue
        if cls_name in IDENTITY_LAYERS:
            src.dropped.append(f"{name} ({cls_name})")
            tensors[name] = ins[0]
            continue
        is_head = e is head
        if is_head and (cls_name == "Softmax" or (cls_name == "Activation" and cfg.get("activation") == "softmax")):
            tensors[name] = ins[0]
            continue
        if cls_name == "Activation":
            act = _activation_name(cfg.get("activation"), src.path, name)
            if act in COMPOSED:
                tensors[name] = activation_layers(ins[0], act, name)
                continue
        act = None
        if "activation" in cfg and cls_name != "Activation":
            act = _activation_name(cfg["activation"], src.path, name)
            if act in COMPOSED or (is_head and act == "softmax"):
                cfg["activation"] = "linear"       # applied after the layer (composed) or at the end (softmax)
            else:
                act = None
        cls = getattr(L, cls_name)
        try:
            layer = cls(**{**_clean(cfg, cls), "name": fresh(name)})
        except Exception as exc:
            raise ModelFileError(src.path, f"layer {name!r} ({cls_name}) cannot be rebuilt in tf_keras "
                                           f"({_first(exc)})") from None
        x = layer(ins if cls_name in MERGE_LAYERS else ins[0])
        weights = src_layers[name].get_weights() if name in src_layers else []
        try:
            layer.set_weights(weights)
        except Exception as exc:
            raise ModelFileError(src.path, f"layer {name!r} ({cls_name}): its weights do not fit the tf_keras "
                                           f"rebuild ({_first(exc)})") from None
        if act in COMPOSED:
            x = activation_layers(x, act, name)
        tensors[name] = x
    probs = L.Softmax(name=OUTPUT_NAME)(tensors[_final(src)])
    return Rebuilt(keras.Model(inp, probs, name=_model_name(src)), renamed, composed, folded)


def _plain_numbers(v) -> bool:
    """A number, or a list of 1 or 3 numbers (a per-channel Rescaling)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return True
    return isinstance(v, list) and len(v) in (1, 3) and all(isinstance(x, (int, float)) for x in v)


def _final(src: Source) -> str:
    cfg = src.config["config"]
    if src.config.get("class_name") == "Sequential":
        return src.layers[-1]["name"]
    return _flat_outputs(cfg.get("output_layers"))[0]


def _model_name(src: Source) -> str:
    name = str((src.config.get("config") or {}).get("name") or src.path.stem)
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name) or "imported"


def probabilities(model, x: np.ndarray, activation: str, batch_size: int = 256) -> np.ndarray:
    """The source model's outputs as probabilities (softmax of logits, applied here only
    to compare with the rebuild, whose own softmax is the one the stages use)."""
    out = np.asarray(quiet.call(model.predict, x, batch_size=batch_size, verbose=0), np.float64)
    if activation == "none":
        out = out - out.max(axis=1, keepdims=True)
        out = np.exp(out)
        out /= out.sum(axis=1, keepdims=True)
    return out


def verify(src: Source, model, rebuilt, x: np.ndarray, x_rebuilt: np.ndarray | None = None) -> dict:
    """Compare the rebuild with the source model on ``x`` (float32 inputs of the
    source model; ``x_rebuilt``: the same images as the rebuild's inputs, when a
    Rescaling was folded into the pixel mapping); refuse the import if any
    probability differs by more than REBUILD_ATOL."""
    a = probabilities(model, x, src.activation)
    xr = x if x_rebuilt is None else x_rebuilt
    b = np.asarray(quiet.call(rebuilt.predict, xr, batch_size=256, verbose=0), np.float64)
    diff = float(np.max(np.abs(a - b))) if len(x) else 0.0
    agree = float(np.mean(a.argmax(1) == b.argmax(1))) if len(x) else 1.0
    if not diff <= REBUILD_ATOL:
        raise ModelFileError(src.path, f"the tf_keras rebuild differs from the model by {diff:.3g} in probability "
                                       f"(more than {REBUILD_ATOL:g}); edgekit cannot import it faithfully")
    return {"images": int(len(x)), "max_abs_prob_diff": diff, "top1_agreement": agree, "atol": REBUILD_ATOL}


def check_class_count(src: Source, classes: int, dataset: str) -> None:
    if src.output_classes != classes:
        raise ModelFileError(src.path, f"model gives {src.output_classes} classes but the dataset {dataset} has "
                                       f"{classes}")


def parse_class_names(path: str | os.PathLike) -> list[str]:
    """--class-names FILE: one name per line (blank lines ignored)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "class names file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(p), f"cannot read class names ({_first(e)})") from None
    names = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(set(names)) != len(names):
        raise ConfigError(str(p), "class names file lists a name twice")
    if len(names) < 2:
        raise ConfigError(str(p), f"lists {len(names)} class name(s); a classifier needs at least two")
    return names
