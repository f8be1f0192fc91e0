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

    .venv/bin/python bench/run_pipeline.py [--before PYTHON] [extra `edgekit run` flags]
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 60            # issue 14: from scratch on 2 cores
OLD_TARGET_S = 6 * 60
STAGE_DONE = re.compile(r"^\[(\w+)\] (?:done|finished with failures) in ([\d.]+) s")


def timed_run(run_dir: Path, extra: list[str], python: str = sys.executable) -> tuple[float, int, dict[str, float], str]:
    env = dict(os.environ, EDGEKIT_PROGRESS="0")
    t0 = time.perf_counter()
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
    return time.perf_counter() - t0, rc, stages, "".join(lines)


def main(argv: list[str]) -> int:
    before = None
    if argv[:1] == ["--before"]:
        if len(argv) < 2:
            print("bench/run_pipeline.py: --before needs the other checkout's python", file=sys.stderr)
            return 2
        before, argv = argv[1], argv[2:]
    old: tuple[float, dict[str, float]] | None = None
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        if before:
            print(f"BEFORE: {before} -m edgekit run {' '.join(argv)} (fresh run directory)")
            secs, _, old_stages, _ = timed_run(Path(tmp) / "before", argv, before)
            old = (secs, old_stages)
        run_dir = Path(tmp) / "mnist"
        print(f"edgekit run {' '.join(argv)} (fresh run directory {run_dir})")
        first, rc1, stages, _ = timed_run(run_dir, argv)
        print("edgekit run again (same directory: every stage should be reused)")
        second, rc2, _, out2 = timed_run(run_dir, argv)
    print()
    if old:
        print(f"{'stage':<10} {'before':>8} {'after':>8} {'after/before':>12}")
        for stage, secs in stages.items():
            b = old[1].get(stage)
            print(f"{stage:<10} {b if b is not None else float('nan'):>8.1f} {secs:>8.1f} "
                  f"{secs / b if b else float('nan'):>12.2f}")
        print(f"{'total':<10} {old[0]:>8.1f} {first:>8.1f} {first / old[0]:>12.2f}   (wall, with start-up)")
    else:
        print(f"{'stage':<10} {'seconds':>8} {'share':>6}")
        for stage, secs in stages.items():
            print(f"{stage:<10} {secs:>8.1f} {secs / first:>6.1%}")
        print(f"{'total':<10} {first:>8.1f}   (exit code {rc1}; includes interpreter and TensorFlow start-up)")
    print(f"first run / 60 s target: {first / TARGET_S:.2f}x  ({'within' if first <= TARGET_S else 'OVER'} target); "
          f"/ the older 6-minute target: {first / OLD_TARGET_S:.2f}x")
    reused = "ran none" in out2
    print(f"resumed run: {second:.1f} s = {second / first:.3f}x of the first (exit code {rc2}; "
          f"{'all stages reused' if reused else 'NOT all stages reused'})")
    return 0 if first <= TARGET_S and reused and rc1 == rc2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
