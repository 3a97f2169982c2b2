"""The offline image builder: the debootstrapped Debian base, the host-side wheelhouse, the build
context and `docker build` (see `images` for the recipe and the tags). Used by `evoprompt images
build`, `make images` and the docker back-end when it builds an image on first need.

Where it builds (`build_dir`), what the CPU images are built FROM (`sandbox_base`) and the Debian mirror
(`debian_mirror`) are settings their callers pass; None (not passed) means the built-in default.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .images import (
    _BASE_ENV_PATH,
    _BASE_PRUNE,
    BASE_PACKAGES,
    CPU_IMAGES,
    DEBIAN_SUITE,
    DEBIAN_VARIANT,
    DEFAULT_DEBIAN_MIRROR,
    LABEL_HASH,
    LABEL_IMAGE,
    LOCAL_BASE_ALIAS,
    LOCAL_BASE_REPOSITORY,
    SDIST_REQUIREMENTS,
    ImageBuildError,
    ImageSpec,
    Log,
    _harness_files,
    _image_dir,
    _spec,
    base_image_tag,
    configured,
    docker_client,
    image_present,
    image_tag,
    local_base_tag,
    sandbox_images_dir,
)


def build_folder(build_dir: str | None = None, root: Path | None = None) -> Path:
    """Where wheelhouses, contexts and the base root filesystem go: `build_dir` (the setting; None: as
    the default), else the checkout's `build/` (ignored by git), else
    `~/.cache/evoprompt/build` for an installed wheel."""
    build_dir = configured("build_dir", build_dir)
    if build_dir:
        return Path(build_dir).expanduser().resolve()
    root = root or sandbox_images_dir()
    repo = root.parent
    if root.name == "sandbox_images" and (repo / "pyproject.toml").is_file():
        return repo / "build"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "evoprompt" / "build"


# ---- building ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """One build at a time per build folder (two servers, or a test and a server, may both try)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _unmount_under(path: Path) -> None:
    """Lazily unmount anything a failed debootstrap left mounted inside `path` (proc, sys)."""
    prefix = str(path.resolve()) + "/"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [m.split()[1].replace("\\040", " ") for m in mounts if len(m.split()) > 1]
    for t in sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", t], check=False, capture_output=True)


def _remove_tree(path: Path) -> None:
    if path.exists():
        _unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)


def _run(cmd: list[str], log: Log, what: str, hint: str = "") -> None:
    log(f"$ {' '.join(cmd)}")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-30:]
    rc = proc.wait()
    if rc != 0:
        detail = "\n".join(tail)
        raise ImageBuildError(f"{what} failed (exit {rc}){': ' + hint if hint else ''}\n{detail}")


