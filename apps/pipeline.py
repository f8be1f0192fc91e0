"""``edgekit run``: every stage in order (train, convert, check, report, golden), resuming.

``--model PATH`` (a file or directory instead of a zoo name) runs ``import``
in place of ``train``, with import's flags (``--input-range``, ``--mean``,
``--std``, ``--color``, ``--class-names``) and the shared dataset flags.

In: a run directory (default ``runs/mnist``) and any train/convert/check
flags (each stage's own, declared once: ``--variants`` feeds convert and
check, ``--seed`` is train's and ``--calibration-seed`` convert's), and the
report's recommendation flags (``--target-agreement``, ``--max-size``;
``--max-accuracy-drop`` is the check's bar and the recommendation's cap) and
``--diagnose-limit`` (the report's per-layer section). Out: the
whole run directory (docs/ARTIFACTS.md), ``<run>/pipeline.json`` (what each
stage was run with and the sha256 of the manifests it wrote), and on stdout
where the report is and the recommendation per platform.

The stages are driven through the stage protocol (``edgekit.stage``): the
stage CLI module's ``config_from_args``, the stage's ``run``, the CLI
module's ``show`` — the same calls ``edgekit <stage>`` makes.

Resuming: a stage is reused only when its recorded inputs (its config and
the sha256 of the upstream manifests) equal the current ones, the manifests
it wrote are unchanged (same sha256) and the stage says its artifacts are
current (``is_current``: files hash as recorded, made from the current
upstream). Otherwise it reruns; a stage downstream of one that reran sees
changed inputs and reruns too. A stage made by hand outside ``edgekit run``
has no record and is redone once. ``--force`` reruns everything.

Exit code: 0, or 1 when a variant failed to convert or failed its check
(the report and the golden kit are still written), 2 for bad input.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from edgekit import artifacts, rundir, spare, stage
from edgekit.apps import flags
from edgekit.errors import ArtifactError, ConfigError, StageFailed
from edgekit.rundir import RunDir

HELP = "run every stage (train, convert, check, report, golden), reusing finished ones"
DESCRIPTION = """\
Train the model, convert it into every variant, check each variant in its
runtime against the original, write the report (RUN/report/report.html)
and the on-device golden kit (RUN/golden/), then print where the report is
and which variant to ship on iOS and on Android.

Stages whose artifacts are complete and were made from the same inputs are
reused (recorded in RUN/pipeline.json by sha256); a stage whose inputs
changed reruns, and so does every stage after it. Train, convert and check
flags mean what they mean for `edgekit train/convert/check` (see below).

Exit code 0 when every variant passed, 1 when a variant failed to convert
or failed its check (the report says which and why), 2 for bad input.

Examples:
  edgekit run                                   # runs/mnist, bundled MNIST
  edgekit run --run runs/mobile --model mobile
  edgekit run --run runs/flowers --model flowers.keras --dataset folder --data-dir ~/flowers
  edgekit run --variants tflite-int8,coreml-pal4 --min-agreement 0.99
  edgekit run --target-agreement 0.998 --max-size 200   # what may be recommended
  edgekit run --diagnose-limit 0                # no per-layer section in the report (fastest)
  edgekit run --force                           # redo every stage
