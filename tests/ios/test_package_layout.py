"""What the issue asks of apps/ios that needs no toolchain, checked on the
source text: the EdgekitKit package depends on no outside package and its
code imports Foundation only (it builds on Linux); every Core ML / Vision /
Core Video / UIKit import of the app sits inside an ``#if canImport(...)``
block; the Swift build cache and the fixtures are git-ignored."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IOS = ROOT / "apps" / "ios"
APPLE_ONLY = {"CoreML", "Vision", "CoreVideo", "CoreGraphics", "ImageIO", "UIKit", "AppKit", "CoreImage", "PhotosUI"}
IMPORT = re.compile(r"^\s*(?:@testable\s+)?import\s+(\w+)", re.M)


def test_the_package_depends_on_no_outside_package():
    text = (IOS / "Package.swift").read_text()
    tools = re.match(r"// swift-tools-version:\s*(\d+)\.(\d+)", text)
    assert tools and tuple(map(int, tools.groups())) >= (5, 9), text.splitlines()[0]
    assert ".package(" not in text, "Package.swift names an outside package"
    assert re.search(r"^\s*dependencies:\s*\[", text, re.M) is None, "the package itself has dependencies"


@pytest.mark.parametrize("folder, allowed", [("Sources", {"Foundation"}),
                                             ("Tests", {"Foundation", "XCTest", "EdgekitKit"})])
def test_package_code_imports_foundation_only(folder, allowed):
    files = sorted((IOS / folder).rglob("*.swift"))
    assert files, f"no Swift files under apps/ios/{folder}"
    for f in files:
        used = set(IMPORT.findall(f.read_text()))
        assert used <= allowed, f"{f.relative_to(ROOT)} imports {sorted(used - allowed)}"


def _guarded_imports(text: str) -> list[tuple[str, bool]]:
    """(module, inside an #if canImport(...) block) for every import line."""
    out, stack = [], []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#if"):
            stack.append("canImport(" in s)
        elif s.startswith("#endif"):
            stack.pop()
        m = IMPORT.match(line)
        if m:
            out.append((m.group(1), any(stack)))
    return out


@pytest.mark.parametrize("folder", ["EdgekitDigits", "EdgekitDigitsTests"])
def test_apple_only_imports_of_the_app_are_behind_can_import(folder):
    files = sorted((IOS / folder).glob("*.swift"))
    assert files
    for f in files:
        for module, guarded in _guarded_imports(f.read_text()):
            if module in APPLE_ONLY:
                assert guarded, f"{f.relative_to(ROOT)}: `import {module}` outside #if canImport(...)"


def test_the_guard_check_can_fail():
    assert _guarded_imports("import CoreML\n") == [("CoreML", False)]
    assert _guarded_imports("#if canImport(CoreML)\nimport CoreML\n#endif\nimport Vision\n") == [
        ("CoreML", True), ("Vision", False)]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="not a git checkout: .gitignore cannot be asked")
@pytest.mark.parametrize("path", ["apps/ios/.build/zz-no-such-dir/x.o", "apps/ios/Fixtures/kit/golden.json",
                                  "apps/ios/.swiftpm/x"])
def test_swift_build_output_and_fixtures_are_git_ignored(path):
    proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
    assert proc.returncode == 0, f"{path} is not ignored by .gitignore"
