"""``python -m edgekit`` is the ``edgekit`` command."""
from edgekit.apps.cli import entry

entry()
