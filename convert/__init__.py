"""Conversion stage (``edgekit.convert``): ``<run>/model/`` in, ``<run>/variants/<id>/`` out.

Each variant is described by a recipe file in ``recipes/`` (data, loaded by
id; schema ``edgekit.recipe/2``, declaring its kind and reference) and
written with its model file and ``variant.json`` (schema
``edgekit.variant/2``); ``variants/index.json`` lists every variant tried
(``edgekit.rundir``, docs/ARTIFACTS.md).

    from edgekit.convert import ConvertConfig, run
    result = run(ConvertConfig(run_dir="runs/mnist", variants=("tflite-int8", "coreml-pal4")))

Modules: ``config`` (ConvertConfig), ``recipe`` (loading and validating
recipes), ``stage`` (``run`` -> ConvertResult, the summary table),
``tflite`` / ``coreml`` (the exporters and what a produced file contains),
``finetune`` (tfmot QAT, pruning, clustering), ``cli`` (``edgekit
convert``); the converters' chatter is held back by ``edgekit.quiet``.
Nothing heavy is imported until it is used.
"""

__all__ = ["ConvertConfig", "ConvertResult", "run"]


def __getattr__(name: str):
    if name == "ConvertConfig":
        from edgekit.convert.config import ConvertConfig

        return ConvertConfig
    if name in ("ConvertResult", "run"):
        from edgekit.convert import stage

        return getattr(stage, name)
    raise AttributeError(f"module 'edgekit.convert' has no attribute {name!r}")
