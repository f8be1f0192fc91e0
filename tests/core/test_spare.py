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


def test_the_spare_exits_when_the_command_is_killed(tmp_path):
    """A command killed with -9 leaves no spare process behind (it would keep
    TensorFlow in memory, waiting for tasks, forever)."""
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "spare.pid"
    script = ("import os, time\n"
              "from edgekit import spare\n"
              "if __name__ == '__main__':\n"
              f"    open({str(pid_file)!r}, 'w').write(str(spare.submit(os.getpid).result(timeout=60)))\n"
              "    time.sleep(600)\n")
    (tmp_path / "command.py").write_text(script)
    command = subprocess.Popen([sys.executable, str(tmp_path / "command.py")])
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        spare_pid = int(pid_file.read_text())
        os.kill(spare_pid, 0)   # running
    finally:
        command.send_signal(signal.SIGKILL)
        command.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(spare_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(spare_pid, signal.SIGKILL)
    pytest.fail(f"spare process {spare_pid} still running 20 s after its command was killed")
