"""A job's output folder as plain data: packed on the node, rebuilt at the front door, so the front door's
strict readers (outputs.py) judge exactly what the sandbox wrote, links and odd files included."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_ENTRIES = 100_000  # more names than this is a flood: the caller reports it as over the output limit


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the folder, "/"-separated
    kind: str  # "dir", "file", "link" (data: its target), "hardlink" (data: the path it is another name of), "other"
    data: bytes = b""


class TreeTooLarge(Exception):
    """The folder holds more bytes or names than may be moved."""


def pack_tree(root: Path, limit: int, only: tuple[str, ...] = ()) -> list[Entry]:
    """Every entry under `root`, parents first, without following links; `only`: just these top-level names.
    Raises TreeTooLarge past `limit` bytes of file contents or MAX_ENTRIES names."""
    entries: list[Entry] = []
    seen: dict[tuple[int, int], str] = {}
    total = 0
    for top, dirs, files in os.walk(root, followlinks=False):
        rel_top = Path(top).relative_to(root)
        names = sorted(dirs + files)
        if only and rel_top == Path("."):
            names = [n for n in names if n in only]
            dirs[:] = [d for d in dirs if d in only]
        for name in names:
            path = Path(top) / name
            rel = (rel_top / name).as_posix()
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                entries.append(Entry(rel, "dir"))
            elif stat.S_ISLNK(info.st_mode):
                entries.append(Entry(rel, "link", os.fsencode(os.readlink(path))))
                dirs[:] = [d for d in dirs if d != name]
            elif stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) in seen:
                entries.append(Entry(rel, "hardlink", seen[(info.st_dev, info.st_ino)].encode()))
            elif stat.S_ISREG(info.st_mode):
                total += info.st_size
                if total > limit:
                    raise TreeTooLarge(f"more than {limit} bytes")
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as f:
                    entries.append(Entry(rel, "file", f.read(limit + 1)))
                seen[(info.st_dev, info.st_ino)] = rel
            else:
                entries.append(Entry(rel, "other"))
            if len(entries) > MAX_ENTRIES:
                raise TreeTooLarge(f"more than {MAX_ENTRIES} names")
        dirs.sort()
    return entries


def unpack_tree(entries: list[Entry], dest: Path) -> None:
    """Rebuild packed entries under `dest` (which must exist). Nothing lands outside it: every entry's
    parent must be `dest` or a folder made here, so a packed link is never followed."""
    made = {PurePosixPath(".")}
    files: set[PurePosixPath] = set()
    for entry in entries:
        rel = PurePosixPath(entry.path)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parent not in made:
            raise ValueError(f"refusing output entry {entry.path!r}: not inside the job's folder")
        path = dest.joinpath(*rel.parts)
        if entry.kind == "dir":
            path.mkdir()
            made.add(rel)
        elif entry.kind == "file":
            path.write_bytes(entry.data)
            files.add(rel)
        elif entry.kind == "link":
            os.symlink(os.fsdecode(entry.data), path)
        elif entry.kind == "hardlink":
            first = PurePosixPath(entry.data.decode())
            if first not in files:
                raise ValueError(f"refusing output entry {entry.path!r}: a link to {first} of no file here")
            os.link(dest.joinpath(*first.parts), path, follow_symlinks=False)
        else:
            os.mkfifo(path)
