"""The recommendation policy on hand-built rows (support.report_samples.policy_rows:
discordant counts with the check's own statistics), its flags and their
validation, and the report's tables and charts that show it."""
from __future__ import annotations

import itertools
import math
import re

import pytest

from edgekit.errors import ConfigError
from edgekit.runtime import report
from edgekit.runtime.report import charts, policy
from edgekit.runtime.report.policy import Policy, decide

from support.report_samples import make_report_data, policy_rows

# The default MNIST run as issue 12 measured it (10,000 images; b: original
# right and variant wrong, c: the opposite; sizes in KB).
MEASURED = {
    "coreml-fp32": ("coreml", 980, 0, 0),
    "coreml-fp16": ("coreml", 490, 1, 1),
    "coreml-w8": ("coreml", 276, 3, 3),
    "coreml-pal6": ("coreml", 210, 4, 3),
    "coreml-pal4": ("coreml", 156, 5, 6, "pass"),            # +0.01 points, 99.89%
    "coreml-pruned": ("coreml", 90, 46, 8, "fail"),          # -0.38 points, p ~ 5e-8
    "coreml-pal2": ("coreml", 73, 38, 17, "inconclusive"),   # -0.21 points, 99.45%, p = 0.007
    "tflite-fp32": ("tflite", 972, 0, 0),
    "tflite-int8": ("tflite", 252, 4, 4),                    # 99.92%
    "tflite-qat-int8": ("tflite", 249, 10, 7),               # 99.83%, -0.03 points
    "tflite-pruned-int8": ("tflite", 245, 83, 20, "fail"),   # -0.63 points, 98.97%
}


def _by_id(rows):
    return {r["id"]: r for r in rows}


def test_measured_run_picks_what_the_rule_says_and_explains_every_smaller_variant():
    rows = policy_rows(MEASURED)
    d = decide(rows)
    assert d["ios"].chosen["id"] == "coreml-pal4"
    assert [w["id"] for w in d["ios"].why_not] == ["coreml-pal2", "coreml-pruned"]
    why = {w["id"]: w for w in d["ios"].why_not}
    assert why["coreml-pal2"]["tags"] == ["check inconclusive", "agreement"]
    assert why["coreml-pruned"]["tags"] == ["check failed", "significant drop", "agreement"]
    # qat-int8 is smaller than int8 and its lower bound (99.73%) clears 99.5%: the rule takes it
    assert d["android"].chosen["id"] == "tflite-qat-int8"
    assert [w["id"] for w in d["android"].why_not] == ["tflite-pruned-int8"]
    for dec in d.values():
        lo = dec.chosen["agreement_ci"][0]
        assert lo >= 0.995 and dec.chosen["mcnemar_p_holm"] >= 0.05
        # every variant smaller than the pick is explained, none larger is
        smaller = {r["id"] for r in rows if r["format"] == dec.chosen["format"]
                   and r["size_bytes"] < dec.chosen["size_bytes"]}
        assert {w["id"] for w in dec.why_not} == smaller
        assert all(w["reasons"] and len(w["reasons"]) == len(w["tags"]) for w in dec.why_not)


def test_a_significant_drop_is_passed_over_even_with_a_passing_check_and_a_high_lower_bound():
    # 15 images lost, none gained, of 10,000: agreement 99.85% (lower bound 99.75%),
    # but a drop that real (McNemar p = 6e-5, Holm-adjusted over 3: 2e-4) is not "the same answers"
    rows = policy_rows({"a-small": ("tflite", 100, 15, 0), "b-mid": ("tflite", 200, 2, 2),
                        "c-big": ("tflite", 900, 0, 0)})
    d = decide(rows)["android"]
    small = _by_id(rows)["a-small"]
    assert small["agreement_ci"][0] > 0.995 and small["verdict"] == "pass"
    assert d.chosen["id"] == "b-mid"
    (w,) = d.why_not
    assert w["id"] == "a-small" and w["tags"] == ["significant drop"]
    assert "Holm-adjusted over 3 variants" in w["reasons"][0]


