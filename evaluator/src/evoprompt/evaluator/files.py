"""File-system helpers for folders a sandbox wrote into: measure them and delete them, whatever is in them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MIN_ENTRY_BYTES = 4096  # every file or folder costs at least a block: an inode flood hits the cap too


def directory_bytes(path: Path, stop_above: int | None = None) -> int:
    """Bytes under `path`, links not followed, each entry charged at least MIN_ENTRY_BYTES.

    Iterative (a sandbox may build folders thousands deep) and, with `stop_above`, it returns as
    soon as the total passes it, so a flood of files costs the watcher little."""
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += max(st.st_blocks * 512, MIN_ENTRY_BYTES)
                    if stop_above is not None and total > stop_above:
                        return total
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


def remove_tree(path: Path) -> None:
    """Delete a job folder whatever the sandbox built in it (deep trees defeat shutil's recursion)."""
    import shutil
    import subprocess

    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except (OSError, RecursionError):
        subprocess.run(["rm", "-rf", "--", str(path)], check=False, capture_output=True)
