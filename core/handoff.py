"""Independent tasks shared between one worker process and this one.

convert's fine-tunes and check's LiteRT predictions both have a queue of
tasks a second process can run while the main process does its own work.
A ``Handoff`` gives them out as they are taken:

- a feeder thread hands the worker one task at a time, from the front of the
  queue, and waits for it (``send``: runs the task there, returns its
  result, raises if the worker is gone). A process pool given the whole
  queue would also have queued the next tasks to the worker, out of the main
  process's reach;
- ``claim`` gives this process the next task nobody has started, from the
  back (check: the cheap files and the last slices; the two meet in the
  middle) or from the front (convert: the next fine-tune, all costing about
  the same);
- ``finish`` waits for the worker's task in hand and returns what the worker
  made, task by task. A task whose ``send`` raised, or whose result
  ``usable`` rejects, stops the feeder: it and every task still queued are
  the main process's, which runs them itself and raises its own one-line
  error if they fail there too (edgekit's errors do not cross a process
  boundary).

Leaving the ``with`` block (normally or on an error) clears the queue, so the
worker starts nothing new, and waits for the feeder.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    def __init__(self, tasks: list[T], send: Callable[[T], Any], *, claim_from_back: bool,
                 usable: Callable[[T, Any], bool] = lambda task, result: True, name: str = "edgekit-handoff"):
        self._pending, self._send, self._usable = list(tasks), send, usable
        self._from_back = claim_from_back
        self._lock = threading.Lock()
        self._made: list[tuple[T, Any]] = []
        self._feeder = threading.Thread(target=self._feed, name=name, daemon=True)
        self._feeder.start()

    def claim(self) -> T | None:
        """The next task the worker has not started, now this process's; None when none is left."""
        with self._lock:
            if not self._pending:
                return None
            return self._pending.pop() if self._from_back else self._pending.pop(0)

    def _feed(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    return
                task = self._pending.pop(0)
            try:
                result = self._send(task)
            except Exception:   # the worker died or never started
                result, ok = None, False
            else:
                ok = self._usable(task, result)
            if not ok:
                with self._lock:
                    self._pending.insert(0, task)   # this process makes it, and says why if it fails
                return
            self._made.append((task, result))

    def finish(self) -> list[tuple[T, Any]]:
        """(task, result) of every task the worker made, once the one in hand is done."""
        self._feeder.join()
        return list(self._made)

    def __enter__(self) -> Handoff[T]:
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._pending.clear()
        self._feeder.join()