def test_the_lower_bound_not_the_point_estimate_meets_the_target():
    # 99.6% measured on 10,000 (40 flips): lower bound 99.46% < 99.5%; 30 flips: 99.57%
    rows = policy_rows({"x": ("coreml", 100, 20, 20), "y": ("coreml", 120, 15, 15)})
    d = decide(rows)["ios"]
    assert d.chosen["id"] == "y"
    assert d.why_not[0]["tags"] == ["agreement"] and "lower bound of 99.46%" in d.why_not[0]["reasons"][0]
    assert decide(rows, Policy(target_agreement=0.994))["ios"].chosen["id"] == "x"


def test_inconclusive_and_failed_checks_are_never_recommended():
    rows = policy_rows({"x": ("tflite", 100, 0, 0, "inconclusive"), "y": ("tflite", 110, 0, 0, "fail"),
                        "z": ("tflite", 300, 1, 0)})
    d = decide(rows)["android"]
    assert d.chosen["id"] == "z"
    assert [w["tags"] for w in d.why_not] == [["check inconclusive"], ["check failed"]]
    assert "about 20,000 test images would decide it" in d.why_not[0]["reasons"][0]


def test_max_size_takes_the_most_faithful_variant_within_it():
    rows = policy_rows({"tiny": ("tflite", 100, 6, 6), "small": ("tflite", 200, 1, 1),
                        "mid": ("tflite", 280, 0, 0), "big": ("tflite", 900, 0, 0)})
    assert decide(rows)["android"].chosen["id"] == "tiny"
    d = decide(rows, Policy(max_size_kb=250))["android"]
    assert d.chosen["id"] == "small"
    (w,) = d.why_not
    assert w["id"] == "tiny" and w["tags"] == ["less faithful"] and "small agrees more" in w["reasons"][0]
    assert "at most 250 KB" in d.rule
    d = decide(rows, Policy(max_size_kb=50))["android"]
    # over the cap only: the closest is the one nearest to it
    assert d.chosen is None and d.closest["id"] == "tiny" and d.closest["tags"] == ["size cap"]
    assert all("size cap" in w["tags"] for w in d.why_not)


def test_max_accuracy_drop_caps_the_change_interval():
    # 6 lost, 2 gained of 10,000: -0.04 points, interval reaching about -0.10
    rows = policy_rows({"a": ("coreml", 100, 6, 2), "b": ("coreml", 150, 1, 1)})
    lo = _by_id(rows)["a"]["accuracy_change_ci"][0]
    assert -0.12 < lo < -0.07
    assert decide(rows, Policy(max_accuracy_drop=0.2))["ios"].chosen["id"] == "a"
    d = decide(rows, Policy(max_accuracy_drop=0.05))["ios"]
    assert d.chosen["id"] == "b"
    assert d.why_not[0]["tags"] == ["drop cap"] and "0.05-point cap" in d.why_not[0]["reasons"][0]


def test_none_qualifies_names_the_closest_and_says_so():
    rows = policy_rows({"p": ("coreml", 73, 38, 17, "inconclusive"), "q": ("coreml", 90, 46, 8, "fail"),
                        "r": ("coreml", 200, 30, 30)})
    d = decide(rows)
    assert d["ios"].chosen is None
    assert d["ios"].closest["id"] == "r" and d["ios"].closest["tags"] == ["agreement"]
    assert len(d["ios"].why_not) == 3
    lines = policy.recommendation_lines(rows, d)
    assert lines[0].startswith("iOS / Core ML: NONE of the 3 coreml variants qualifies")
    assert "the closest is r, which misses: its agreement 99.40%" in lines[0]
    # p's drop (McNemar p 0.007) is significant after Holm over the 3 variants (0.02)
    assert lines[1].startswith("  passed over: p (check inconclusive, significant drop, agreement), q (")
    assert lines[2] == "Android / TFLite: no tflite variant was checked in this run."


