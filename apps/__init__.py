"""What a person runs: the ``edgekit`` command (``cli``), ``edgekit run``
(``pipeline``), ``edgekit doctor`` (``doctor``), and the iOS sample app and
Swift package (``ios/``, not Python). Nothing here is imported by a stage.
"""
