"""Hold back the libraries' start-up chatter; ``--verbose`` shows all of it.

In: a block of code that imports or first calls TensorFlow, absl, tf_keras,
coremltools or LiteRT. Out: the block's result, with what those libraries
wrote to file descriptors 1 and 2 held in a temporary file instead of the
terminal, so every line a person sees is one of edgekit's own.

Why at the descriptor level: absl and TensorFlow's C++ code write straight
to fd 2 (``I0000 ... port.cc`` lines, ``E0000 ... failed call to cuInit``, a
harmless "error" on every machine without a GPU), LiteRT prints "Created
TensorFlow Lite XNNPACK delegate" from C++, and coremltools logs version
warnings and eight "Failed to load _MLModelProxy" lines at import. Swapping
``sys.stderr`` catches none of the C++ output; ``dup2`` catches both.

Use:

    from edgekit import quiet
    tf = quiet.import_tensorflow()            # import + device start-up, held
    ct = quiet.import_coremltools()
    pb = quiet.import_module("coremltools.proto.Model_pb2")
    interp = quiet.litert_interpreter(model_path=p, num_threads=2)  # allocated
    probs = quiet.call(model.predict, x, verbose=0)
    with quiet.quiet() as held:                # any other block
        converter.convert()
    held.text                                  # what was held back

Nothing is lost: if the block raises, the held text is attached to the
exception (``exc.library_output`` and, on Python 3.11+, a note that a
traceback prints). What the warnings mean is said once, in edgekit's words,
by ``edgekit doctor`` (the TensorFlow version coremltools was tested with,
scikit-learn, the Core ML runtime).

``EDGEKIT_VERBOSE=1`` (``edgekit --verbose``) turns all holding off.

Threads: captures nest and overlap by reference count. The first block to
enter redirects, the last to leave restores, each block's ``held.text`` is
what was written while it ran (a concurrent block's output included), and no
block ever waits for another, so a worker pool cannot deadlock on it. A
closed fd 1 or fd 2 is left closed.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import io
import os
import sys
import tempfile
import threading
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")

VERBOSE_ENV = "EDGEKIT_VERBOSE"
_FALSE = ("", "0", "false", "no", "off")


def verbose() -> bool:
    """True when the libraries' own output should be shown (EDGEKIT_VERBOSE set)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in _FALSE


def set_verbose(on: bool = True) -> None:
    """Show (True) or hold back (False) library output for this process and its children."""
    if on:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


class Held:
    """What a ``quiet()`` block held back (filled in when the block ends)."""

    def __init__(self) -> None:
        self.text = ""

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def __repr__(self) -> str:
        return f"Held({len(self.text)} chars)"


class _Forward(io.TextIOBase):
    """Stands in for a ``sys.stdout``/``sys.stderr`` that is not the real fd
    (pytest's capture, ``redirect_stderr``): writes go to the capture file
    while one is open, to the stream it replaced otherwise. It is never
    closed, because a library may keep it (a logging handler made during the
    block) after the block ends."""

    def __init__(self, original, name: str) -> None:
        super().__init__()
        self.original = original
        self.name = name
        self.sink: Any = None  # the capture's text writer while capturing

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        target = self.sink if self.sink is not None else self.original
        if target is None:
            return len(s)
        return target.write(s)

    def flush(self) -> None:
        target = self.sink if self.sink is not None else self.original
        if target is not None:
            with contextlib.suppress(Exception):
                target.flush()

    def isatty(self) -> bool:
        return False


class _Capture:
    """The process-wide redirection; every field is guarded by ``_lock``."""

    def __init__(self) -> None:
        self.depth = 0
        self.file = None  # binary TemporaryFile that fds 1 and 2 point at
        self.text_sink = None  # text writer onto self.file, for _Forward
        self.saved: dict[int, int] = {}  # fd -> dup of the original
        self.forwards: list[tuple[str, _Forward, bool]] = []  # (sys attribute, stand-in, installed by us)