@pytest.mark.parametrize("kwargs, flag", [
    ({"target_agreement": 0.0}, "--target-agreement"), ({"target_agreement": 1.5}, "--target-agreement"),
    ({"target_agreement": math.nan}, "--target-agreement"), ({"target_agreement": 99.5}, "--target-agreement"),
    ({"max_size_kb": -5.0}, "--max-size"), ({"max_size_kb": 0}, "--max-size"), ({"max_size_kb": math.inf}, "--max-size"),
    ({"max_accuracy_drop": -1.0}, "--max-accuracy-drop"), ({"max_accuracy_drop": math.nan}, "--max-accuracy-drop"),
])
def test_bad_policy_values_are_config_errors(kwargs, flag, tmp_path):
    with pytest.raises(ConfigError) as e:
        report.ReportConfig(run_dir=tmp_path, **kwargs)
    assert e.value.where == flag
    assert report.ReportConfig(run_dir=tmp_path, target_agreement=1.0, max_size_kb=0.5,
                               max_accuracy_drop=0.0).policy == Policy(1.0, 0.5, 0.0)


def test_flags_reach_the_report_config_through_report_and_run():
    from edgekit.apps import cli, pipeline
    from edgekit.runtime import report_cli

    parser = cli.build_parser()
    args = parser.parse_args(["report", "--run", "r", "--target-agreement", "0.998", "--max-size", "200",
                              "--max-accuracy-drop", "0.1"])
    cfg = report_cli.config_from_args(args)
    assert (cfg.target_agreement, cfg.max_size_kb, cfg.max_accuracy_drop) == (0.998, 200.0, 0.1)
    args = parser.parse_args(["run", "--run", "r", "--target-agreement", "0.998", "--max-size", "200"])
    configs = pipeline.stage_configs(args)
    assert configs["report"].policy == Policy(0.998, 200.0, None)
    args = parser.parse_args(["run", "--run", "r", "--max-accuracy-drop", "0.2"])
    configs = pipeline.stage_configs(args)
    # one flag, one meaning: the check's bar and the recommendation's cap
    assert configs["report"].max_accuracy_drop == 0.2 and configs["check"].max_accuracy_drop == 0.2
    assert configs["report"].target_agreement == policy.DEFAULT_TARGET_AGREEMENT


# ------------------------------------------------------------------ what the report shows

def _md_cells(line: str) -> list[str]:
    """A GFM table row's cells: split on pipes not escaped by a backslash."""
    assert line.startswith("|") and line.endswith("|"), line
    return re.split(r"(?<!\\)\|", line[1:-1])


@pytest.mark.parametrize("hostile", [False, True])
def test_every_markdown_table_row_has_the_headers_column_count(hostile):
    from support.report_samples import HOSTILE_NAMES

    data = make_report_data(class_names=HOSTILE_NAMES) if hostile else make_report_data()
    data.results["variants"]["coreml-pal2"]["reasons"] = ["a | b || c \\| d"]   # pipes in a cell
    md = report.build(data)["markdown"]
    table = [line for line in md.splitlines() if line.startswith("|")]
    header = _md_cells(table[0])
    assert len(header) == len(report.TABLE_COLUMNS)
    assert [c.strip().replace("\\", "") for c in header] == report.TABLE_COLUMNS    # incl. "max |Δp|"
    assert set(table[1]) == {"|", "-"}
    assert len(table) == 2 + len(data.results["variants"])
    for line in table[1:]:
        assert len(_md_cells(line)) == len(header), line


def test_table_shows_bits_per_weight_and_share_compressed():
    data = make_report_data()
    v = data.variants["coreml-pal4"]
    v.manifest["weights"] = {"bits_per_weight": 4.012, "compressed_share": 0.9992, "elements": 242062, "rows": []}
    rows = {r["id"]: r for r in report.rows_from(data.results, data.variants)}
    cells = dict(zip(report.TABLE_COLUMNS, report.table_cells(rows["coreml-pal4"])))
    assert cells["bits / weight"] == "4.01" and cells["compressed"] == "99.9%"
    assert dict(zip(report.TABLE_COLUMNS, report.table_cells(rows["coreml-w8"])))["bits / weight"] == "—"


def test_agreement_chart_draws_each_interval_as_an_error_bar():
    data = make_report_data()
    rows = report.rows_from(data.results, data.variants)
    fig = charts.agreement_figure(rows, 0.995)
    ax = fig.axes[0]
    (bars,) = [c for c in ax.containers if hasattr(c, "errorbar")]
    segments = bars.errorbar.lines[2][0].get_segments()
    rs = [r for r in rows if r["agreement"] is not None]
    assert len(segments) == len(rs)
    for seg, r in zip(segments, rs):
        assert seg[0][0] == pytest.approx(100 * r["agreement_ci"][0]) and seg[1][0] == pytest.approx(100 * r["agreement_ci"][1])
    assert any(line.get_xdata()[0] == pytest.approx(99.5) for line in ax.lines)   # the target


