"""Hold back the converters' own chatter while they run.

TensorFlow's converter prints C++ log lines and Python warnings to stderr on
every call, coremltools prints a progress bar per pass and warns about
untested versions. ``quiet()`` sends file descriptor 2, ``sys.stderr``, the
``coremltools`` logger and Python warnings to a buffer for the duration of
one conversion, so edgekit's own progress bar and summary stay readable. The
held text is kept on the context object (``held.text``) for debugging; errors
still propagate as exceptions with their own messages.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from typing import Iterator


class Held:
    text: str = ""


@contextlib.contextmanager
def quiet() -> Iterator[Held]:
    held = Held()
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    buf = tempfile.TemporaryFile()
    try:
        saved = os.dup(2)
        os.dup2(buf.fileno(), 2)
    except OSError:  # no fd 2 (closed by the caller): nothing to hold back at that level
        saved = None
    py = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(py):
            warnings.simplefilter("ignore")
            yield held
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        buf.seek(0)
        held.text = buf.read().decode("utf-8", "replace") + py.getvalue()
        buf.close()
        logger.setLevel(level)
