"""``edgekit doctor``: is this environment able to run every edgekit stage?

In: nothing but the installed environment. Out: the environment fingerprint
(library versions, Python, OS, CPU) and one line per check, ``ok``, ``warn``
(usable, with what it means) or ``FAIL`` (with what to do). Exit code 0 when
everything needed is usable, 1 otherwise.

The checks are the version traps this stack is known for: Keras 3 vs Keras 2
(tf_keras, selected by TF_USE_LEGACY_KERAS=1, which ``import edgekit`` sets),
coremltools' tested TensorFlow range, LiteRT, tensorflow-model-optimization
with tf_keras, scikit-learn for palettization, the Core ML runtime (macOS
only; elsewhere edgekit's ``mil-reference`` interpreter runs Core ML
variants) and Chromium for the report's browser test.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import subprocess
import sys
from typing import Callable

from edgekit import quiet
from edgekit.artifacts import cpu_description
from edgekit.errors import ConfigError

HELP = "check the environment: library versions, Keras 2 vs 3, runtimes"
DESCRIPTION = """\
Print the environment fingerprint (library versions, Python, OS, CPU) and
check that every edgekit stage can run here:

  - tf_keras (Keras 2) is importable and tf.keras resolves to it after
    `import edgekit` (which sets TF_USE_LEGACY_KERAS=1); Keras 3 models fail
    in tensorflow-model-optimization and coremltools
  - TensorFlow against the range coremltools was tested with (outside it
    is a warning, not a failure: conversions are checked numerically anyway)
  - LiteRT (ai-edge-litert) can build an interpreter
  - tensorflow-model-optimization loads on top of tf_keras
  - scikit-learn (Core ML palettization uses its k-means)
  - a Core ML runtime (macOS only); elsewhere Core ML variants run on
    edgekit's mil-reference interpreter and are labelled so
  - Chromium for the report's browser test (optional)

Exit code 0 when everything needed is usable, 1 with what to do otherwise.

Example:
  edgekit doctor
  edgekit doctor --chromium /opt/chrome/chrome