_lock = threading.Lock()
_cap = _Capture()


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _is_fd(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except Exception:  # noqa: BLE001 - io.UnsupportedOperation, closed, None
        return False


def _flush_python() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()


def _begin() -> int:
    """Enter a capture; returns where this block's text starts in the file."""
    with _lock:
        if _cap.depth == 0:
            _flush_python()
            open_fds = [fd for fd in (1, 2) if _fd_open(fd)]  # before the temp file takes a free number
            f = tempfile.TemporaryFile(prefix="edgekit-held-")
            saved: dict[int, int] = {}
            try:
                for fd in open_fds:
                    saved[fd] = os.dup(fd)
                    os.dup2(f.fileno(), fd)
            except OSError:
                for fd, dup in saved.items():
                    os.dup2(dup, fd)
                    os.close(dup)
                f.close()
                raise
            _cap.file, _cap.saved = f, saved
            _cap.text_sink = io.TextIOWrapper(os.fdopen(os.dup(f.fileno()), "wb"), encoding="utf-8",
                                              errors="replace", write_through=True)
            _cap.forwards = []
            for name, fd in (("stdout", 1), ("stderr", 2)):
                stream = getattr(sys, name)
                if isinstance(stream, _Forward):  # kept over from an earlier block
                    _cap.forwards.append((name, stream, False))
                elif not _is_fd(stream, fd):
                    _cap.forwards.append((name, _Forward(stream, name), True))
                    setattr(sys, name, _cap.forwards[-1][1])
            for _name, fwd, _installed in _cap.forwards:
                fwd.sink = _cap.text_sink
        _cap.depth += 1
        return _size()


def _size() -> int:
    _flush_python()
    return os.fstat(_cap.file.fileno()).st_size


def _end(start: int) -> str:
    """Leave a capture; returns the text written since ``start``."""
    with _lock:
        end = _size()
        fd = _cap.file.fileno()
        data = os.pread(fd, max(end - start, 0), start) if end > start else b""
        _cap.depth -= 1
        if _cap.depth == 0:
            _flush_python()
            for name, fwd, installed in _cap.forwards:
                fwd.sink = None  # if a library kept it (a logging handler), it writes where it used to
                if installed and getattr(sys, name) is fwd:
                    setattr(sys, name, fwd.original)
            for target, dup in _cap.saved.items():
                os.dup2(dup, target)
                os.close(dup)
            with contextlib.suppress(Exception):
                _cap.text_sink.close()
            _cap.file.close()
            _cap.file, _cap.text_sink, _cap.saved, _cap.forwards = None, None, {}, []
        return data.decode("utf-8", "replace")


def _attach(exc: BaseException, text: str) -> None:
    if not text.strip():
        return
    with contextlib.suppress(Exception):
        exc.library_output = text  # type: ignore[attr-defined]
    note = getattr(exc, "add_note", None)
    if note is not None:
        with contextlib.suppress(Exception):
            note("output held back by edgekit while this ran (edgekit --verbose shows it live):\n" + text.rstrip())


@contextlib.contextmanager
def quiet() -> Iterator[Held]:
    """Hold back everything written to fds 1 and 2 (C++ and Python alike)
    while the block runs; a no-op when verbose. An exception from the block
    propagates with the held text attached."""
    held = Held()
    if verbose():
        yield held
        return
    start = _begin()
    try:
        yield held
    except BaseException as e:
        held.text = _end(start)
        start = -1
        _attach(e, held.text)
        raise
    finally:
        if start >= 0:
            held.text = _end(start)


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` with its library output held back."""
    with quiet():
        return fn(*args, **kwargs)


def quietly(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator form of ``call``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with quiet():
            return fn(*args, **kwargs)

    return wrapper


# ------------------------------------------------- imports and first calls

_devices_started = False


def _start_tensorflow_devices() -> None:
    """TensorFlow's device start-up is where absl logs ``failed call to cuInit``
    on a machine without a GPU; doing it once here, inside a capture, keeps
    that line out of the first real TensorFlow call. Listing physical devices
    does not initialise the runtime, so strategies can still be configured."""
    global _devices_started
    tf = sys.modules.get("tensorflow")
    if _devices_started or tf is None or not hasattr(tf, "config"):
        return
    _devices_started = True
    tf.config.list_physical_devices()


def import_module(name: str):
    """``importlib.import_module(name)`` with the import's output held back;
    if the import brought TensorFlow in, its device start-up is held too."""
    mod = sys.modules.get(name)
    if mod is not None and (_devices_started or "tensorflow" not in sys.modules):
        return mod
    with quiet():
        mod = importlib.import_module(name)
        _start_tensorflow_devices()
    return mod


def import_tensorflow():
    """The ``tensorflow`` module, imported and started without its log lines."""
    return import_module("tensorflow")


def import_keras():
    """``tf_keras`` (Keras 2, which edgekit builds with), imported quietly."""
    import_tensorflow()
    return import_module("tf_keras")


def import_coremltools():
    """The ``coremltools`` module without its import-time warnings (``edgekit
    doctor`` says what they mean)."""
    return import_module("coremltools")


def litert_interpreter(**kwargs):
    """A LiteRT ``Interpreter(**kwargs)`` with tensors allocated (where the
    XNNPACK delegate announces itself), output held back; LiteRT's
    ValueError/RuntimeError for a bad file propagates unchanged."""
    with quiet():
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(**kwargs)
        interp.allocate_tensors()
    return interp
