"""A job's output folder as plain data: packed on the node, rebuilt at the front door, so the front door's
strict readers (outputs.py) judge exactly what the sandbox wrote, links and odd files included."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_ENTRIES = 100_000  # more names than this is a flood: the caller reports it as over the output limit
EXTRA_LINKS = ".extra-links"  # beside the rebuilt folder: names that keep a file's link count as it was


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the folder, "/"-separated
    kind: str  # "dir", "file", "link" (data: its target), "hardlink" (data: the path it is another name of), "other"
    data: bytes = b""
    links: int = 1  # a file's hard-link count where it was written


class TreeTooLarge(Exception):
    """The folder holds more bytes or names than may be moved."""


def pack_tree(root: Path, limit: int, only: tuple[str, ...] = ()) -> list[Entry]:
    """Every entry under `root`, parents first, links never followed; iterative (a sandbox may nest
    folders thousands deep). `only`: just these top-level names, not descended into (they are read while
    the sandbox still runs). Raises TreeTooLarge past `limit` bytes of contents or MAX_ENTRIES names;
    an entry that vanishes or cannot be read is recorded as "other", which no reader accepts."""
    entries: list[Entry] = []
    seen: dict[tuple[int, int], str] = {}
    budget = [limit]
    stack = [(str(root), PurePosixPath())]
    while stack:
        folder, rel_folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                names = sorted(e.name for e in listing)
        except OSError:
            continue
        if only and not rel_folder.parts:
            names = [n for n in names if n in only]
        for name in names:
            path, rel = os.path.join(folder, name), (rel_folder / name).as_posix()
            entries.append(_entry(path, rel, seen, budget))
            if entries[-1].kind == "dir" and not only:
                stack.append((path, rel_folder / name))
            if len(entries) > MAX_ENTRIES:
                raise TreeTooLarge(f"more than {MAX_ENTRIES} names")
    return entries


def _entry(path: str, rel: str, seen: dict[tuple[int, int], str], budget: list[int]) -> Entry:
    try:
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            return Entry(rel, "dir")
        if stat.S_ISLNK(info.st_mode):
            return Entry(rel, "link", os.fsencode(os.readlink(path)))
        if not stat.S_ISREG(info.st_mode):
            return Entry(rel, "other")
        if (info.st_dev, info.st_ino) in seen:
            return Entry(rel, "hardlink", seen[(info.st_dev, info.st_ino)].encode())
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            data = f.read(budget[0] + 1)  # never more than what is left of the limit
    except OSError:
        return Entry(rel, "other")
    budget[0] -= len(data)
    if budget[0] < 0:
        raise TreeTooLarge("more bytes than the output limit")
    seen[(info.st_dev, info.st_ino)] = rel
    return Entry(rel, "file", data, info.st_nlink)


def unpack_tree(entries: list[Entry], dest: Path) -> None:
    """Rebuild packed entries under `dest` (which must exist and be empty). Nothing lands outside it:
    every entry's parent must be `dest` or a folder made here, no name comes twice, files are created
    new (never through a link). A file that had more names than were packed gets the others in
    `dest`'s parent (EXTRA_LINKS), so its link count reads as it was."""
    from ..files import remove_tree

    remove_tree(dest.parent / EXTRA_LINKS)  # an earlier rebuild's
    made = {PurePosixPath(".")}
    names: set[PurePosixPath] = set()
    files: dict[PurePosixPath, list[int]] = {}  # first name -> [names made, links it had]
    for entry in entries:
        rel = PurePosixPath(entry.path)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parent not in made or rel in names:
            raise ValueError(f"refusing output entry {entry.path!r}: not a new name inside the job's folder")
        names.add(rel)
        path = dest.joinpath(*rel.parts)
        if entry.kind == "dir":
            path.mkdir()
            made.add(rel)
        elif entry.kind == "file":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(entry.data)
            files[rel] = [1, entry.links]
        elif entry.kind == "link":
            os.symlink(os.fsdecode(entry.data), path)
        elif entry.kind == "hardlink":
            first = PurePosixPath(entry.data.decode())
            if first not in files:
                raise ValueError(f"refusing output entry {entry.path!r}: a link to {first} of no file here")
            os.link(dest.joinpath(*first.parts), path, follow_symlinks=False)
            files[first][0] += 1
        else:
            os.mkfifo(path)
    extra = dest.parent / EXTRA_LINKS
    for n, (rel, (made_names, links)) in enumerate(files.items()):
        for k in range(min(links, 64) - made_names):
            extra.mkdir(exist_ok=True)
            os.link(dest.joinpath(*rel.parts), extra / f"{n}-{k}", follow_symlinks=False)
