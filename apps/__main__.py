"""``python -m edgekit`` is the ``edgekit`` command."""
from edgekit.cli import entry

entry()
