"""Nothing in edgekit deserializes user input unsafely: no pickle, no
``allow_pickle=True``, every ``np.load`` says ``allow_pickle=False``, no
``yaml.load``/``eval``/``exec``, Keras models only with ``safe_mode=True``.
(The refusal of a Lambda layer, with proof its code did not run, is the
catalogue case ``convert-keras-lambda``.)"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for d in ("core", "apps", "train", "convert", "runtime", "bench") for p in (ROOT / d).rglob("*.py"))

FORBIDDEN = [
    (re.compile(r"^\s*(import|from)\s+(c?pickle|dill|joblib|shelve|marshal)\b"), "imports a pickle-like module"),
    (re.compile(r"allow_pickle\s*=\s*True"), "allow_pickle=True"),
    (re.compile(r"\byaml\.(load|unsafe_load)\("), "yaml.load"),
    (re.compile(r"(?<![\w.])(eval|exec)\("), "eval/exec"),
    (re.compile(r"safe_mode\s*=\s*False"), "safe_mode=False"),
    (re.compile(r"enable_unsafe_deserialization"), "unsafe Keras deserialization"),
    (re.compile(r"custom_objects\s*="), "custom objects when loading"),
]


def test_sources_exist():
    assert len(SOURCES) > 20


def test_no_unsafe_deserialization():
    bad = []
    for path in SOURCES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for rx, what in FORBIDDEN:
                if rx.search(code):
                    bad.append(f"{path.relative_to(ROOT)}:{n}: {what}: {line.strip()}")
            if re.search(r"\bnp\.load\(", code) and "allow_pickle=False" not in code:
                bad.append(f"{path.relative_to(ROOT)}:{n}: np.load without allow_pickle=False: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_keras_loads_are_safe_mode():
    calls = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"(keras\.models\.load_model|keras\.saving\.load_model)\(([^)]*)\)", text):
            calls.append((path.relative_to(ROOT), m.group(2)))
    assert calls, "expected edgekit to load Keras models somewhere"
    unsafe = [c for c in calls if "safe_mode=True" not in c[1]]
    assert not unsafe, unsafe


def test_lambda_marker_control(tmp_path):
    """Control for catalogue case convert-keras-lambda: the same kind of
    Lambda layer, loaded UNsafely and called, does write its marker, so the
    marker's absence there means edgekit's safe load did not run the code."""
    import numpy as np
    import tf_keras as keras

    marker = tmp_path / "ran"
    m = str(marker)
    inp = keras.Input((4,), name="image")
    out = keras.layers.Lambda(lambda t: (open(m, "w").close(), t)[1], name="evil")(inp)
    keras.Model(inp, out).save(tmp_path / "m.keras")
    marker.unlink()
    keras.config.enable_unsafe_deserialization() if hasattr(keras, "config") else None
    model = keras.models.load_model(tmp_path / "m.keras", compile=False, safe_mode=False)
    model(np.zeros((1, 4), np.float32))
    assert marker.exists()
