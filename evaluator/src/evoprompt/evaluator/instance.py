"""One evaluator instance's claim on its work folder, so that instances sharing a home never touch
each other's work.

Every server (a standalone `evoprompt serve`, an embedded one, a Ray node's agent) claims a fresh
folder `ROOT/<id>/` for its jobs, its warm pool and its data files, and labels its sandboxes with
`<id>`. The claim is an exclusive `flock` on `ROOT/<id>.lock`, held by an open descriptor for the
process's life: the kernel drops it when the process dies, however it dies. At start an instance
removes only what *dead* instances left (their folders, and through the sandbox back-end their
containers): a lock that can be taken is a dead instance's. The lock file appears under its final
name already locked (locked aside, then renamed), so a starting instance never looks dead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path

from .files import remove_tree

log = logging.getLogger(__name__)
LOCK_SUFFIX = ".lock"


class Instance:
    """This process's folder under `root`; `release()` (or process death) gives it up."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.id = uuid.uuid4().hex[:12]
        self.dir = root / self.id
        root.mkdir(parents=True, exist_ok=True)
        partial = root / f".{self.id}.partial"
        self._fd: int | None = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(self._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                       "started": time.time()}).encode())
        os.replace(partial, self.lock_path(root, self.id))
        self.dir.mkdir()

    @staticmethod
    def lock_path(root: Path, instance_id: str) -> Path:
        return root / f"{instance_id}{LOCK_SUFFIX}"

    def release(self) -> None:
        """Remove this instance's folder and give up the claim (its sandboxes must be gone already)."""
        if self._fd is None:
            return
        remove_tree(self.dir)
        with contextlib.suppress(FileNotFoundError):
            self.lock_path(self.root, self.id).unlink()
        os.close(self._fd)
        self._fd = None


def is_live(root: Path, instance_id: str) -> bool:
    """Whether the instance `instance_id` of `root` still runs (its lock is held). In doubt (a lock that
    cannot be asked about), live: nothing is ever removed on a guess."""
    try:
        fd = os.open(Instance.lock_path(root, instance_id), os.O_RDWR)  # NFS's emulated flock needs write
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        log.warning("cannot open the lock of evaluator %s in %s (%s): treating it as live", instance_id, root, exc)
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError as exc:
        log.warning("cannot test the lock of evaluator %s in %s (%s): treating it as live", instance_id, root, exc)
        return True
    finally:
        os.close(fd)  # closing drops a lock this call took
    return False


def remove_dead(root: Path, keep: str) -> list[str]:
    """Remove the folders and lock files of the dead instances of `root` (and anything else in it that
    no live instance claims: an earlier version's `jobs/`, `pool/`, `data/`); returns their names.
    `keep` is the caller's own id."""
    removed = []
    if not root.is_dir():
        return removed
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name.startswith("."):  # a claim being made now, or a file being written aside
            continue
        instance_id = name.removesuffix(LOCK_SUFFIX)
        if instance_id == keep or is_live(root, instance_id):
            continue
        if name.endswith(LOCK_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        else:
            remove_tree(entry)
        removed.append(instance_id)
    removed = sorted(set(removed))
    if removed:
        log.info("removed the work folders of dead evaluators in %s: %s", root, ", ".join(removed))
    return removed


# the folders of an instance's work folder
JOBS = "jobs"  # one folder per running job
POOL = "pool"  # one folder per warm sandbox
DATA = "data"  # the data files, written once per data identity, mounted read-only