def _crowded_rows():
    """Sixteen variants, ten of them within a few KB and a tenth of a point of
    each other around 245 KB (the pile-up the issue measured)."""
    rows = []
    specs = [("tflite-fp32", 972, 99.19), ("tflite-fp16", 488, 99.19), ("coreml-fp32", 980, 99.19),
             ("coreml-fp16", 490, 99.19), ("coreml-pal4", 156, 99.20), ("coreml-pal2", 73, 98.98)]
    near = ["tflite-int8", "tflite-dynamic-int8", "tflite-qat-int8", "tflite-pruned-int8", "tflite-clustered-int8",
            "tflite-int16x8", "tflite-uint8", "coreml-w8", "coreml-pal6", "coreml-pruned"]
    specs += [(vid, 240 + 1.3 * i, 99.19 - 0.013 * ((i * 7) % 10)) for i, vid in enumerate(near)]
    for vid, kb, acc in specs:
        rows.append({"id": vid, "size_bytes": kb * 1024, "accuracy": acc / 100,
                     "platform": "ios" if vid.startswith("coreml") else "android", "passed": not vid.endswith("pal2")})
    return rows


def _stacked_rows():
    """Sixteen long ids on one spot (no room beside the markers at all) and one far away."""
    rows = [{"id": f"my-custom-variant-{i}", "size_bytes": (245 + (i % 3) * 0.5) * 1024,
             "accuracy": 0.9919 - 0.00001 * i, "platform": "ios" if i % 2 else "android", "passed": True}
            for i in range(16)]
    return rows + [{"id": "far", "size_bytes": 900 * 1024, "accuracy": 0.99, "platform": "ios", "passed": True}]


@pytest.mark.parametrize("make", [_crowded_rows, _stacked_rows])
def test_size_accuracy_labels_every_point_and_no_two_labels_overlap(make):
    from matplotlib.text import Text

    rows = make()
    fig = charts.size_accuracy_figure(rows, [r["id"] for r in rows[:3]], 0.9919)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if (t.get_gid() or "").startswith(charts.LABEL_GID)]
    assert sorted(t.get_text() for t in labels) == sorted(r["id"] for r in rows)
    # the text's own box (an Annotation's get_window_extent also covers its leader line)
    boxes = {t.get_text(): Text.get_window_extent(t, renderer) for t in labels}
    for (a, ba), (b, bb) in itertools.combinations(boxes.items(), 2):
        assert not ba.overlaps(bb), f"labels {a!r} and {b!r} overlap"
    for name, box in boxes.items():
        assert box.height >= 7 * fig.dpi / 72 * 0.9, name   # 7-point text: legible, not shrunk away
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, name
    assert charts.size_accuracy(rows, [], None).startswith(report.PNG_MAGIC)


def test_a_tuned_recipe_is_summarised_by_its_layer_plan():
    """edgekit tune's variants are float32 (TFLite) or uncompressed (Core ML)
    conversions with per-layer weights: the report's recipe words say the plan,
    not the base's "no optimization"."""
    from edgekit.runtime.report.policy import recipe_summary

    tflite = {"tflite": {"optimizations": [], "supported_types": [], "representative": False,
                         "inference_input_type": "float32",
                         "layers": {"conv1": {"weights": "int8", "symmetric": False}, "features": {"weights": "int4"}}}}
    assert recipe_summary(tflite) == "per-layer weights conv1 int8, features int4, I/O float32"
    coreml = {"coreml": {"compute_precision": "float16", "compression": None,
                         "layers": {"conv1": {"method": "palettize", "nbits": 6}, "logits": None}}}
    assert recipe_summary(coreml) == "float16, per layer conv1 palettize 6, logits float16"
    plain = {"tflite": {"optimizations": ["DEFAULT"], "representative": True, "inference_input_type": "int8"}}
    assert recipe_summary(plain) == "default, calibrated, I/O int8"
