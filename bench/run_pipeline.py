"""Time the default one-command pipeline (`edgekit run`) against its targets.

Runs `edgekit run` from scratch in a fresh temporary run directory with the
defaults (bundled MNIST, every variant), then once more on the same
directory (everything should be reused), and prints each stage's time, the
total as a ratio of issue 14's 60-second target (and of the older 6-minute
one), and the resumed run as a ratio of the first.

``--before PYTHON`` first times the same from-scratch run with another
checkout's interpreter (e.g. a worktree of an older commit with its own
venv), so the stage times before and after a change are measured side by
side in one run, on the same machine state.

``--rounds N`` repeats the from-scratch runs N times (before, after, before,
after, ...) and keeps each stage's best time: this 2-core virtual machine
runs the same training at ~10 or ~17 s an epoch from one minute to the next
(the host's load, not ours), and the best of alternating runs compares like
with like. Each run's CPU seconds (all its processes, user + system) are
printed too: they do not depend on how many cores the host lends.

    .venv/bin/python bench/run_pipeline.py [--before PYTHON] [--rounds N] [extra `edgekit run` flags]
"""
from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 60            # issue 14: from scratch on 2 cores
OLD_TARGET_S = 6 * 60
STAGE_DONE = re.compile(r"^\[(\w+)\] (?:done|finished with failures) in ([\d.]+) s")


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_run(run_dir: Path, extra: list[str], python: str = sys.executable):
    """(wall seconds, exit code, {stage: seconds}, output, CPU seconds of the run and its workers)."""
    env = dict(os.environ, EDGEKIT_PROGRESS="0")
    t0, c0 = time.perf_counter(), _cpu_children()
    proc = subprocess.Popen([python, "-m", "edgekit", "run", "--run", str(run_dir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    stages, lines = {}, []
    for line in proc.stdout:
        lines.append(line)
        sys.stdout.write("  | " + line)
        m = STAGE_DONE.match(line)
        if m:
            stages[m.group(1)] = float(m.group(2))
    rc = proc.wait()
    return time.perf_counter() - t0, rc, stages, "".join(lines), _cpu_children() - c0


def _best(runs: list[tuple]) -> tuple[float, dict[str, float], float]:
    """(best wall, best time of each stage, least CPU) over runs of timed_run."""
    stages: dict[str, float] = {}
    for r in runs:
        for k, v in r[2].items():
            stages[k] = min(stages.get(k, v), v)
    return min(r[0] for r in runs), stages, min(r[4] for r in runs)


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    before, rounds = None, 1
    while argv[:1] in (["--before"], ["--rounds"]):
        if len(argv) < 2:
            print(f"bench/run_pipeline.py: {argv[0]} needs a value", file=sys.stderr)
            return 2
        if argv[0] == "--before":
            before = argv[1]
        else:
            rounds = int(argv[1])
        argv = argv[2:]
    olds, news = [], []
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        for i in range(rounds):
            if before:
                print(f"BEFORE ({i + 1}/{rounds}): {before} -m edgekit run {' '.join(argv)} (fresh run directory)")
                olds.append(timed_run(Path(tmp) / f"before-{i}", argv, before))
            run_dir = Path(tmp) / f"mnist-{i}"
            print(f"edgekit run ({i + 1}/{rounds}) {' '.join(argv)} (fresh run directory {run_dir})")
            news.append(timed_run(run_dir, argv))
        rc1 = news[-1][1]
        print("edgekit run again (same directory: every stage should be reused)")
        second, rc2, _, out2, _ = timed_run(run_dir, argv)
    print()
    first, stages, cpu = _best(news)
    each = "; ".join(f"{r[0]:.1f} s wall, {r[4]:.1f} s CPU" for r in news)
    if olds:
        old_wall, old_stages, old_cpu = _best(olds)
        print(f"best of {rounds} alternating run(s) each")
        print(f"{'stage':<10} {'before':>8} {'after':>8} {'after/before':>12}")
        for stage, secs in stages.items():
            b = old_stages.get(stage)
            print(f"{stage:<10} {b if b is not None else float('nan'):>8.1f} {secs:>8.1f} "
                  f"{secs / b if b else float('nan'):>12.2f}")
        print(f"{'total':<10} {old_wall:>8.1f} {first:>8.1f} {first / old_wall:>12.2f}   (wall, with start-up)")
        print(f"{'CPU s':<10} {old_cpu:>8.1f} {cpu:>8.1f} {cpu / old_cpu:>12.2f}   (all processes, user + system)")
        print("before runs: " + "; ".join(f"{r[0]:.1f} s wall, {r[4]:.1f} s CPU" for r in olds))
    else:
        print(f"{'stage':<10} {'seconds':>8} {'share':>6}")
        for stage, secs in stages.items():
            print(f"{stage:<10} {secs:>8.1f} {secs / first:>6.1%}")
        print(f"{'total':<10} {first:>8.1f}   (exit code {rc1}; includes interpreter and TensorFlow start-up)")
    print(f"after runs: {each}")
    print(f"first run / 60 s target: {first / TARGET_S:.2f}x  ({'within' if first <= TARGET_S else 'OVER'} target); "
          f"/ the older 6-minute target: {first / OLD_TARGET_S:.2f}x")
    reused = "ran none" in out2
    print(f"resumed run: {second:.1f} s = {second / first:.3f}x of the first (exit code {rc2}; "
          f"{'all stages reused' if reused else 'NOT all stages reused'})")
    return 0 if first <= TARGET_S and reused and rc1 == rc2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
