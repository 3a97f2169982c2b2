"""Import a candidate file as a module and fetch the object the task's contract names."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import CandidateError

MODULE_NAME = "candidate"


def _short_traceback(exc: BaseException, filename: str) -> str:
    """The exception and the candidate's own frames: what its author needs, without harness noise."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    where = "".join(traceback.format_list(frames[-3:]))
    head = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return f"{head}\n{where}".strip()


def load_module(path: Path) -> ModuleType:
    """Execute the candidate file; any failure while doing so is a COMPILE_ERROR."""
    filename = str(path)
    try:
        source = path.read_text(encoding="utf-8")
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise CandidateError(
            "COMPILE_ERROR", f"syntax error at line {exc.lineno}: {exc.msg}\n{(exc.text or '').rstrip()}"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise CandidateError("COMPILE_ERROR", f"cannot read the program: {exc}") from None
    spec = importlib.util.spec_from_loader(MODULE_NAME, loader=None, origin=filename)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = filename
    sys.modules[MODULE_NAME] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the candidate is the point
    except ImportError as exc:
        raise CandidateError(
            "COMPILE_ERROR", f"import failed: {exc}. The sandbox image provides numpy and the task's framework."
        ) from None
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: the program must not exit
        raise CandidateError(
            "COMPILE_ERROR", f"the program raised while being imported:\n{_short_traceback(exc, filename)}"
        ) from None
    return module


def get_attribute(module: ModuleType, name: str, kind: str) -> Any:
    """Fetch the contract's top-level name, or explain what is missing."""
    if not hasattr(module, name):
        defined = sorted(k for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, type))
        hint = f" (classes it defines: {', '.join(defined)})" if defined else ""
        raise CandidateError("COMPILE_ERROR", f"the program defines no top-level {kind} `{name}`{hint}")
    return getattr(module, name)


def describe_exception(exc: BaseException, filename: str) -> str:
    return _short_traceback(exc, filename)