def build_base_image(client=None, *, force: bool = False, log: Log = print, debian_mirror: str | None = None,
                     build_dir: str | None = None) -> str:
    """Make the local Debian base (debootstrap + docker import) from `debian_mirror` in `build_dir` (the
    settings; None: the defaults) unless its tag exists; return it."""
    client = client or docker_client()
    tag = local_base_tag()
    if not force and image_present(client, tag):
        return tag
    debootstrap = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.access(p, os.X_OK)), None
    )
    if not debootstrap:
        raise ImageBuildError(
            "debootstrap not found: `apt-get install debootstrap` (it makes the offline Debian base "
            "image), or set EVOPROMPT_SANDBOX_BASE=python:3.11-slim where Docker Hub is reachable"
        )
    if os.geteuid() != 0:
        raise ImageBuildError(
            "debootstrap needs root to make the sandbox base image: run `sudo evoprompt images build` "
            "once, or set EVOPROMPT_SANDBOX_BASE=python:3.11-slim where Docker Hub is reachable"
        )
    mirror = configured("debian_mirror", debian_mirror) or DEFAULT_DEBIAN_MIRROR
    work = build_folder(build_dir) / "base"
    work.mkdir(parents=True, exist_ok=True)
    debs = work / "debs"  # debootstrap's download cache: a retry does not fetch everything again
    debs.mkdir(exist_ok=True)
    rootfs = work / "rootfs"
    _remove_tree(rootfs)
    started = time.monotonic()
    packages = ", ".join(BASE_PACKAGES)
    log(f"making the sandbox base {tag}: debootstrap {DEBIAN_SUITE} ({packages}) from {mirror}")
    try:
        _run(
            [
                debootstrap,
                f"--variant={DEBIAN_VARIANT}",
                f"--include={','.join(BASE_PACKAGES)}",
                "--components=main",
                f"--cache-dir={debs}",
                DEBIAN_SUITE,
                str(rootfs),
                mirror,
            ],
            log,
            "debootstrap",
            f"check that {mirror} is reachable (or set EVOPROMPT_DEBIAN_MIRROR); the log is "
            f"{rootfs / 'debootstrap/debootstrap.log'}",
        )
        _unmount_under(rootfs)
        for rel in _BASE_PRUNE:
            p = rootfs / rel
            if p.is_dir() and not p.is_symlink():
                for child in p.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            elif p.exists() or p.is_symlink():
                p.unlink(missing_ok=True)
        # apt wants its partial dirs back if anyone ever runs it in a derived image.
        (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
        (rootfs / "tmp").chmod(0o1777)
        tarball = work / "rootfs.tar"
        _run(
            [
                "tar",
                "--numeric-owner",
                "-C",
                str(rootfs),
                "--exclude=./dev/*",
                "--exclude=./proc/*",
                "--exclude=./sys/*",
                "-cf",
                str(tarball),
                ".",
            ],
            log,
            "packing the base root filesystem",
        )
        log(f"importing {tarball} ({tarball.stat().st_size / 2**20:.0f} MiB) as {tag}")
        repo, _, version = tag.partition(":")
        try:
            client.api.import_image_from_file(
                str(tarball),
                repository=repo,
                tag=version,
                changes=[f"ENV PATH={_BASE_ENV_PATH}", "ENV LANG=C.UTF-8", 'CMD ["/usr/bin/python3"]'],
            )
            client.images.get(tag).tag(LOCAL_BASE_REPOSITORY, LOCAL_BASE_ALIAS.partition(":")[2])
        except Exception as e:
            raise ImageBuildError(f"docker import of the base root filesystem failed: {e}") from e
        tarball.unlink(missing_ok=True)
    finally:
        _remove_tree(rootfs)
    log(f"base {tag} ready in {time.monotonic() - started:.0f} s")
    return tag


def _platform_args(spec: ImageSpec) -> list[str]:
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    major, minor = spec.glibc_max
    plats = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    if arch in ("x86_64", "i686"):
        plats += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    elif arch in ("aarch64", "ppc64le", "s390x", "armv7l"):
        plats += [f"manylinux2014_{arch}"]
    pyver = spec.python_version.replace(".", "")
    args = [
        "--only-binary=:all:",
        "--python-version",
        spec.python_version,
        "--implementation",
        "cp",
        "--abi",
        f"cp{pyver}",
    ]
    for p in plats:
        args += ["--platform", p]
    return args


def build_wheelhouse(name: str, root: Path | None = None, *, force: bool = False, log: Log = print,
                     build_dir: str | None = None) -> Path:
    """`pip download` the image's requirements (for the image's Python and platform) into
    `<build folder>/wheelhouse/<name>`; reused while the requirements and target are unchanged."""
    root = root or sandbox_images_dir()
    d = _image_dir(name, root)
    spec = _spec(name)
    out = build_folder(build_dir, root) / "wheelhouse" / name
    args = _platform_args(spec)
    sdists = d / SDIST_REQUIREMENTS
    pinned = (d / "requirements.txt").read_bytes() + (sdists.read_bytes() if sdists.is_file() else b"")
    stamp_value = hashlib.sha256(pinned + "\0".join(args).encode()).hexdigest()
    stamp = out / ".complete"
    if not force and stamp.is_file() and stamp.read_text().strip() == stamp_value:
        return out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log(f"downloading wheels for {name} (Python {spec.python_version}) into {out}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-r",
        str(d / "requirements.txt"),
        "-d",
        str(out),
        "--no-deps",  # requirements.txt pins the whole closure; its source-only pins are built below
        *args,
    ]
    _run(
        cmd,
        log,
        f"pip download for {name}",
        "check that the package index is reachable (pip's own configuration applies: "
        "PIP_INDEX_URL, PIP_FIND_LINKS) and that the pins in requirements.txt exist for "
        f"CPython {spec.python_version} on Linux",
    )
    if sdists.is_file():
        _build_pure_python_wheels(name, sdists, out, log)
    stamp.write_text(stamp_value + "\n")
    return out


def _build_pure_python_wheels(name: str, sdists: Path, out: Path, log: Log) -> None:
    """Wheels for the pins PyPI has only as source (e.g. `promise`): built on the host, which is
    right only for pure-Python packages, so anything but a `py*-none-any` wheel is refused."""
    log(f"building pure-Python wheels of {sdists.name} for {name}")
    before = set(out.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--progress-bar", "off",
           "--no-deps", "--no-binary=:all:", "-r", str(sdists), "-w", str(out)]
    _run(cmd, log, f"pip wheel for {name}", f"check the pins in {sdists}")
    for wheel in set(out.glob("*.whl")) - before:
        if not wheel.name.endswith("-none-any.whl"):
            raise ImageBuildError(f"{sdists} may list only pure-Python packages; {wheel.name} is not one")


def _add_bytes(tar: tarfile.TarFile, arcname: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(arcname)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = tar.gettarinfo(str(path), arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o644  # world-readable: containers run as nobody
    with open(path, "rb") as f:
        tar.addfile(info, f)


def _add_dir(tar: tarfile.TarFile, arcname: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
    tar.addfile(info)


def _write_context(name: str, root: Path, wheels: Path, out: Path) -> None:
    """The build context: Dockerfile, requirements.txt, wheels/, harness/evoprompt_harness/."""
    d = root / name
    harness = root / "harness"
    with tarfile.open(out, "w") as tar:
        _add_file(tar, d / "Dockerfile", "Dockerfile")
        _add_file(tar, d / "requirements.txt", "requirements.txt")
        _add_dir(tar, "wheels")
        for w in sorted(wheels.glob("*.whl")):
            _add_file(tar, w, f"wheels/{w.name}")
        _add_dir(tar, "harness")
        seen_dirs: set[str] = set()
        for p in _harness_files(root):
            rel = p.relative_to(harness).as_posix()
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                sub = "harness/" + "/".join(parts[:i])
                if sub not in seen_dirs:
                    seen_dirs.add(sub)
                    _add_dir(tar, sub)
            _add_file(tar, p, f"harness/{rel}")


def _docker_build(client, context: Path, tag: str, name: str, base: str, *, nocache: bool, log: Log) -> None:
    tail: list[str] = []
    repo, _, version = tag.partition(":")
    try:
        with open(context, "rb") as f:
            stream = client.api.build(
                fileobj=f,
                custom_context=True,
                tag=tag,
                buildargs={"BASE": base},
                labels={LABEL_IMAGE: name, LABEL_HASH: version},
                rm=True,
                forcerm=True,
                nocache=nocache,
                pull=False,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    text = "\n".join(tail[-25:])
                    hint = ""
                    if "pull access denied" in detail or "not found" in detail and base in detail:
                        hint = (
                            f"\nthe base image {base} is not present and cannot be pulled; for the CPU "
                            "images unset EVOPROMPT_SANDBOX_BASE to use the local Debian base"
                        )
                    raise ImageBuildError(f"docker build of {name} failed: {detail.strip()}{hint}\n{text}")
                for line in str(chunk.get("stream", "")).splitlines():
                    line = line.rstrip()
                    if line:
                        tail.append(line)
                        if line.startswith("Step ") or line.startswith("Successfully"):
                            log(line)
    except ImageBuildError:
        raise
    except Exception as e:
        raise ImageBuildError(f"docker build of {name} failed: {e}\n" + "\n".join(tail[-25:])) from e
    try:
        client.images.get(tag).tag(repo, "latest")
    except Exception:  # the alias is a convenience for people, nothing depends on it
        pass


def build_image(name: str, *, force: bool = False, log: Log = print, sandbox_base: str | None = None,
                build_dir: str | None = None, debian_mirror: str | None = None) -> str:
    """Build sandbox image `name` (and the base and wheelhouse it needs) unless its current tag is
    present; return the tag. `force` rebuilds the image without the layer cache (the base is kept).
    `sandbox_base`, `build_dir` and `debian_mirror` are the settings of those names (None: the defaults)."""
    sandbox_base = configured("sandbox_base", sandbox_base)
    root = sandbox_images_dir()
    _image_dir(name, root)
    tag = image_tag(name, root, sandbox_base=sandbox_base)
    client = docker_client()
    if not force and image_present(client, tag):
        return tag
    folder = build_folder(build_dir, root)
    with _build_lock(folder / "images.lock"):
        if not force and image_present(client, tag):  # another process built it meanwhile
            return tag
        started = time.monotonic()
        spec = _spec(name)
        base = base_image_tag(name, root, sandbox_base=sandbox_base)
        if spec.local_base and not sandbox_base:
            build_base_image(client, log=log, debian_mirror=debian_mirror, build_dir=str(folder))
        wheels = build_wheelhouse(name, root, log=log, build_dir=str(folder))
        ctx_dir = folder / "context"
        ctx_dir.mkdir(parents=True, exist_ok=True)
        fd, ctx_name = tempfile.mkstemp(prefix=f"{name}-", suffix=".tar", dir=ctx_dir)
        os.close(fd)
        context = Path(ctx_name)
        try:
            _write_context(name, root, wheels, context)
            log(f"building {tag} FROM {base}")
            _docker_build(client, context, tag, name, base, nocache=force, log=log)
        finally:
            context.unlink(missing_ok=True)
        log(f"{tag} built in {time.monotonic() - started:.0f} s")
    return tag


def build_images(names: list[str] | None = None, *, force: bool = False, log: Log = print,
                 **settings: str | None) -> dict[str, str]:
    """Build the named images (default: the CPU images); return {name: tag}. `settings`: those of
    `build_image` (sandbox_base, build_dir, debian_mirror)."""
    names = list(names) if names else list(CPU_IMAGES)
    return {n: build_image(n, force=force, log=log, **settings) for n in names}
