"""LiteRT predictions in a second process, beside the check stage's own work.

check's predictions are CPU-bound and independent per variant. The main
process runs the original Keras model and the mil-reference programs (numpy,
both cores); LiteRT's XNNPACK kernels are fast, but its int16x8 kernels are
reference code on one thread (tflite-int16x8 takes about half of a default
check's prediction time). So one worker process runs the LiteRT files, the
slowest first, while the main process works; when the main process is done
it takes, from the back of the queue, every task the worker has not
started (edgekit.handoff: the worker is handed one task at a time, so it
never holds more than the one it is running): neither side idles long
while the other has a queue.

The worker is the command's spare process (edgekit.spare: a fresh
interpreter, already started by ``edgekit run``; here it needs only numpy,
LiteRT and edgekit's backends). It reads the test inputs from one ``.npy``
file, memory-mapped, and sends back only the probabilities. A file LiteRT
cannot run there comes back as None from ``finish``; a crashed worker
leaves its task and the rest to ``claim``: either way the main process runs
that file itself and raises the one-line error it always raised. Latency and throughput are not
measured here: they are timed after all predictions, one variant at a time,
alone (check.py).
"""
from __future__ import annotations

import concurrent.futures as cf
import tempfile
from pathlib import Path

import numpy as np

from edgekit import spare

_inputs: tuple[str, np.ndarray] | None = None   # the worker's memory-mapped test inputs, and their file


def _predict(inputs_path: str, path: str, start: int, end: int) -> np.ndarray | None:
    """The file's probabilities on inputs[start:end], or None if it cannot run here. edgekit's
    errors do not cross the process boundary (their constructors take other
    arguments than they pickle with); the main process makes its own."""
    global _inputs
    from edgekit.runtime.backends import LiteRTBackend

    try:
        if _inputs is None or _inputs[0] != inputs_path:
            _inputs = (inputs_path, np.load(inputs_path, mmap_mode="r", allow_pickle=False))
        # one thread: the main process keeps the other core busy
        return LiteRTBackend(path, num_threads=1).predict(np.asarray(_inputs[1][start:end]))
    except Exception:
        return None


class LiteRTWorker:
    """The spare process (edgekit.spare) predicting LiteRT files on ``x``; a context manager.

    ``tasks``: (key, path, start, end) shared with this process through an
    ``edgekit.handoff.Handoff``: the worker takes them from the front, one
    at a time; ``claim`` gives this process the last one nobody has started;
    ``finish`` returns the worker's probabilities by key (None: it could not
    run that file, run it here)."""

    def __init__(self, x: np.ndarray, tasks: list[tuple] = ()):
        from edgekit.handoff import Handoff

        self._tmp = tempfile.TemporaryDirectory(prefix="edgekit-check-")
        self._inputs = Path(self._tmp.name) / "inputs.npy"
        np.save(self._inputs, np.ascontiguousarray(x, np.float32))
        self._handoff = Handoff(list(tasks), lambda t: self.submit(*t[1:]).result(), claim_from_back=True,
                                name="edgekit-check-feeder")

    def claim(self) -> tuple | None:
        """The last task the worker has not started, now this process's; None when none is left."""
        return self._handoff.claim()

    def finish(self) -> dict:
        """Waits for the worker's task in hand; the probabilities of every task it made, by key."""
        return {task[0]: probs for task, probs in self._handoff.finish()}

    def submit(self, path: Path, start: int = 0, end: int | None = None) -> cf.Future:
        """Predict images ``start:end`` of the inputs with the file at ``path``."""
        return spare.submit(_predict, str(self._inputs), str(path), start, end)

    def __enter__(self) -> LiteRTWorker:
        return self

    def __exit__(self, *exc) -> None:
        self._handoff.__exit__(*exc)   # an error in the main process: the worker starts nothing new
        self._tmp.cleanup()
