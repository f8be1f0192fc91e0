"""``edgekit run``: every stage in order (train, convert, check, report, golden), resuming.

In: a run directory (default ``runs/mnist``) and any train/convert/check
flags (the stages' own flags, shared where they mean the same thing:
``--seed``, ``--variants``). Out: the whole run directory
(docs/ARTIFACTS.md), ``<run>/pipeline.json`` (schema ``edgekit.pipeline/1``:
what each stage was run with and the sha256 of the manifests it wrote), and
on stdout where the report is and the recommendation per platform.

Resuming: a stage is skipped only when its recorded inputs (its flags and
the sha256 of the upstream manifests) equal the current ones, the
manifests it wrote are unchanged (same sha256), and they still describe
their files (the model file and variant files hash as recorded, variants and
check results name the current model manifest). Otherwise it reruns, and so
does every stage after it. A stage made by hand outside ``edgekit run`` has
no record and is redone once. ``--force`` reruns everything.

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
from typing import Any

from edgekit import artifacts
from edgekit.errors import ArtifactError, ConfigError, EdgekitError, StageFailed

HELP = "run every stage (train, convert, check, report, golden), reusing finished ones"
DESCRIPTION = """\
Train the model, convert it into every variant, check each variant in its
runtime against the original, write the report (RUN/report/report.html)
and the on-device golden kit (RUN/golden/), then print where the report is
and which variant to ship on iOS and on Android.

Stages whose artifacts are complete and were made from the same inputs are
reused (recorded in RUN/pipeline.json by sha256); a stage whose input changed
reruns with every stage after it. Train, convert and check flags are
accepted as they are by `edgekit train/convert/check` (see below).

Exit code 0 when every variant passed, 1 when a variant failed to convert
or failed its check (the report says which and why), 2 for bad input.

Examples:
  edgekit run                                   # runs/mnist, bundled MNIST
  edgekit run --run runs/mobile --model mobile
  edgekit run --variants tflite-int8,coreml-pal4 --min-agreement 0.99
  edgekit run --force                           # redo every stage
"""

SCHEMA = "edgekit.pipeline/1"
DEFAULT_RUN = "runs/mnist"
STAGE_CLIS = {  # stage -> CLI module; their flags become `edgekit run` flags
    "train": "edgekit.train.cli",
    "convert": "edgekit.convert.cli",
    "check": "edgekit.runtime.check_cli",
}
ORDER = ("train", "convert", "check", "report", "golden")
# Flags the pipeline owns itself: the run directory, and overwrite (decided per stage).
OWN_DESTS = {"run", "overwrite", "help"}
MODEL_SCHEMA = "edgekit.model/1"
VARIANT_SCHEMA = "edgekit.variant/1"
CHECK_SCHEMA = "edgekit.check/1"


class _StageParser(argparse.ArgumentParser):
    def error(self, message):  # noqa: D401 - argparse API
        raise EdgekitError(self.prog, message)


def _stage_parser(stage: str) -> argparse.ArgumentParser:
    mod = importlib.import_module(STAGE_CLIS[stage])
    p = _StageParser(prog=f"edgekit {stage}", add_help=False, allow_abbrev=False)
    mod.add_arguments(p)
    return p


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=DEFAULT_RUN, metavar="DIR", help=f"run directory (default {DEFAULT_RUN})")
    parser.add_argument("--force", action="store_true", help="rerun every stage even if its artifacts are current")
    parser.add_argument("--golden-count", type=int, default=100, metavar="N",
                        help="samples in the on-device golden kit (default 100)")
    taken = {"--run", "--force", "--golden-count", "-h", "--help"}
    for stage in STAGE_CLIS:
        group = parser.add_argument_group(f"{stage} options (as `edgekit {stage}`)")
        for action in _stage_parser(stage)._actions:
            if action.dest in OWN_DESTS or not action.option_strings or any(o in taken for o in action.option_strings):
                continue  # shared flags (--seed, --variants) are added once and feed every stage that has them
            group._add_action(action)
            taken.update(action.option_strings)


# ------------------------------------------------------------------ state

def _plain(obj: Any) -> Any:
    """JSON round trip: Paths, enums and tuples become what pipeline.json holds."""
    return json.loads(artifacts.dumps(obj))


def stage_namespace(stage: str, args: argparse.Namespace, run_dir: Path) -> argparse.Namespace:
    """The namespace `edgekit <stage>` would get: its defaults, the run's values for its flags."""
    ns = _stage_parser(stage).parse_args(["--run", str(run_dir)])
    for dest in vars(ns):
        if dest not in OWN_DESTS and hasattr(args, dest):
            setattr(ns, dest, getattr(args, dest))
    return ns


