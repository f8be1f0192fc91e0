"""A real tiny pipeline run shared by the apps tests (pipeline, golden kit on
real outputs, iOS contract): `edgekit run` on 1,500 MNIST training images, one
epoch, 400 test images, four variants that cover every backend and kind
(fp32 and int8 TFLite on LiteRT, fp32 and 4-bit palettized Core ML on
mil-reference)."""
from __future__ import annotations

import pytest

from support.pipeline import PIPELINE_ARGS


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory):
    """(run_dir, exit_code, stdout) of a first `edgekit run` on a fresh directory."""
    import contextlib
    import io

    from edgekit.apps import cli

    run_dir = tmp_path_factory.mktemp("pipeline") / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(["run", "--run", str(run_dir), *PIPELINE_ARGS])
    return run_dir, rc, out.getvalue()
