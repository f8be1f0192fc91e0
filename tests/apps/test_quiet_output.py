"""What a person sees from `edgekit run` is edgekit's own lines only (issue 14).

The run is the shared tiny pipeline in a fresh process (tests/apps/conftest.py),
so TensorFlow's and absl's start-up lines (``I0000 … port.cc``, ``E0000 …
cuInit``), tf.data's ``NodeDef mentions attribute`` line, coremltools' version
warnings and ``Failed to load _MLModelProxy``, and LiteRT's "Created
TensorFlow Lite XNNPACK delegate" would all reach its stdout or stderr if
edgekit did not hold them back. Every line must match one of the formats
below, which are the lines edgekit's stages and ``edgekit run`` print; a new
kind of line fails here until it is added on purpose.
"""
from __future__ import annotations

import re

STAGE = r"(train|import|convert|check|report|golden)"
NUM = r"[\d,]+(\.\d+)?"
OWN_FORMATS = [
    # edgekit run
    rf"\[{STAGE}\] (running \(.+\)|reused \(.+\)|done in {NUM} s|finished with failures in {NUM} s)",
    r"stages: ran .+; reused .+",
    r"report: \S.*report\.html",
    r"(iOS / Core ML|Android / TFLite): .+",
    r"golden kit \(on-device parity test\): \S.*",
    # train
    rf"model: +\S.* \({NUM} parameters, \d+ epochs?, {NUM} s\)",
    r"manifest: +\S.*manifest\.json",
    rf"test accuracy: {NUM} +\(val {NUM}\)",
    # convert's table and summary
    r"variant +size +zipped +vs fp32 +seconds +status",
    rf"\d+ of \d+ variants converted in {NUM} s -> \S.*",
    # check's table, its reasons and summary
    r"variant +backend +size KB .+ verdict",
    r"original \(keras\) +keras .+",
    r"(tflite|coreml)-[\w-]+ +.+",
    r"    [-?] .+",
    rf"\d+ variants on {NUM} test images in {NUM} s \(.+\); wrote \S.*",
    r"edgekit check: \d+ of \d+ variants failed their thresholds: .+",
    r"inconclusive: .+ \(about .+ test images would decide them\)",
    # the report's status line per diagnosed variant ("Where the error comes from")
    r"\[report\] diagnose [a-z0-9-]+ \(.+\): (first jump .+|not diagnosed: .+)",
    # the recommendation's passed-over variants under each platform line
    r"  (smaller )?passed over: .+",
    r"",
]
_OWN = re.compile("|".join(f"(?:{f})" for f in OWN_FORMATS))


def _foreign(text: str) -> list[str]:
    return [line for line in text.splitlines() if not _OWN.fullmatch(line.rstrip())]


def test_every_line_of_edgekit_run_is_edgekit_s_own(pipeline_process):
    _, proc = pipeline_process
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        foreign = _foreign(text)
        assert not foreign, f"lines on {name} that are not edgekit's:\n" + "\n".join(foreign)
    # the check of the formats themselves: library lines are not mistaken for edgekit's
    for chatter in ("E0000 00:00:1796284143.312204   14364 node_def_util.cc:682] NodeDef mentions attribute",
                    "I0000 00:00:1700000000.000000    1 port.cc:153] oneDNN custom operations are on.",
                    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
                    "scikit-learn version 1.9.1 is not supported. Minimum required version: 0.17.",
                    "Failed to load _MLModelProxy: No module named 'coremltools.libcoremlpython'",
                    "Traceback (most recent call last):",
                    "WARNING:absl:Found untraced functions such as _jit_compiled_convolution_op"):
        assert _foreign(chatter) == [chatter]