"""

OK, WARN, FAIL = "ok", "warn", "FAIL"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclasses.dataclass(frozen=True)
class DoctorConfig:
    """chromium: path to a Chromium/Chrome binary (default: $EDGEKIT_CHROMIUM, then PATH)."""

    chromium: str | None = None

    def __post_init__(self):
        if self.chromium is not None and not (os.path.isfile(self.chromium) and os.access(self.chromium, os.X_OK)):
            raise ConfigError("--chromium", f"{self.chromium!r} is not an executable file")


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str
    fix: str = ""


@dataclasses.dataclass(frozen=True)
class DoctorResult:
    fingerprint: dict
    checks: tuple[Check, ...]

    @property
    def usable(self) -> bool:
        return all(c.status != FAIL for c in self.checks)


# ---------------------------------------------------------------- fingerprint

def environment_fingerprint() -> dict:
    """Library versions (as every manifest records them) plus the CPU."""
    from edgekit import artifacts

    fp = dict(artifacts.library_versions())
    fp["cpu"] = cpu_description()
    return fp


def find_chromium(explicit: str | None = None) -> str | None:
    """A headless-capable Chromium: the given path, $EDGEKIT_CHROMIUM, or one on PATH."""
    for candidate in (explicit, os.environ.get("EDGEKIT_CHROMIUM")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


# ---------------------------------------------------------------- checks

def _import(name: str):
    """Import a module by name (one seam, so tests can simulate a missing one),
    its import-time chatter held: this command says what that chatter means."""
    return quiet.import_module(name)


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _vtuple(v: str) -> tuple[int, ...]:
    import re

    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", v or "")
    return tuple(int(x or 0) for x in m.groups()) if m else ()


def check_keras() -> list[Check]:
    out = []
    legacy = os.environ.get("TF_USE_LEGACY_KERAS")
    if legacy in ("1", "true", "True"):
        out.append(Check("TF_USE_LEGACY_KERAS", OK, f"={legacy} (set by `import edgekit`)"))
    else:
        out.append(Check("TF_USE_LEGACY_KERAS", FAIL, f"is {legacy!r} after `import edgekit`",
                         "something reset it; import edgekit before tensorflow and do not set the variable elsewhere"))
    try:
        tfk = _import("tf_keras")
        out.append(Check("tf_keras", OK, f"importable, version {getattr(tfk, '__version__', '?')}"))
    except Exception as e:  # noqa: BLE001 - any import failure is the finding
        out.append(Check("tf_keras", FAIL, f"not importable ({type(e).__name__}: {e})",
                         "pip install tf-keras==2.21.0 (the version matching tensorflow)"))
        return out
    try:
        tf = _import("tensorflow")
        # With TF_USE_LEGACY_KERAS=1, tf.keras is a lazy loader over tf_keras;
        # otherwise it is Keras 3 (the `keras` package).
        modname = str(getattr(tf.keras, "__name__", "?"))
        if modname.split(".")[0] == "tf_keras":
            out.append(Check("tf.keras", OK, f"resolves to tf_keras {tfk.__version__} (Keras 2): {modname}"))
        else:
            kv = _version("keras") or "?"
            out.append(Check("tf.keras", FAIL, f"resolves to {modname} (keras {kv}), not tf_keras",
                             "import edgekit before tensorflow (it sets TF_USE_LEGACY_KERAS=1); "
                             "tfmot and coremltools need a Keras 2 model"))
    except Exception as e:  # noqa: BLE001
        out.append(Check("tensorflow", FAIL, f"not importable ({type(e).__name__}: {e})",
                         "pip install tensorflow==2.21.0"))
    k3 = _version("keras")
    if k3 and k3.startswith("3."):
        out.append(Check("keras 3", OK, f"keras {k3} is installed too; edgekit does not use it (tf_keras is selected)"))
    return out


def check_tensorflow_vs_coremltools() -> list[Check]:
    tfv = _version("tensorflow")
    ctv = _version("coremltools")
    if tfv is None:
        return [Check("tensorflow", FAIL, "not installed", "pip install tensorflow==2.21.0")]
    if ctv is None:
        return [Check("coremltools", FAIL, "not installed", "pip install coremltools==9.0")]
    try:
        deps = _import("coremltools._deps")
        lo, hi = deps._TF_2_MIN_VERSION, deps._TF_2_MAX_VERSION
    except Exception as e:  # noqa: BLE001
        return [Check("coremltools", FAIL, f"not importable ({type(e).__name__}: {e})", "pip install coremltools==9.0")]
    if _vtuple(tfv) < _vtuple(lo):
        return [Check("TensorFlow vs coremltools", FAIL, f"TensorFlow {tfv} is below coremltools {ctv}'s minimum {lo}: "
                      "TensorFlow conversion is disabled", "pip install tensorflow==2.21.0")]
    if _vtuple(tfv) > _vtuple(hi):
        return [Check("TensorFlow vs coremltools", WARN,
                      f"TensorFlow {tfv} is newer than {hi}, the last version coremltools {ctv} was tested with. "
                      "coremltools prints a warning on import; it converts edgekit's models fine, and every Core ML "
                      "variant is checked numerically against the original, so a bad conversion shows up as a failed check")]
    return [Check("TensorFlow vs coremltools", OK, f"TensorFlow {tfv} is within coremltools {ctv}'s tested range {lo}..{hi}")]


def check_litert() -> list[Check]:
    v = _version("ai-edge-litert")
    try:
        mod = _import("ai_edge_litert.interpreter")
        mod.Interpreter  # noqa: B018 - the class edgekit uses must exist
    except Exception as e:  # noqa: BLE001
        return [Check("LiteRT", FAIL, f"ai_edge_litert.interpreter not importable ({type(e).__name__}: {e})",
                      "pip install ai-edge-litert==2.3.0")]
    return [Check("LiteRT", OK, f"ai-edge-litert {v} (Interpreter importable), TensorFlow {_version('tensorflow')}")]


def check_tfmot() -> list[Check]:
    try:
        compat = _import("tensorflow_model_optimization.python.core.keras.compat")
        tfk = _import("tf_keras")
    except Exception as e:  # noqa: BLE001
        return [Check("tensorflow-model-optimization", FAIL, f"not importable ({type(e).__name__}: {e})",
                      "pip install tensorflow-model-optimization==0.8.1 tf-keras==2.21.0")]
    # tfmot picks its Keras at import; it must be the same module edgekit builds models with.
    uses = getattr(compat.keras, "__name__", "?")
    if uses.split(".")[0] != tfk.__name__ and compat.keras is not tfk:
        ver = getattr(compat.keras, "__version__", "?")
        return [Check("tensorflow-model-optimization", FAIL, f"uses {uses} (Keras {ver}), not tf_keras",
                      "import edgekit before tensorflow_model_optimization (TF_USE_LEGACY_KERAS=1)")]
    return [Check("tensorflow-model-optimization", OK,
                  f"{_version('tensorflow-model-optimization')} on tf_keras ({uses})")]


def check_sklearn() -> list[Check]:
    try:
        _import("sklearn.cluster")
    except Exception as e:  # noqa: BLE001
        return [Check("scikit-learn", FAIL, f"not importable ({type(e).__name__}: {e}); Core ML palettization "
                      "(coreml-pal6/pal4/pal2) needs its k-means", "pip install scikit-learn==1.9.1")]
    return [Check("scikit-learn", OK, f"{_version('scikit-learn')} (k-means for Core ML palettization; coremltools' "
                  "message that this version is 'not supported' concerns converting scikit-learn models, which edgekit does not do)")]


def check_coreml_runtime() -> list[Check]:
    if sys.platform != "darwin":
        return [Check("Core ML runtime", OK,
                      f"absent on {platform.system()} (Core ML runs only on macOS/iOS); Core ML variants are "
                      "executed by edgekit's mil-reference interpreter and labelled `mil-reference`, never `coreml`")]
    try:
        _import("coremltools.libcoremlpython")
    except Exception as e:  # noqa: BLE001
        return [Check("Core ML runtime", WARN, f"macOS, but coremltools' native runtime is not loadable "
                      f"({type(e).__name__}: {e}); Core ML variants fall back to mil-reference",
                      "reinstall coremltools==9.0 from its macOS wheel")]
    return [Check("Core ML runtime", OK, f"macOS {platform.mac_ver()[0]}: Core ML variants run in the real runtime")]


def check_chromium(explicit: str | None = None) -> list[Check]:
    path = find_chromium(explicit)
    if path is None:
        return [Check("Chromium", WARN, "not found; only the report's browser test needs it (it is skipped without)",
                      "apt-get install -y chromium, or set EDGEKIT_CHROMIUM=/path/to/chrome")]
    try:
        ver = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return [Check("Chromium", WARN, f"{path} does not run ({e})", "reinstall chromium")]
    return [Check("Chromium", OK, f"{ver or 'unknown version'} at {path}")]


CHECKS: tuple[Callable[[], list[Check]], ...] = (
    check_keras, check_tensorflow_vs_coremltools, check_litert, check_tfmot, check_sklearn, check_coreml_runtime,
)


def run(config: DoctorConfig = DoctorConfig()) -> DoctorResult:
    """Run every check; never raises for a broken environment (that is a FAIL line)."""
    checks: list[Check] = []
    for fn in CHECKS:
        checks.extend(fn())
    checks.extend(check_chromium(config.chromium))
    return DoctorResult(fingerprint=environment_fingerprint(), checks=tuple(checks))


def format_result(result: DoctorResult) -> str:
    lines = ["environment:"]
    width = max(len(k) for k in result.fingerprint)
    lines += [f"  {k:<{width}}  {v}" for k, v in result.fingerprint.items()]
    lines.append("checks:")
    for c in result.checks:
        lines.append(f"  [{c.status:>4}] {c.name}: {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"         fix: {c.fix}")
    bad = [c for c in result.checks if c.status == FAIL]
    warns = [c for c in result.checks if c.status == WARN]
    if bad:
        lines.append(f"NOT USABLE: {len(bad)} check(s) failed ({', '.join(c.name for c in bad)}); see 'fix' above")
    else:
        lines.append("usable" + (f" ({len(warns)} warning(s))" if warns else ""))
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--chromium", metavar="PATH", help="Chromium/Chrome binary for the browser test "
                        "(default: $EDGEKIT_CHROMIUM, then chromium on PATH)")


def main(args) -> int:
    result = run(DoctorConfig(chromium=args.chromium))
    print(format_result(result))
    return 0 if result.usable else 1
