"""Helpers shared by edgekit's tests: ``from support import ...`` (or ``from support.trees import ...``).

How the tests import
--------------------
pytest runs with ``--import-mode=importlib`` and ``pythonpath = ["tests"]``
(both in pyproject.toml's ``[tool.pytest.ini_options]``):

* ``importlib`` mode imports every test file and conftest.py under a name
  unique to its path and puts no test folder on ``sys.path``. Two test files
  may share a basename (the collision that broke collection twice is gone),
  and no test can import another test module, by ``tests.x.y`` or by bare
  name: it fails at once instead of working by accident of collection order.
* ``pythonpath = ["tests"]`` puts only ``tests/`` on ``sys.path``, so this
  package is importable as ``support`` from any test, conftest or child
  process started with ``PYTHONPATH=<repo>/tests`` (see ``TESTS_DIR``), with
  nothing installed and no ``sys.path`` edits in test files.

What lives here is plain functions and data, never fixtures: fixtures stay in
the conftest.py of the folder that uses them and are implemented with these.

* ``support.cli``: the exit-2 runner (``exit_2``, ``run_main``, ``error_line``)
* ``support.trees``: ``snapshot``/``diff``/``assert_unchanged`` of a directory tree,
  run copies, JSON edits, ``rehash_variant``/``rehash_keras``, ``as_nobody``
* ``support.runs``: tiny runs (``train_tiny_run``, ``copy_model``) and hand-made
  variants (``write_tflite_variant``)
* ``support.models``: tiny Keras models built from code
* ``support.datasets``: tiny IDX and image-folder datasets
* ``support.fuzz``: byte mutations for the fuzz tests
* ``support.mil``: coremltools' own decoding of an ML Program's weights
* ``support.pipeline``: the flags of the tiny ``edgekit run`` the apps tests share
* ``support.report_samples``: hand-built check results for the report tests
"""
from __future__ import annotations

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent     # what pythonpath puts on sys.path
REPO = TESTS_DIR.parent
