"""edgekit.handoff: one task at a time to the worker, the rest to whoever
claims them, and a failed task back to the main process."""
import threading

from edgekit.handoff import Handoff


def _gated_send(log):
    """A worker stand-in that runs one task when the test releases it."""
    gate = threading.Semaphore(0)

    def send(task):
        log.append(task)
        gate.acquire()
        if task == "bad":
            raise RuntimeError("worker died")
        return task.upper()

    return send, gate


def test_the_worker_gets_one_task_at_a_time_and_this_process_the_back():
    log = []
    send, gate = _gated_send(log)
    with Handoff(["a", "b", "c", "d"], send, claim_from_back=True) as h:
        while not log:
            pass
        assert log == ["a"]                  # handed out at once, and only that one
        assert h.claim() == "d" and h.claim() == "c"
        gate.release()                       # the worker finishes "a" and takes "b"
        while len(log) < 2:
            pass
        assert h.claim() is None             # "b" is the worker's now
        gate.release()
        assert h.finish() == [("a", "A"), ("b", "B")]


def test_claiming_from_the_front():
    log = []
    send, gate = _gated_send(log)
    with Handoff(["a", "b", "c"], send, claim_from_back=False) as h:
        while not log:
            pass
        assert h.claim() == "b" and h.claim() == "c" and h.claim() is None
        gate.release()
        assert h.finish() == [("a", "A")]


def test_a_failed_or_unusable_task_goes_back_to_this_process_with_the_rest():
    log = []
    send, gate = _gated_send(log)
    with Handoff(["bad", "x", "y"], send, claim_from_back=False) as h:
        gate.release()
        assert h.finish() == []              # "bad" raised: the feeder stopped
        assert [h.claim(), h.claim(), h.claim(), h.claim()] == ["bad", "x", "y", None]
    assert log == ["bad"]
    send2, gate2 = _gated_send([])
    with Handoff(["a", "b"], send2, claim_from_back=False, usable=lambda t, r: t != "a") as h:
        gate2.release()
        assert h.finish() == [] and h.claim() == "a" and h.claim() == "b"


def test_leaving_the_block_stops_the_handing_out():
    log = []
    send, gate = _gated_send(log)
    h = Handoff(["a", "b", "c"], send, claim_from_back=True)
    while not log:
        pass
    gate.release()
    gate.release()   # if the feeder took "b" before the queue is cleared, it can finish too
    h.__exit__(RuntimeError, RuntimeError("main process failed"), None)   # waits for the task in hand
    assert log in (["a"], ["a", "b"]) and h.claim() is None
