"""Conversion stage (``edgekit.convert``): ``<run>/model/`` in, ``<run>/variants/<id>/`` out.

Each variant is described by a recipe file in ``recipes/`` (data, loaded by
id) and written with its model file and ``variant.json`` (schema
``edgekit.variant/1``).
"""
