"""The in-container harness (`sandbox_images/harness/evoprompt_harness`) as seen from the host.

The sandbox images carry it; the server reads its job protocol (exit statuses) from the same files,
so one definition serves both sides, and the process back-end and the benchmarks run it from here.
It is imported from its folder by file location, never by editing sys.path.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "evoprompt_harness"


def harness_dir() -> Path:
    """The folder that holds the `evoprompt_harness` package (what the images copy)."""
    from .images import sandbox_images_dir

    return sandbox_images_dir() / "harness"


def import_harness() -> ModuleType:
    """The `evoprompt_harness` package, imported from `harness_dir()` (once per process)."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    folder = harness_dir() / PACKAGE
    spec = importlib.util.spec_from_file_location(PACKAGE, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the harness from {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACKAGE]
        raise
    return module


@functools.cache
def harness_protocol() -> ModuleType:
    """`evoprompt_harness.protocol`: the exit statuses of a job."""
    import_harness()
    return importlib.import_module(f"{PACKAGE}.protocol")