def _load_state(run_dir: Path) -> dict:
    path = run_dir / "pipeline.json"
    if not path.is_file():
        return {}
    try:
        data = artifacts.read_manifest(path, SCHEMA, {"stages": dict})
    except ArtifactError:
        return {}  # unreadable or foreign record: nothing is reused
    return data["stages"]


def _save_state(run_dir: Path, stages: dict) -> None:
    artifacts.write_json(run_dir / "pipeline.json", {"schema": SCHEMA, "stages": stages})


def _sha(path: Path) -> str | None:
    return artifacts.sha256_file(path) if path.is_file() else None


def stage_outputs(stage: str, run_dir: Path) -> dict[str, str]:
    """relative manifest path -> sha256 of what ``stage`` wrote."""
    if stage == "train":
        files = [run_dir / "model" / "manifest.json"]
    elif stage == "convert":
        files = sorted((run_dir / "variants").glob("*/variant.json"))
    elif stage == "check":
        files = [run_dir / "check" / "results.json"]
    elif stage == "report":
        files = [run_dir / "report" / "report.json", run_dir / "report" / "report.html"]
    else:
        files = [run_dir / "golden" / "golden.json"]
    return {f.relative_to(run_dir).as_posix(): s for f in files if (s := _sha(f))}


def artifacts_valid(stage: str, run_dir: Path, variants: str = "all") -> bool:
    """The stage's manifests still describe their files and name the current model.
    ``variants`` ("all" or "id,id"): the variants convert was asked for."""
    model_manifest = run_dir / "model" / "manifest.json"
    try:
        if stage == "train":
            m = artifacts.read_manifest(model_manifest, MODEL_SCHEMA, {"files": dict})
            for rec in m["files"].values():
                if not isinstance(rec, dict) or not rec.get("sha256"):
                    continue
                path = artifacts.resolve_inside(run_dir / "model", rec["path"])
                if not path.exists() or artifacts.sha256_tree(path) != rec["sha256"]:
                    return False
            return True
        if stage == "convert":
            model_sha = _sha(model_manifest)
            found = sorted((run_dir / "variants").glob("*/variant.json"))
            wanted = [v.strip() for v in str(variants).split(",") if v.strip()] if variants != "all" else []
            if wanted:  # only what was asked for; other, older variants may lie around
                found = [run_dir / "variants" / v / "variant.json" for v in wanted]
                if not all(vj.is_file() for vj in found):
                    return False
            variants_ok = bool(found)
            for vj in found:
                v = artifacts.read_manifest(vj, VARIANT_SCHEMA, {"file": dict, "source_model": dict})
                if v["source_model"].get("sha256") != model_sha:
                    return False
                path = artifacts.resolve_inside(vj.parent, v["file"]["path"])
                if not path.exists() or artifacts.sha256_tree(path) != v["file"].get("sha256"):
                    return False
            return variants_ok
        if stage == "check":
            r = artifacts.read_manifest(run_dir / "check" / "results.json", CHECK_SCHEMA, {"variants": dict})
            if (r.get("model_manifest") or {}).get("sha256") != _sha(model_manifest):
                return False
            # each result names the variant.json it measured (when the check recorded it)
            return all(not e.get("variant_manifest_sha256")
                       or e["variant_manifest_sha256"] == _sha(run_dir / "variants" / vid / "variant.json")
                       for vid, e in r["variants"].items())
        if stage == "report":
            from edgekit.runtime import report

            return report.is_current(run_dir)
        from edgekit.runtime import golden

        return golden.is_current(run_dir)
    except (EdgekitError, OSError, KeyError, TypeError):
        return False


def reusable(stage: str, run_dir: Path, inputs: dict, state: dict) -> tuple[bool, str]:
    """(reuse?, why) for a stage given its current inputs and the recorded state."""
    rec = state.get(stage)
    if not isinstance(rec, dict):
        return False, "no record of a finished run of this stage"
    if rec.get("inputs") != inputs:
        changed = sorted(k for k in set(inputs) | set(rec.get("inputs") or {})
                         if (rec.get("inputs") or {}).get(k) != inputs.get(k))
        return False, f"inputs changed ({', '.join(changed)})"
    outputs = rec.get("outputs") or {}
    if not outputs or stage_outputs(stage, run_dir) != outputs:
        return False, "its artifacts changed or are missing"
    if not artifacts_valid(stage, run_dir, str((inputs.get("params") or {}).get("variants", "all"))):
        return False, "its artifacts no longer match their manifests"
    return True, "artifacts current"


# ------------------------------------------------------------------ run

@dataclasses.dataclass
class PipelineResult:
    run_dir: Path
    ran: list[str]
    reused: list[str]
    failures: list[str]
    report_html: Path | None
    summary: str


