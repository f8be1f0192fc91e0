"""`edgekit doctor`: the real environment passes; each simulated breakage fails with a fix."""
from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from edgekit.apps import cli, doctor


def _status(result, name):
    return {c.name: c for c in result.checks}[name]


def test_doctor_cli_usable_in_this_environment(capsys):
    rc = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "[  ok] tf.keras: resolves to tf_keras" in out
    # coremltools 9.0 was tested up to TF 2.12: a warning that says what it means, not a failure
    assert "[warn] TensorFlow vs coremltools" in out and "2.12.0" in out
    assert "mil-reference" in out
    for key in ("tensorflow", "tf-keras", "coremltools", "ai-edge-litert", "cpu"):
        assert f"  {key} " in out
    assert out.rstrip().splitlines()[-1].startswith("usable")


def test_missing_sklearn_is_a_failure_with_a_fix(monkeypatch, capsys):
    real = doctor._import

    def fake(name):
        if name.startswith("sklearn"):
            raise ModuleNotFoundError("No module named 'sklearn'")
        return real(name)

    monkeypatch.setattr(doctor, "_import", fake)
    rc = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "[FAIL] scikit-learn" in out and "fix: pip install scikit-learn" in out
    assert "NOT USABLE: 1 check(s) failed (scikit-learn)" in out


def test_keras3_behind_tf_keras_is_a_failure(monkeypatch):
    real = doctor._import
    fake_tf = types.SimpleNamespace(keras=types.SimpleNamespace(__name__="keras._tf_keras.keras"))
    monkeypatch.setattr(doctor, "_import", lambda n: fake_tf if n == "tensorflow" else real(n))
    checks = {c.name: c for c in doctor.check_keras()}
    assert checks["tf.keras"].status == doctor.FAIL
    assert "TF_USE_LEGACY_KERAS" in checks["tf.keras"].fix


def test_legacy_keras_variable_reset_is_a_failure(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")
    checks = {c.name: c for c in doctor.check_keras()}
    assert checks["TF_USE_LEGACY_KERAS"].status == doctor.FAIL


@pytest.mark.parametrize("tf_version, status", [("2.0.0", doctor.FAIL), ("2.11.0", doctor.OK), ("2.21.0", doctor.WARN)])
def test_tensorflow_against_coremltools_range(monkeypatch, tf_version, status):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda d: tf_version if d == "tensorflow" else real(d))
    (check,) = doctor.check_tensorflow_vs_coremltools()
    assert check.status == status, check


def test_missing_chromium_is_only_a_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("EDGEKIT_CHROMIUM", raising=False)
    (check,) = doctor.check_chromium()
    assert check.status == doctor.WARN and "apt-get install -y chromium" in check.fix


def test_bad_chromium_flag_is_exit_2(capsys, tmp_path):
    assert cli.main(["doctor", "--chromium", str(tmp_path / "nope")]) == 2
    assert "--chromium" in capsys.readouterr().err


def test_broken_sklearn_on_the_path_fails_the_real_command(tmp_path):
    """End to end: a shadowing `sklearn` package that cannot import makes the command exit 1."""
    fake = tmp_path / "sklearn"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('simulated broken scikit-learn install')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), EDGEKIT_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-m", "edgekit", "doctor"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "simulated broken scikit-learn install" in proc.stdout
