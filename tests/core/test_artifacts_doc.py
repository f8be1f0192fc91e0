"""docs/ARTIFACTS.md against edgekit.rundir: every schema id the code defines is
documented, every id the doc calls current is one the code defines (old ids only
under "## Changes"), and every field of the typed sections is documented."""
from __future__ import annotations

import re
from pathlib import Path

from edgekit import rundir
from edgekit.rundir import IndexEntry, Kind, ModelIO, VariantStatus

DOC = Path(__file__).resolve().parents[2] / "docs" / "ARTIFACTS.md"
SCHEMA_ID = re.compile(r"edgekit\.[a-z][a-z-]*/\d+")


def _parts() -> tuple[str, str]:
    text = DOC.read_text(encoding="utf-8")
    current, sep, changes = text.partition("\n## Changes")
    assert sep, "docs/ARTIFACTS.md has no '## Changes' section"
    return current, changes


def _keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def test_every_schema_id_is_documented_and_every_current_id_exists():
    current, _ = _parts()
    defined = set(rundir.iter_schema_ids())
    assert set(rundir.SCHEMAS.values()) <= defined
    missing = sorted(s for s in defined if s not in current)
    assert not missing, f"schema ids not in docs/ARTIFACTS.md: {missing}"
    stale = sorted(set(SCHEMA_ID.findall(current)) - defined)
    assert not stale, f"docs/ARTIFACTS.md calls these current but rundir does not define them: {stale}"


def test_changes_section_names_each_replaced_schema():
    _, changes = _parts()
    for sid in rundir.iter_schema_ids():
        name, version = sid.rsplit("/", 1)
        if int(version) > 1:
            assert f"{name}/{int(version) - 1}" in changes and sid in changes, sid


def test_every_typed_field_is_documented():
    current, _ = _parts()
    io = ModelIO(height=28, width=28, channels=1, class_names=("a", "b"))
    entry = IndexEntry("tflite-fp32", "tflite", Kind.FLOAT32, None, VariantStatus.OK)
    fields = set(_keys(io.to_json())) | set(entry.to_json())
    undocumented = sorted(f for f in fields if f'"{f}"' not in current and f"`{f}`" not in current)
    assert not undocumented, f"fields not in docs/ARTIFACTS.md: {undocumented}"
