"""The Swift package in apps/ios, built and tested with the real toolchain:
tests/ios/swift_fixtures.py writes real golden kits (grayscale and colour,
from small checked runs), the conformance cases, the preprocessing and
resize cases and the models' metadata into a temporary directory, then
``swift build`` and ``swift test`` run in apps/ios with
EDGEKIT_IOS_FIXTURES pointing there. The build cache is apps/ios/.build
(ignored by git), so a second run only relinks.

Without ``swift`` on PATH the test is skipped with a reason saying the Swift
tests were not run (``-ra`` prints it); with EDGEKIT_REQUIRE_SWIFT=1 (what
.ci/run sets) a missing toolchain fails instead.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IOS = ROOT / "apps" / "ios"
FIXTURES = Path(__file__).resolve().parent / "swift_fixtures.py"
SWIFT_TIMEOUT = 15 * 60


def _swift() -> str:
    swift = shutil.which("swift")
    if swift is None:
        reason = "swift is not on PATH: the Swift tests in apps/ios were NOT run (install Swift 6.3, swift.org)"
        if os.environ.get("EDGEKIT_REQUIRE_SWIFT") == "1":
            pytest.fail(reason + "; EDGEKIT_REQUIRE_SWIFT=1 makes that a failure")
        pytest.skip(reason)
    return swift


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=SWIFT_TIMEOUT)
    assert proc.returncode == 0, f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-6000:]}"
    return proc.stdout


def _fixtures(request, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The kit and cases swift_fixtures.py writes from the session's tiny cnn
    (trained once per session), and the environment that points swift test at them."""
    tiny_run = request.getfixturevalue("tiny_run")
    fixtures = tmp_path / "fixtures"
    env = {**os.environ, "EDGEKIT_PROGRESS": "0"}
    _run([sys.executable, str(FIXTURES), str(fixtures), "--trained", str(tiny_run)], env, ROOT)
    return fixtures, {**env, "EDGEKIT_IOS_FIXTURES": str(fixtures)}


def test_swift_package_builds_and_agrees_with_python(request, tmp_path, capsys):
    swift = _swift()
    fixtures, env = _fixtures(request, tmp_path)
    cases = json.loads((fixtures / "cases.json").read_text())["cases"]

    _run([swift, "build", "--build-tests"], env, IOS)
    out = _run([swift, "test", "--skip-build"], env, IOS)

    executed = re.findall(r"Executed (\d+) tests?, with (\d+) failures?", out)
    assert executed, out[-3000:]
    total, failures = map(int, executed[-1])
    assert failures == 0 and total >= 20, out[-3000:]
    agree = f"conformance: {len(cases)} of {len(cases)} cases agree with edgekit.runtime.golden.verify"
    assert agree in out, out[-3000:]
    photos = len(json.loads((fixtures / "resize.json").read_text())["cases"])
    resized = f"resize: {photos} of {photos} photos resized exactly as edgekit's reader resizes them"
    assert resized in out, out[-3000:]
    # The counts belong in `make test`'s output, not only in a captured log.
    with capsys.disabled():
        print(f"\napps/ios: swift test ran {total} XCTest tests, 0 failures; {agree}; {resized}")


@pytest.mark.parametrize("require, outcome", [(None, "1 skipped"), ("1", "1 failed")])
def test_without_swift_the_suite_says_so(require, outcome, tmp_path):
    """No toolchain on PATH: one skip line saying the Swift tests were not
    run, or (EDGEKIT_REQUIRE_SWIFT=1, as on CI) a failure; never a pass."""
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (Path(d) / "swift").exists())
    env = {k: v for k, v in os.environ.items() if k != "EDGEKIT_REQUIRE_SWIFT"}
    env["PATH"] = path
    if require:
        env["EDGEKIT_REQUIRE_SWIFT"] = require
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           f"{__file__}::test_swift_package_builds_and_agrees_with_python"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    assert outcome in proc.stdout, proc.stdout
    assert "the Swift tests in apps/ios were NOT run" in proc.stdout, proc.stdout
    assert proc.returncode == (1 if require else 0), proc.stdout


@pytest.mark.slow
def test_a_strict_tolerance_comparison_fails_a_conformance_case(request, tmp_path):
    """The issue's mutation, kept as a test: in a copy of the package, the
    Swift rule's ``diff <= tolerance`` made ``diff < tolerance`` must make the
    "exactly at the tolerance" cases disagree with Python (a cold build of the
    copy: ~30 s, hence slow)."""
    swift = _swift()
    fixtures, env = _fixtures(request, tmp_path)
    n = len(json.loads((fixtures / "cases.json").read_text())["cases"])
    copy = tmp_path / "ios"
    shutil.copytree(IOS, copy, ignore=shutil.ignore_patterns(".build", ".swiftpm", "Fixtures"))
    rule = copy / "Sources" / "EdgekitKit" / "ParityRule.swift"
    text = rule.read_text()
    assert text.count("diff <= tolerance") == 1, "the rule's tolerance comparison moved: update this test"
    rule.write_text(text.replace("diff <= tolerance", "diff < tolerance"))
    proc = subprocess.run([swift, "test"], cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=SWIFT_TIMEOUT)
    out = proc.stdout
    assert proc.returncode != 0, out[-3000:]
    failed = re.findall(r'failed - case "(probability difference [^"]+)"', out)
    assert failed and all(f.startswith("probability difference exactly at the tolerance") for f in failed), out[-3000:]
    assert f"conformance: {n - len(failed)} of {n} cases agree" in out, out[-3000:]
