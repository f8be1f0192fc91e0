"""The flags more than one stage takes, declared once as argparse parent parsers.

A stage's CLI module lists the ones it takes in ``PARENTS`` (factories, so
every parser gets its own copy); ``edgekit <stage>`` and ``edgekit run``
build their parsers from them, and a stage module's ``add_arguments`` adds
only the flags that are its own. What each flag's value means is decided by
the stage's config (``config_from_args``), not here.

- ``--run DIR``: the run directory (required, except for ``edgekit run``
  which defaults to ``runs/mnist``).
- ``--overwrite``: replace the stage's existing artifact (train, convert;
  ``edgekit run`` decides it per stage).
- ``--variants all|ID,ID``: which variants (convert, check).
- ``--verbose``: the libraries' own output too (every command; ``EDGEKIT_VERBOSE=1``).
- ``--target-agreement F``, ``--max-size KB``: the recommendation policy (report, run).
- ``--jobs N``: processes for convert's and check's independent work (convert,
  check, run); never an input of their results.
- ``--max-accuracy-drop PP``: a check threshold for every variant (check, run)
  and a cap on what the report recommends (report, run): one flag, one meaning
  (the 95% interval of the accuracy change must stay above -PP).
- ``--diagnose-limit N``: test images per variant for the report's "Where the
  error comes from" section, 0 for none (report, run).
"""
from __future__ import annotations

import argparse

ALL = "all"


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def run_dir(default: str | None = None) -> argparse.ArgumentParser:
    """``--run DIR`` (required unless a ``default`` is given)."""
    p = _parent()
    if default is None:
        p.add_argument("--run", required=True, metavar="DIR", help="the run directory (docs/ARTIFACTS.md)")
    else:
        p.add_argument("--run", default=default, metavar="DIR", help=f"the run directory (default {default})")
    return p


def overwrite() -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--overwrite", action="store_true", help="replace this stage's existing artifact in DIR")
    return p


def variants() -> argparse.ArgumentParser:
    p = _parent()
    p.add_argument("--variants", default=ALL, metavar="all|ID,ID",
                   help="'all' (default: every shipped recipe for convert, every converted variant for check) "
                        "or a comma-separated list of variant ids")
    return p


def ids(text: str) -> tuple[str, ...]:
    """``--variants`` as a tuple of ids (``("all",)`` for all; empty for ``,``)."""
    return tuple(p.strip() for p in str(text).split(",") if p.strip())


def verbose() -> argparse.ArgumentParser:
    """``--verbose``: show the libraries' own output (TensorFlow, absl, coremltools, LiteRT); every command."""
    p = _parent()
    p.add_argument("--verbose", action="store_true",
                   help="also show TensorFlow/coremltools/LiteRT output (same as EDGEKIT_VERBOSE=1)")
    return p


def recommendation() -> argparse.ArgumentParser:
    """``--target-agreement F`` and ``--max-size KB``: what the report may recommend (report, run)."""
    p = _parent()
    p.add_argument("--target-agreement", type=float, default=None, metavar="F",
                   help="recommend only variants whose 95%% agreement lower bound is at least F, a fraction in "
                        "(0, 1] (default 0.995)")
    p.add_argument("--max-size", type=float, default=None, metavar="KB",
                   help="recommend the most faithful qualifying variant of at most KB kilobytes "
                        "(default: the smallest qualifying variant)")
    return p


def diagnose_limit() -> argparse.ArgumentParser:
    """``--diagnose-limit N`` (report, run)."""
    from edgekit.runtime.report import DEFAULT_DIAGNOSE_LIMIT

    p = _parent()
    p.add_argument("--diagnose-limit", type=int, default=DEFAULT_DIAGNOSE_LIMIT, metavar="N",
                   help="the report diagnoses each failing, inconclusive and recommended variant layer by layer "
                        f"(as `edgekit diagnose`) on the first N test images (default {DEFAULT_DIAGNOSE_LIMIT}; "
                        "more: steadier SNRs, slower; 0: no 'Where the error comes from' section, fastest); a "
                        "current RUN/diagnose/<id>.json of at least N images is reused")
    return p


def max_accuracy_drop() -> argparse.ArgumentParser:
    """``--max-accuracy-drop PP`` (check, report, run)."""
    p = _parent()
    p.add_argument("--max-accuracy-drop", type=float, default=None, metavar="PP",
                   help="largest accuracy drop allowed, in percentage points: the 95%% interval of the change "
                        "must stay above -PP (check: replaces every variant's bar; report: a cap on the "
                        "recommendation)")
    return p


def jobs() -> argparse.ArgumentParser:
    """``--jobs N`` (convert, check, run)."""
    from edgekit.stage import DEFAULT_JOBS as default

    p = _parent()
    p.add_argument("--jobs", type=int, default=default, metavar="N",
                   help=f"processes for the independent work (default {default}, from this machine's cores; 1: all "
                        "in one): convert hands its fine-tunes (QAT, pruning, clustering) one at a time to a second "
                        "process while it converts the rest, then takes any not yet started; check runs the LiteRT "
                        "files beside the Keras and mil-reference work. Latency is still timed alone, one variant "
                        "at a time")
    return p