"""

DEFAULT_RUN = "runs/mnist"
DEFAULT_GOLDEN_COUNT = 100
ORDER = tuple(s for s in stage.STAGES if s != "import")   # train, convert, check, report, golden
# What the spare process (edgekit.spare) runs later: convert's fine-tunes, check's LiteRT files.
# Imported there while the main process starts training, on the core it leaves free.
SPARE_IMPORTS = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "edgekit.convert.stage",
                 "edgekit.runtime.backends")
# with --model PATH, import takes train's place in ORDER
FLAGGED = ("train", "convert", "check")  # stages whose flags `edgekit run` takes
SHOWN = (*FLAGGED, "import")             # stages whose result `edgekit run` prints as `edgekit <stage>` does
CLI = {  # stage -> its CLI module (config_from_args, show)
    "train": "edgekit.train.cli",
    "import": "edgekit.train.import_cli",
    "convert": "edgekit.convert.cli",
    "check": "edgekit.runtime.check_cli",
    "report": "edgekit.runtime.report_cli",
    "golden": "edgekit.runtime.golden_cli",
}
# Config fields that are not inputs of the work: where it goes, and whether
# an old artifact may be replaced (the pipeline decides that itself).
NOT_INPUTS = {"run_dir", "overwrite", "jobs"}   # where and how fast, not what

PARENTS = [lambda: flags.run_dir(DEFAULT_RUN), flags.variants, flags.max_accuracy_drop, flags.recommendation,
           flags.jobs, flags.diagnose_limit]


def _cli(name: str) -> ModuleType:
    return importlib.import_module(CLI[name])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="rerun every stage even if its artifacts are current")
    parser.add_argument("--golden-count", type=int, default=DEFAULT_GOLDEN_COUNT, metavar="N",
                        help=f"samples in the on-device golden kit (default {DEFAULT_GOLDEN_COUNT})")
    for name in FLAGGED:
        # each stage's own flags, as `edgekit <stage>` has them; two stages
        # declaring the same flag is a conflict argparse refuses here
        group = parser.add_argument_group(f"{name} options (as `edgekit {name}`)")
        # --model is a zoo name (train) or the path of your own model (import instead of train)
        _cli(name).add_arguments(group, **({"or_path": True} if name == "train" else {}))
    _cli("import").add_own_arguments(parser.add_argument_group(
        "import options (with --model PATH; as `edgekit import`)"))


def _zoo() -> list[str]:
    from edgekit.train.config import Model

    return [m.value for m in Model]


IMPORT_ONLY = ("input_range", "mean", "std", "color", "class_names")


def importing(args: argparse.Namespace) -> bool:
    """True when ``--model`` names a file or directory rather than a zoo model."""
    value = str(getattr(args, "model", "cnn"))
    if value in _zoo():
        return False
    if not Path(value).exists() and "/" not in value and "." not in value:
        raise ConfigError("--model", f"unknown model {value!r}: give a zoo model ({', '.join(_zoo())}) or the "
                                     "path of your own .keras/.h5 file or SavedModel directory")
    return True


# ------------------------------------------------------------------ configs

def _plain(obj: Any) -> Any:
    """JSON round trip: Paths, enums and tuples become what pipeline.json holds."""
    return json.loads(artifacts.dumps(obj))


def stage_configs(args: argparse.Namespace) -> dict[str, Any]:
    """Every stage's config, built before any work so a bad flag fails fast.
    Each is what `edgekit <stage>` would build from the same flags, with
    ``overwrite`` on: a stage that runs replaces what the pipeline found stale."""
    golden_count = args.golden_count
    if isinstance(golden_count, bool) or not isinstance(golden_count, int) or not 1 <= golden_count <= 10_000:
        raise ConfigError("--golden-count", f"must be an integer in [1, 10000], got {golden_count!r}")
    ns = argparse.Namespace(**{**vars(args), "overwrite": True})
    first = "import" if importing(args) else "train"
    if first == "train":
        given = [k for k in IMPORT_ONLY if getattr(args, k, None) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(flag, "applies to an imported model; give --model PATH (your own model file)")
    configs = {name: _cli(name).config_from_args(ns) for name in (first, *FLAGGED[1:])}
    from edgekit.runtime import golden, report

    run_dir = Path(args.run)
    configs["report"] = report.ReportConfig(run_dir=run_dir, **_cli("report").shared_kwargs(args))
    configs["golden"] = golden.GoldenConfig(run_dir=run_dir, count=golden_count, policy=configs["report"].policy)
    return configs


def config_inputs(config: Any) -> dict:
    """What of a config decides a stage's output (recorded in pipeline.json)."""
    inputs = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in NOT_INPUTS}
    content = getattr(config, "content_inputs", None)   # what files the flags name say (convert's recipes)
    return _plain({**inputs, **(content() if content else {})})


# ------------------------------------------------------------------ state

def _load_state(run: RunDir) -> dict:
    if not run.pipeline_json.is_file():
        return {}
    try:
        data = artifacts.read_manifest(run.pipeline_json, rundir.PIPELINE_SCHEMA, {"stages": dict})
    except ArtifactError:
        return {}  # unreadable or foreign record: nothing is reused
    return data["stages"]


def _save_state(run: RunDir, stages: dict) -> None:
    artifacts.write_json(run.pipeline_json, {"schema": rundir.PIPELINE_SCHEMA, "stages": stages})


