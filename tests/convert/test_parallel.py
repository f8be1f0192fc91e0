"""convert's fine-tunes in a second process (``--jobs 2``, the default on two
cores): the same files as in one process, and the worker really used."""
import concurrent.futures as cf
import json

from support.runs import copy_model

from edgekit.convert import stage
from edgekit.convert.config import ConvertConfig

IDS = ("tflite-fp32", "tflite-pruned-int8")


def _record(run_dir, vid):
    data = json.loads((run_dir / "variants" / vid / "variant.json").read_text())
    return data["file"]["sha256"], data["finetune"]


def test_fine_tunes_in_a_second_process_make_the_same_files(tiny_run, tmp_path, monkeypatch):
    sent = []
    real = cf.ProcessPoolExecutor.submit

    def spy(self, fn, *args, **kwargs):
        sent.append((fn.__name__, list(args[1])))
        return real(self, fn, *args, **kwargs)

    monkeypatch.setattr(cf.ProcessPoolExecutor, "submit", spy)
    one = copy_model(tiny_run, tmp_path / "one")
    two = copy_model(tiny_run, tmp_path / "two")
    r1 = stage.run(ConvertConfig(run_dir=one, variants=IDS, finetune_limit=256, jobs=1))
    assert sent == []
    r2 = stage.run(ConvertConfig(run_dir=two, variants=IDS, finetune_limit=256, jobs=2))
    assert sent == [("_attempt_in_worker", ["tflite-pruned-int8"])]
    assert r1.ok and r2.ok and [v.id for v in r2.variants] == list(IDS)
    for vid in IDS:
        (sha1, ft1), (sha2, ft2) = _record(one, vid), _record(two, vid)
        assert sha1 == sha2, vid   # deterministic fine-tune: byte for byte the same file
        if ft1 is not None:
            ft1.pop("seconds"), ft2.pop("seconds")
            assert ft1 == ft2


def test_a_worker_that_cannot_start_hands_its_variants_back(tiny_run, tmp_path, monkeypatch):
    """Whatever the worker did not make, the main process makes (and would
    raise its own error for): here the task cannot even reach the worker
    (a lambda does not pickle)."""
    monkeypatch.setattr(stage, "_attempt_in_worker", lambda config, ids: {})
    run_dir = copy_model(tiny_run, tmp_path / "run")
    result = stage.run(ConvertConfig(run_dir=run_dir, variants=IDS, finetune_limit=256, jobs=2))
    assert result.ok and sorted(v.id for v in result.variants) == sorted(IDS)
    assert _record(run_dir, "tflite-pruned-int8")[1]["method"] == "prune"


def test_the_main_process_takes_the_fine_tunes_the_worker_has_not_started(tiny_run, tmp_path, monkeypatch):
    """The worker is handed one fine-tune at a time; once its own conversions
    are done, the main process takes the next one nobody has started, so
    the last fine-tunes do not queue behind the worker's first."""
    sent = []
    real = cf.ProcessPoolExecutor.submit

    def spy(self, fn, *args, **kwargs):
        sent.append(list(args[1]))
        return real(self, fn, *args, **kwargs)

    monkeypatch.setattr(cf.ProcessPoolExecutor, "submit", spy)
    ids = ("tflite-fp32", "tflite-qat-int8", "tflite-pruned-int8", "tflite-clustered-int8")
    run_dir = copy_model(tiny_run, tmp_path / "run")
    result = stage.run(ConvertConfig(run_dir=run_dir, variants=ids, finetune_limit=256, jobs=2))
    assert result.ok and sorted(v.id for v in result.variants) == sorted(ids)
    # one recipe per task, the first fine-tune to the worker at once; the worker is
    # still starting (a fresh interpreter importing TensorFlow) when tflite-fp32 is
    # done here, so the main process makes at least one of the other two
    assert all(len(task) == 1 for task in sent) and sent[0] == ["tflite-qat-int8"]
    assert 1 <= len(sent) <= 2
    for vid in ids[1:]:
        assert _record(run_dir, vid)[1]["method"] in ("qat", "prune", "cluster")
