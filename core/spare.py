"""The spare process: one worker process per edgekit command, shared by its stages.

convert hands it fine-tunes and check hands it LiteRT files, one task at a
time (edgekit.handoff). Each stage used to start a process of its own, so
``edgekit run`` paid twice for a fresh interpreter, and convert's (importing
TensorFlow and tfmot, about 5 CPU-seconds) started when both cores were
already busy with conversions. Now ``edgekit run`` calls ``warm`` before
training: the spare imports what the later stages need while the main
process imports TensorFlow on the other core, and convert and check find it
ready.

It is a fresh interpreter (``spawn``: never a fork of a process that has
TensorFlow's threads). One that died is replaced at the next ``submit``;
the task it had fails, and edgekit.handoff gives that task back to the main
process. It stops with the command (concurrent.futures joins it at exit),
at ``close``, or by itself when the command's process is gone (killed with
-9: no orphan keeps TensorFlow in memory).
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

_lock = threading.Lock()
_pool: cf.ProcessPoolExecutor | None = None


def _new_pool() -> cf.ProcessPoolExecutor:
    return cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_watch_parent)


def _watch_parent() -> None:
    """In the spare: exit as soon as the process that started it is gone
    (killed with -9, or by the kernel for memory), instead of waiting for
    tasks forever with TensorFlow in memory."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch():
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="edgekit-spare-watch", daemon=True).start()


def submit(fn: Callable[..., Any], *args) -> cf.Future:
    """Run ``fn(*args)`` in the spare process (started now if it is not running)."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = _new_pool()
        try:
            return _pool.submit(fn, *args)
        except BrokenProcessPool:   # the last one died: a new one
            _pool = _new_pool()
            return _pool.submit(fn, *args)


def warm(*modules: str) -> cf.Future:
    """Start the spare process now and import ``modules`` there, quietly
    (edgekit.quiet); the future's result is None."""
    return submit(_import, modules)


def _import(modules: tuple[str, ...]) -> None:
    from edgekit import quiet

    for name in modules:
        quiet.import_module(name)


def close() -> None:
    """Stop the spare process (a later ``submit`` starts a new one)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