def _changed(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _summarised(paths: list[str], most: int = 3) -> list[str]:
    """Changed upstream artifacts for a status line: a few by name, the rest counted."""
    shown = [f"{p} (from an earlier stage)" for p in paths[:most]]
    return shown + ([f"{len(paths) - most} more artifacts of earlier stages"] if len(paths) > most else [])


def reusable(name: str, run: "RunDir | Path", inputs: dict, state: dict) -> tuple[bool, str]:
    """(reuse?, why) for a stage given its current inputs and the recorded state;
    ``why`` completes "running (…)" or "reused (…)"."""
    run = RunDir.of(run)
    rec = state.get(name)
    if not isinstance(rec, dict) or not isinstance(rec.get("inputs"), dict):
        return False, "no earlier result"
    old = rec["inputs"]
    if old != inputs:
        changed = _changed(old.get("config") or {}, inputs["config"])
        changed += _summarised(_changed(old.get("upstream") or {}, inputs["upstream"]))
        return False, f"its inputs changed: {', '.join(changed) or 'the record format'}"
    outputs = rec.get("outputs") or {}
    if not outputs or rundir.stage_outputs(run, name) != outputs:
        return False, "its artifacts changed or are missing since it ran"
    if not stage.is_current(name, run.root):
        return False, "its artifacts no longer match their manifests"
    return True, "inputs and artifacts unchanged"


# ------------------------------------------------------------------ run

@dataclasses.dataclass
class PipelineResult:
    run_dir: Path
    ran: list[str]
    reused: list[str]
    failures: list[str]
    report_html: Path | None
    summary: str
    unshown: list[str] = dataclasses.field(default_factory=list)  # failures no stage has printed

    @property
    def ok(self) -> bool:
        return not self.failures

    def failure(self) -> str | None:
        return "; ".join(self.failures) or None


def _run_stage(name: str, config: Any) -> tuple[bool, str | None]:
    """Run a stage through the protocol; (ok, failure line). train/convert/check
    print what `edgekit <stage>` prints."""
    result = stage.module(name).run(config)
    if name in SHOWN:
        _cli(name).show(result)
    return bool(result.ok), (None if result.ok else (result.failure() or f"{name} failed"))


def _reused_failure(name: str, run: RunDir) -> str | None:
    """A reused convert or check still decides the exit code: its failures have not changed."""
    recorded = getattr(stage.module(name), "recorded_failure", None)
    return recorded(run.root) if recorded else None


def run_pipeline(args: argparse.Namespace) -> PipelineResult:
    run = RunDir(Path(args.run))
    configs = stage_configs(args)
    state = {} if args.force else _load_state(run)
    new_state: dict = {}
    ran, reused, failures = [], [], []
    unshown: list[str] = []  # failures no stage printed (reused ones): the exit line says them
    upstream: dict[str, str] = {}
    for name in ("import" if "import" in configs else "train", *ORDER[1:]):
        if name in ("report", "golden") and not run.check_results.is_file():
            print(f"[{name}] skipped: no check results", flush=True)
            continue
        inputs = {"config": config_inputs(configs[name]), "upstream": dict(upstream)}
        ok, why = (False, "--force") if args.force else reusable(name, run, inputs, state)
        if ok:
            print(f"[{name}] reused ({why})", flush=True)
            reused.append(name)
            new_state[name] = state[name]
            if (failure := _reused_failure(name, run)):
                failures.append(failure)
                unshown.append(failure)
        else:
            print(f"[{name}] running ({why})", flush=True)
            if name in ("train", "import") and configs["convert"].jobs > 1:
                spare.warm(*SPARE_IMPORTS)   # convert reruns after it
            t0 = time.perf_counter()
            stage_ok, failure = _run_stage(name, configs[name])
            ran.append(name)
            if failure:
                failures.append(failure)
                if name not in SHOWN:
                    unshown.append(failure)
            print(f"[{name}] {'done' if stage_ok else 'finished with failures'} in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
            outputs = rundir.stage_outputs(run, name)
            complete = stage_ok or name == "check"  # failing variants still make complete check results
            state.pop(name, None)
            if complete and outputs:
                new_state[name] = {"inputs": inputs, "outputs": outputs}
            _save_state(run, {**state, **new_state})
            if name in ("train", "import") and not stage_ok:
                break  # nothing downstream can run without a model
        upstream.update(rundir.stage_outputs(run, name))
    _save_state(run, new_state)

    lines = [f"stages: ran {', '.join(ran) or 'none'}; reused {', '.join(reused) or 'none'}"]
    if "report" in ran or "report" in reused:
        rj = artifacts.read_manifest(run.report_json, rundir.REPORT_SCHEMA, {"recommendation_text": list})
        lines.append(f"report: {run.report_html}")
        lines += rj["recommendation_text"]
        if run.golden_json.is_file():
            lines.append(f"golden kit (on-device parity test): {run.golden_dir}")
    return PipelineResult(run_dir=run.root, ran=ran, reused=reused, failures=failures, unshown=unshown,
                          report_html=run.report_html if run.report_html.is_file() else None,
                          summary="\n".join(lines))


def main(args: argparse.Namespace) -> int:
    result = run_pipeline(args)
    print()
    print(result.summary)
    if not result.ok:  # exit 1; the stages that ran printed their failures already
        raise StageFailed("; ".join(result.unshown))
    return 0
