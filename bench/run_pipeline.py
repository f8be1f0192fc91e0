"""Time the default one-command pipeline (`edgekit run`) against its 6-minute target.

Runs `edgekit run` from scratch in a fresh temporary run directory with the
defaults (bundled MNIST, every variant), then once more on the same
directory (everything should be reused), and prints each stage's time, the
total as a ratio of the 6-minute target, and the resumed run as a ratio of
the first, measured side by side in one process tree.

    .venv/bin/python bench/run_pipeline.py [extra `edgekit run` flags]
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 6 * 60
STAGE_DONE = re.compile(r"^\[(\w+)\] (?:done|finished with failures) in ([\d.]+) s")


def timed_run(run_dir: Path, extra: list[str]) -> tuple[float, int, dict[str, float], str]:
    env = dict(os.environ, EDGEKIT_PROGRESS="0")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "run", "--run", str(run_dir), *extra],
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
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        run_dir = Path(tmp) / "mnist"
        print(f"edgekit run {' '.join(argv)} (fresh run directory {run_dir})")
        first, rc1, stages, _ = timed_run(run_dir, argv)
        print("edgekit run again (same directory: every stage should be reused)")
        second, rc2, _, out2 = timed_run(run_dir, argv)
    print()
    print(f"{'stage':<10} {'seconds':>8} {'share':>6}")
    for stage, secs in stages.items():
        print(f"{stage:<10} {secs:>8.1f} {secs / first:>6.1%}")
    print(f"{'total':<10} {first:>8.1f}   (exit code {rc1}; includes interpreter and TensorFlow start-up)")
    print(f"first run / 6-minute target: {first / TARGET_S:.2f}x  ({'within' if first <= TARGET_S else 'OVER'} target)")
    reused = "ran none" in out2
    print(f"resumed run: {second:.1f} s = {second / first:.3f}x of the first (exit code {rc2}; "
          f"{'all stages reused' if reused else 'NOT all stages reused'})")
    return 0 if first <= TARGET_S and reused and rc1 == rc2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