def _call_stage(stage: str, ns: argparse.Namespace) -> tuple[int, str | None]:
    """Run a stage CLI's main; (exit code, failure message)."""
    mod = importlib.import_module(STAGE_CLIS[stage])
    try:
        rc = int(mod.main(ns) or 0)
    except StageFailed as e:
        return 1, str(e) or f"{stage} failed"
    return rc, (None if rc == 0 else f"{stage} exited with {rc}")


def run_pipeline(args: argparse.Namespace) -> PipelineResult:
    run_dir = Path(args.run)
    if isinstance(args.golden_count, bool) or not isinstance(args.golden_count, int) or not 1 <= args.golden_count <= 10_000:
        raise ConfigError("--golden-count", f"must be an integer in [1, 10000], got {args.golden_count!r}")
    # Build every stage's namespace before any work, so a bad flag fails fast.
    namespaces = {s: stage_namespace(s, args, run_dir) for s in STAGE_CLIS}
    state = {} if args.force else _load_state(run_dir)
    new_state: dict = {}
    ran, reused, failures = [], [], []
    upstream: dict[str, str] = {}
    rerun_downstream = bool(args.force)
    check_results = False
    for stage in ORDER:
        if stage in STAGE_CLIS:
            ns = namespaces[stage]
            params = {k: v for k, v in vars(ns).items() if k not in OWN_DESTS}
        else:
            params = {"golden_count": args.golden_count} if stage == "golden" else {}
        inputs = _plain({"params": params, "upstream": upstream})
        ok, why = (False, "an earlier stage reran") if rerun_downstream else reusable(stage, run_dir, inputs, state)
        if stage in ("report", "golden") and not check_results:
            print(f"[{stage}] skipped: no check results", flush=True)
            continue
        if ok:
            print(f"[{stage}] reusing {run_dir} ({why})", flush=True)
            reused.append(stage)
            new_state[stage] = state[stage]
        else:
            print(f"[{stage}] running ({why})", flush=True)
            t0 = time.perf_counter()
            rc, failure = _run_stage(stage, run_dir, namespaces.get(stage), args)
            ran.append(stage)
            rerun_downstream = True
            if failure:
                failures.append(failure)
            print(f"[{stage}] {'done' if rc == 0 else 'finished with failures'} in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            complete = rc == 0 or stage == "check"  # failing variants still make complete check results
            if complete and stage_outputs(stage, run_dir):
                new_state[stage] = {"inputs": inputs, "outputs": stage_outputs(stage, run_dir)}
            else:
                new_state.pop(stage, None)
                state.pop(stage, None)
            _save_state(run_dir, {**state, **new_state})
            if stage == "train" and rc != 0:
                break  # nothing downstream can run without a model
        upstream = {**upstream, **stage_outputs(stage, run_dir)}
        if stage == "check":
            check_results = (run_dir / "check" / "results.json").is_file()
    _save_state(run_dir, new_state)
    if check_results and "check" in reused:
        # A reused check still decides the exit code: its failing variants have not changed.
        r = artifacts.read_manifest(run_dir / "check" / "results.json", CHECK_SCHEMA, {"variants": dict})
        failed = [v for v, e in r["variants"].items() if not (isinstance(e, dict) and e.get("passed"))]
        if failed:
            failures.append(f"{len(failed)} of {len(r['variants'])} variants failed their thresholds: "
                            f"{', '.join(failed)} (see {run_dir / 'check' / 'junit.xml'})")

    html = run_dir / "report" / "report.html"
    lines = [f"stages: ran {', '.join(ran) or 'none'}; reused {', '.join(reused) or 'none'}"]
    if "report" in ran or "report" in reused:
        rj = artifacts.read_manifest(run_dir / "report" / "report.json", "edgekit.report/1", {"recommendation_text": list})
        lines.append(f"report: {html}")
        lines += rj["recommendation_text"]
        if (run_dir / "golden" / "golden.json").is_file():
            lines.append(f"golden kit (on-device parity test): {run_dir / 'golden'}")
    return PipelineResult(run_dir=run_dir, ran=ran, reused=reused, failures=failures,
                          report_html=html if html.is_file() else None, summary="\n".join(lines))


def _run_stage(stage: str, run_dir: Path, ns: argparse.Namespace | None, args) -> tuple[int, str | None]:
    if stage in STAGE_CLIS:
        if hasattr(ns, "overwrite"):
            ns.overwrite = True  # the pipeline decided this stage's artifacts are stale
        return _call_stage(stage, ns)
    if stage == "report":
        from edgekit.runtime import report

        report.run(report.ReportConfig(run=str(run_dir)))
        return 0, None
    from edgekit.runtime import golden

    golden.run(golden.GoldenConfig(run=str(run_dir), count=args.golden_count))
    return 0, None


def main(args: argparse.Namespace) -> int:
    result = run_pipeline(args)
    print()
    print(result.summary)
    if result.failures:
        raise StageFailed("; ".join(result.failures))
    return 0
