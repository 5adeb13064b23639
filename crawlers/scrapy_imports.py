"""Import Scrapy's HTTP download handler without the source-file search its deprecations trigger.

Importing ``scrapy.core.downloader.handlers.http11`` builds three deprecated classes
(``scrapy.utils.deprecate.create_deprecated_class``), each of which calls ``inspect.stack()`` only
to name the module it was created in. ``inspect.stack()`` reads the source line of every frame on
the stack, and for each frame it searches ``sys.modules`` for the file: a cost in proportion to the
stack's depth times the modules loaded, which in a crawl child forked from a large process is about
half of the import. While the handler is imported, ``inspect.stack`` returns the same frames
without their source lines (what ``inspect.stack(0)`` gives, without the file search); the caller's
frame, the one Scrapy uses, is unchanged.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HTTP_HANDLER_MODULE = "scrapy.core.downloader.handlers.http11"


def frames_without_source(context: int = 1) -> list[inspect.FrameInfo]:
    """The caller's stack as ``inspect.stack`` lists it (the caller first), without source lines."""
    frames = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        frames.append(inspect.FrameInfo(frame, code.co_filename, frame.f_lineno, code.co_name, None, None))
        frame = frame.f_back
    return frames


@contextmanager
def stack_without_source() -> Iterator[None]:
    """``inspect.stack`` without source lines for the duration of the block (single-threaded use)."""
    real = inspect.stack
    inspect.stack = frames_without_source
    try:
        yield
    finally:
        inspect.stack = real


def import_http_handler() -> None:
    """Import Scrapy's HTTP/1.1 download handler (once per process; later calls cost nothing)."""
    if HTTP_HANDLER_MODULE in sys.modules:
        return
    with stack_without_source():
        importlib.import_module(HTTP_HANDLER_MODULE)
