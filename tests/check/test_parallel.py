"""check's predictions in two processes (edgekit.runtime.workers): the same
numbers as in one, the worker really used (a slow file in slices, either
process taking the next), and a failure there still ends in the main
process's own one-line error."""
import json
import shutil

import numpy as np

from edgekit.runtime import check, workers


def _probs(run_dir, vid):
    with np.load(run_dir / "check" / "predictions" / f"{vid}.npz") as f:
        return {k: f[k] for k in f.files}


def test_two_jobs_give_the_one_job_results(make_run, monkeypatch):
    submitted = []
    real_submit = workers.LiteRTWorker.submit

    def spy(self, path, start=0, end=None):
        submitted.append((path.parent.name, start, end))
        return real_submit(self, path, start, end)

    monkeypatch.setattr(workers.LiteRTWorker, "submit", spy)
    one = make_run()
    two = shutil.copytree(one, one.parent / "two")
    r1 = check.run(check.CheckConfig(run_dir=one, jobs=1, latency_runs=3, warmup_runs=0))
    assert submitted == []
    r2 = check.run(check.CheckConfig(run_dir=two, jobs=2, latency_runs=3, warmup_runs=0))
    assert r2.test_count == 1000 >= check.PARALLEL_MIN_IMAGES   # tiny_run's whole test split: the worker's path
    # the worker is handed the first file at once; the second goes to whichever process is free first
    assert submitted[:1] == [("tflite-fp32", 0, 1000)] and len(submitted) <= 2
    assert set(submitted) <= {("tflite-fp32", 0, 1000), ("tflite-int8", 0, 1000)}
    for a, b in zip(r1.variants, r2.variants):
        assert a.id == b.id and a.comparison.agreement == b.comparison.agreement
        assert a.comparison.max_abs_diff == b.comparison.max_abs_diff
    for vid in ("tflite-fp32", "tflite-int8", "original"):
        for key, value in _probs(one, vid).items():
            np.testing.assert_allclose(_probs(two, vid)[key], value, atol=1e-6, err_msg=f"{vid}/{key}")


def test_worker_failure_hands_the_file_back(tmp_path, make_run):
    """A file the worker cannot run comes back as None (the main process
    reruns it and raises its own error); a good one as its probabilities.
    (Nothing is claimed here: the worker runs both.)"""
    run_dir = make_run(("tflite-fp32",))
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    bad = tmp_path / "not-a-model.tflite"
    bad.write_bytes(b"\0" * 64)
    good = run_dir / "variants" / "tflite-fp32" / "model.tflite"
    with workers.LiteRTWorker(x, [("bad", bad, 0, None), ("good", good, 0, None)]) as w:
        got = w.finish()
    assert got["bad"] is None
    from edgekit.runtime.backends import LiteRTBackend

    np.testing.assert_allclose(got["good"], LiteRTBackend(good).predict(x), atol=1e-6)


def test_latency_runs_follow_the_spread():
    """A steady call stops at the floor; a call whose time swings 1:10 runs
    on to the cap (its mean is not known to +-5% before). A clock of given
    durations stands in for the machine's, whose jitter is not a test input."""
    import itertools

    def clock_of(durations):
        ticks = itertools.accumulate(itertools.chain.from_iterable((0.0, d) for d in itertools.cycle(durations)))
        return lambda: next(ticks)

    steady = check.measure_latency(lambda x: None, np.zeros(1), runs=200, warmup=0, budget_s=60,
                                   clock=clock_of([0.00100, 0.00101, 0.00099]))
    assert steady["runs"] == check.MIN_LATENCY_RUNS and abs(steady["mean"] - 1.0) < 0.01
    noisy = check.measure_latency(lambda x: None, np.zeros(1), runs=80, warmup=0, budget_s=60,
                                  clock=clock_of([0.0002, 0.002]))
    assert noisy["runs"] == 80
    spent = check.measure_latency(lambda x: None, np.zeros(1), runs=500, warmup=0, budget_s=0.5,
                                  clock=clock_of([0.0002, 0.02]))
    assert spent["runs"] == 50   # the budget (0.5 s here): 50 runs of 10.1 ms on average pass it


def test_a_slow_file_is_cut_into_slices_that_cover_the_test_set(make_run, monkeypatch):
    """tflite-int16x8 (LiteRT's reference kernels) goes out in SLOW_PARTS
    slices, the worker taking them from the front and this process from the
    back; whoever runs each, the probabilities are the one-process ones."""
    run_dir = make_run(("tflite-fp32",))
    vdir = run_dir / "variants" / "tflite-fp32"
    manifest = json.loads((vdir / "variant.json").read_text())
    manifest["recipe"]["tflite"]["ops"] = ["EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"]
    (vdir / "variant.json").write_text(json.dumps(manifest))
    from support.runs import index_variants

    index_variants(run_dir)
    from edgekit.rundir import ModelArtifact

    model = ModelArtifact.read(run_dir)
    (variant,) = check._variants(check.CheckConfig(run_dir=run_dir), model)
    assert check._litert_cost(variant) > 1
    assert check._slices(1000, 8)[0] == (0, 125) and check._slices(1000, 8)[-1] == (875, 1000)
    submitted = []
    real_submit = workers.LiteRTWorker.submit
    monkeypatch.setattr(workers.LiteRTWorker, "submit",
                        lambda self, path, a=0, b=None: submitted.append((a, b)) or real_submit(self, path, a, b))
    from edgekit.runtime import backends as bk

    opened = {variant.id: bk.LiteRTBackend(variant.path)}
    x = model.io.pixels.apply(model.dataset().x_test)
    _, two = check._predict_all(lambda: None, [variant], opened, x, jobs=2)
    _, one = check._predict_all(lambda: None, [variant], opened, x, jobs=1)
    # the worker is handed slices from the front, one at a time; this process took the
    # rest from the back (here at once: it has nothing else to do)
    assert 1 <= len(submitted) < check.SLOW_PARTS
    assert submitted == check._slices(len(x), check.SLOW_PARTS)[:len(submitted)]
    np.testing.assert_allclose(two[variant.id], one[variant.id], atol=1e-6)
