"""Training steps per second: one worker process vs two worker processes on
this machine (MultiWorkerMirroredStrategy on 127.0.0.1, same global batch).

In: nothing (bundled MNIST). Out: a table on stdout and the ratio
two-workers / one-worker of steps per second, measured side by side in one run.

Both configurations run the same code path (`--strategy multiworker`, a
1-worker or 2-worker TF_CONFIG) for one epoch of 12,800 images at a global
batch of 128 (100 steps); the rate is taken over steps 10..100, so process
start-up, cluster connection and graph tracing are excluded. On a machine
with 2 CPU cores two processes share the same cores, so the ratio measures
the cost of the all-reduce and the extra process, not a speed-up; on
separate hosts each worker has its own cores and the ratio is the scaling.

    .venv/bin/python bench/distribute_steps.py
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GLOBAL_BATCH = 128
TRAIN = 12800
SKIP = 10  # steps excluded from the rate (tracing, connection warm-up)
TIMEOUT = 600


def worker(out_json: str, run_dir: str) -> None:
    """One worker process (TF_CONFIG in the environment): train, time steps SKIP..end."""
    import edgekit  # noqa: F401  (tf_keras before TensorFlow)
    import tf_keras as keras

    from edgekit.train import TrainConfig, run

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 == SKIP:
                self.t0 = time.perf_counter()
            self.steps, self.t1 = batch + 1, time.perf_counter()

    clock = Clock()
    run(TrainConfig(run_dir=run_dir, strategy="multiworker", epochs=1, train_limit=TRAIN, val_size=0,
                    test_limit=500, batch_size=GLOBAL_BATCH), callbacks=[clock])
    rate = (clock.steps - SKIP) / (clock.t1 - clock.t0)
    Path(out_json).write_text(json.dumps({"steps": clock.steps, "steps_per_second": rate}))


def cluster(n: int, root: Path) -> list[dict]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    addrs = [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    for s in socks:
        s.close()
    procs = []
    for i in range(n):
        env = {**os.environ, "EDGEKIT_PROGRESS": "0",
               "TF_CONFIG": json.dumps({"cluster": {"worker": addrs}, "task": {"type": "worker", "index": i}})}
        log = open(root / f"n{n}-w{i}.log", "w")
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", str(root / f"n{n}-w{i}.json"),
                                       str(root / f"n{n}-w{i}")], env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        for p in procs:
            p.wait(timeout=TIMEOUT)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, p in enumerate(procs):
        if p.returncode:
            sys.exit(f"{n}-worker run, worker {i} failed; see {root / f'n{n}-w{i}.log'}")
    return [json.loads((root / f"n{n}-w{i}.json").read_text()) for i in range(n)]


def main() -> None:
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-dist-") as d:
        root = Path(d)
        one = cluster(1, root)
        two = cluster(2, root)
    r1 = one[0]["steps_per_second"]
    r2 = min(w["steps_per_second"] for w in two)  # synchronous: the cluster runs at its slowest worker
    print(f"cnn, global batch {GLOBAL_BATCH}, {TRAIN // GLOBAL_BATCH} steps, rate over steps {SKIP}..end, "
          f"{cores} CPU cores")
    print(f"{'workers':>8} {'steps/s':>9} {'images/s':>9}")
    for n, r in ((1, r1), (2, r2)):
        print(f"{n:>8} {r:>9.2f} {r * GLOBAL_BATCH:>9.0f}")
    print(f"ratio 2 workers / 1 worker: {r2 / r1:.2f}x steps per second")
    if cores is not None and cores < 4:
        print(f"note: both workers share this machine's {cores} cores, so this ratio shows the overhead of a "
              "second process and the ring all-reduce, not the speed-up of separate hosts")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        main()
