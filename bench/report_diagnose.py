"""What the report's "Where the error comes from" section adds to the report stage.

On a checked run (``edgekit run --run DIR`` first), side by side:

- cold, as ``edgekit report`` runs alone (a fresh process: TensorFlow,
  coremltools and matplotlib are imported by the diagnoses):
  ``--diagnose-limit 0`` (no section), the default with no DIR/diagnose/
  (every diagnosis measured), and the default again (every one reused);
- warm, as the report stage runs inside a fresh ``edgekit run`` (train,
  convert and check imported those libraries already): ``report.run`` in one
  process after importing them, without the section, then with it measured,
  for each of ``--limits``;
- what the default limit gives up: each variant the report diagnosed,
  diagnosed on ``--limit`` and on ``--compare`` images side by side (same
  first jump and lowest local layer? the largest SNR difference of any layer
  but the softmax output, and of the softmax output).

Each timing is repeated ``--rounds`` times, interleaved; the median is
printed with the added seconds. DIR/diagnose/ is deleted before each
measured run (the reused run keeps the one before it).

    .venv/bin/python bench/report_diagnose.py --run DIR [--rounds 3] [--limits 50,200,500,1000]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _cold(run: Path, *flags: str) -> float:
    env = dict(os.environ, EDGEKIT_PROGRESS="0")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgekit", "report", "--run", str(run), *flags],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"edgekit report failed: {proc.stderr.strip()[-500:]}")
    return seconds


def _warm(run: Path, limit: int) -> tuple[float, float]:
    """(seconds without the section, seconds with it measured), in this process, libraries imported."""
    import contextlib
    import io

    from edgekit import quiet
    from edgekit.runtime import report

    with quiet.quiet():
        quiet.import_keras()
        import coremltools  # noqa: F401  (convert and check import it before the report in `edgekit run`)
        import matplotlib  # noqa: F401
    times = []
    for diagnose_limit in (0, limit):
        shutil.rmtree(run / "diagnose", ignore_errors=True)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            report.run(report.ReportConfig(run_dir=run, diagnose_limit=diagnose_limit))
        times.append(time.perf_counter() - t0)
    return times[0], times[1]


def _compare(run: Path, limit: int, more: int) -> None:
    """The report's diagnoses on ``limit`` and on ``more`` images, side by side."""
    import json

    from edgekit.rundir import ModelArtifact, RunDir
    from edgekit.runtime import diagnose

    wanted = [d["variant"] for d in json.loads(RunDir(run).report_json.read_text())["diagnoses"] if not d["error"]]
    source = diagnose.Source.load(ModelArtifact.read(RunDir(run)))
    print(f"  {limit} vs {more} images: variant, same first jump / lowest local layer, largest SNR difference "
          "(dB) of any layer but the softmax output, of the softmax output")
    for vid in wanted:
        a, b = (diagnose.run(diagnose.DiagnoseConfig(run_dir=run, variant=vid, limit=n), source) for n in (limit, more))
        diffs = {}   # softmax output or not -> largest |SNR difference|
        for ra, rb in zip(a.rows, b.rows):
            for ea, eb in ((ra.accumulated, rb.accumulated), (ra.local, rb.local)):
                if ea and eb and abs(ea.snr_db) != float("inf") and abs(eb.snr_db) != float("inf"):
                    key = ra.cls == "Softmax"
                    diffs[key] = max(diffs.get(key, 0.0), abs(ea.snr_db - eb.snr_db))
        print(f"  {vid:<20} {a.first_jump == b.first_jump and a.worst_local == b.worst_local!s:<5} "
              f"({b.first_jump} / {b.worst_local})  {diffs.get(False, 0):.2f}  {diffs.get(True, 0):.2f}")


def main(argv: list[str]) -> int:
    from edgekit.runtime.report import DEFAULT_DIAGNOSE_LIMIT

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--limit", type=int, default=DEFAULT_DIAGNOSE_LIMIT, help="the limit timed cold")
    p.add_argument("--limits", default=f"{DEFAULT_DIAGNOSE_LIMIT}", help="limits timed warm, comma-separated")
    p.add_argument("--compare", type=int, default=500, help="diagnose each variant on this many images too")
    args = p.parse_args(argv)
    flag = ["--diagnose-limit", str(args.limit)]
    off, fresh, reused = [], [], []
    for _ in range(args.rounds):
        off.append(_cold(args.run, "--diagnose-limit", "0"))
        shutil.rmtree(args.run / "diagnose", ignore_errors=True)
        fresh.append(_cold(args.run, *flag))
        reused.append(_cold(args.run, *flag))
    med = statistics.median
    print(f"report stage, median of {args.rounds} (seconds):")
    print(f"  cold `edgekit report`, {args.limit} images: without the section {med(off):.1f}; with it, measured "
          f"{med(fresh):.1f} (+{med(fresh) - med(off):.1f}); with it, reused {med(reused):.1f} "
          f"(+{med(reused) - med(off):.1f})")
    for limit in (int(v) for v in args.limits.split(",")):
        warm = [_warm(args.run, limit) for _ in range(args.rounds)]
        without, with_ = med(w[0] for w in warm), med(w[1] for w in warm)
        print(f"  warm (inside `edgekit run`), {limit} images: without {without:.1f}; with it, measured {with_:.1f} "
              f"(+{with_ - without:.1f})")
    _compare(args.run, args.limit, args.compare)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
