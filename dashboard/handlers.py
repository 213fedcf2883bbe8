"""Job handlers: the type a worker calls, and loading one from ``package.module:function``.

Shared by the worker command line and the embedded workers. This module must not import
Flask and runs no handler.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .job import Job

#: A handler takes the job and returns a JSON-serializable value (or a coroutine of one).
Handler = Callable[[Job], Any]


def load_handler(spec: str) -> Handler:
    """``package.module:function`` -> the function; a clear error when it is not one."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"a handler looks like package.module:function, got {spec!r}")
    handler = getattr(importlib.import_module(module_name), attr, None)
    if not callable(handler):
        raise ValueError(f"handler {spec!r}: {attr} is not a callable in {module_name}")
    return handler  # type: ignore[no-any-return]
