"""edgekit.spare: one worker process shared by a command's stages, replaced when it dies."""
from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from edgekit import spare


@pytest.fixture
def fresh():
    spare.close()
    yield
    spare.close()


def test_tasks_run_in_one_other_process_that_stays(fresh):
    first = spare.submit(os.getpid).result(timeout=60)
    assert first != os.getpid()
    assert spare.submit(os.getpid).result(timeout=60) == first   # the same process, still running


def test_warm_imports_there_and_returns_none(fresh):
    assert spare.warm("json", "edgekit.handoff").result(timeout=60) is None


def test_a_spare_that_died_is_replaced_and_its_task_fails(fresh):
    before = spare.submit(os.getpid).result(timeout=60)
    with pytest.raises(BrokenProcessPool):
        spare.submit(os._exit, 3).result(timeout=60)
    after = spare.submit(os.getpid).result(timeout=60)
    assert after not in (before, os.getpid())


def test_close_stops_it_and_the_next_submit_starts_another(fresh):
    before = spare.submit(os.getpid).result(timeout=60)
    spare.close()
    assert spare.submit(os.getpid).result(timeout=60) != before
