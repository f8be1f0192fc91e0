"""Issue 12's done-criteria on the default full-MNIST run: both recommended
variants have a non-significant accuracy change and a 95% agreement lower
bound >= 99.5%, and why_not explains every smaller variant (bench/README.md
has the measured numbers)."""
from __future__ import annotations

import json

import pytest

from edgekit.apps.cli import main
from edgekit.runtime.report import DEFAULT_TARGET_AGREEMENT


def assert_recommendation_keeps_the_answers(report_json: dict) -> None:
    rows = {r["id"]: r for r in report_json["variants"]}
    for platform, rec in report_json["recommendation"].items():
        assert rec["id"] is not None, (platform, rec["closest"])
        chosen = rows[rec["id"]]
        assert chosen["verdict"] == "pass", platform
        assert chosen["mcnemar_p_holm"] >= 0.05 or chosen["discordant_b"] <= chosen["discordant_c"], platform
        assert chosen["agreement_ci"][0] >= DEFAULT_TARGET_AGREEMENT, (platform, chosen["agreement_ci"])
        smaller = {r["id"] for r in rows.values()
                   if r["platform"] == platform and r["size_bytes"] < chosen["size_bytes"]}
        assert {w["id"] for w in rec["why_not"]} == smaller, platform
        assert all(w["reasons"] for w in rec["why_not"]), platform


@pytest.mark.slow
def test_default_run_recommends_variants_that_keep_the_answers(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", "--run", str(run_dir)]) in (0, 1)      # 1: some variant failed its check
    assert_recommendation_keeps_the_answers(json.loads((run_dir / "report" / "report.json").read_text()))
