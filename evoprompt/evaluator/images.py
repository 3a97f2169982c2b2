"""Sandbox images: tag computation and offline builds.

Every sandbox image is built without an image registry:

1. a Debian base image made with ``debootstrap --variant=minbase`` and ``docker import``
   (``evoprompt-base:bookworm-py311-<hash>``; the hash covers the package list, so a changed list
   makes a new base), reused whenever it is present;
2. a wheelhouse per image, ``pip download --only-binary=:all:`` on the host into
   ``build/wheelhouse/<name>`` for the image's Python and platform (not the host's);
3. ``docker build`` (the engine's classic builder, through docker-py) of
   ``sandbox_images/<name>/Dockerfile`` with a context assembled here: the Dockerfile, the
   ``requirements.txt``, the wheels and the harness package. The builder stage installs with
   ``pip install --no-index``; the final stage copies only ``/opt/venv``.

The image tag is ``evoprompt-sandbox/<name>:<hash12>``: the first 12 hex digits of a sha256 over the
Dockerfile, the requirements, every harness file and the base image's tag. A changed harness therefore
means a new tag, and ``build_image`` rebuilds; an unchanged tree means the same tag and a fast return.

``EVOPROMPT_SANDBOX_BASE`` replaces the local Debian base of the CPU images with another Python 3.11
image (e.g. ``python:3.11-slim`` where Docker Hub is reachable); the tag changes with it, so the
evaluator and the builder agree as long as both see the same environment.

Heavy imports (docker) stay inside functions: the evaluator imports this module on every start.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FRAMEWORK_IMAGES",
    "FRAMEWORK_GPU_IMAGES",
    "CPU_IMAGES",
    "ImageBuildError",
    "ImageSpec",
    "IMAGE_SPECS",
    "sandbox_images_dir",
    "build_dir",
    "known_images",
    "base_image_tag",
    "local_base_tag",
    "image_tag",
    "image_present",
    "missing_images",
    "docker_client",
    "build_base_image",
    "build_wheelhouse",
    "build_image",
    "build_images",
]

# Which image runs the candidates of each framework (section 2 of DESIGN.md).
FRAMEWORK_IMAGES: dict[str, str] = {"torch": "torch-cpu", "flax": "jax-cpu", "haiku": "clrs-cpu"}
# The images a server with --gpus runs instead.
# (no CUDA image for CLRS yet: haiku candidates run on the CPU of a GPU slot)
FRAMEWORK_GPU_IMAGES: dict[str, str] = {"torch": "torch-cuda", "flax": "jax-cuda", "haiku": "clrs-cpu"}

# The images `build_images()` builds when given no names: the ones buildable offline here.
CPU_IMAGES: tuple[str, ...] = ("torch-cpu", "jax-cpu", "clrs-cpu")

TAG_REPOSITORY = "evoprompt-sandbox"
# Beside an image's requirements.txt: exact pins of pure-Python packages published only as source
SDIST_REQUIREMENTS = "requirements-sdist.txt"
LABEL_IMAGE = "org.evoprompt.sandbox.image"
LABEL_HASH = "org.evoprompt.sandbox.hash"

# ---- the local Debian base --------------------------------------------------------------------

# The Dockerfiles of the CPU images name this alias as their default `ARG BASE`; builds from here
# always pass the exact, hashed tag, and the alias is set on the same image for hand-made builds.
LOCAL_BASE_REPOSITORY = "evoprompt-base"
LOCAL_BASE_ALIAS = f"{LOCAL_BASE_REPOSITORY}:bookworm-py311"
DEBIAN_SUITE = "bookworm"  # python3 is 3.11 there, matching the cp311 wheels
DEBIAN_VARIANT = "minbase"
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
# python3 + python3-venv (ensurepip, so `python3 -m venv` works); libstdc++6 for torch and jaxlib
# (apt pulls it in anyway: named so it never silently goes). torch's CPU wheel bundles its own
# libgomp, so libgomp1 is not needed.
BASE_PACKAGES: tuple[str, ...] = ("python3", "python3-venv", "libstdc++6")
# Removed from the root filesystem before `docker import`. Bump _BASE_RECIPE_VERSION when changing
# how the base is made, so the base tag (and every image tag) changes.
_BASE_PRUNE = (
    "var/cache/apt/archives",
    "var/cache/apt/pkgcache.bin",
    "var/cache/apt/srcpkgcache.bin",
    "var/lib/apt/lists",
    "var/log",
    "var/cache/debconf/templates.dat-old",
    "var/cache/debconf/config.dat-old",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "tmp",
)
_BASE_RECIPE_VERSION = "1"
_BASE_ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageBuildError(RuntimeError):
    """A sandbox image (or its base, or its wheelhouse) could not be built; the message says why and
    what to do about it."""


@dataclass(frozen=True)
class ImageSpec:
    """What the build needs to know about an image beyond its Dockerfile."""

    python_version: str  # the image's Python, for the wheelhouse (`pip download --python-version`)
    glibc_max: tuple[int, int]  # newest manylinux tag the image's C library accepts
    local_base: bool  # True: FROM the debootstrapped Debian base; False: FROM its Dockerfile's default
    gpu: bool = False


IMAGE_SPECS: dict[str, ImageSpec] = {
    "torch-cpu": ImageSpec("3.11", (2, 36), local_base=True),
    "jax-cpu": ImageSpec("3.11", (2, 36), local_base=True),
    "clrs-cpu": ImageSpec("3.11", (2, 36), local_base=True),
    # nvidia/cuda:*-ubuntu24.04: Python 3.12, glibc 2.39. Built only where that base can be pulled.
    "torch-cuda": ImageSpec("3.12", (2, 39), local_base=False, gpu=True),
    "jax-cuda": ImageSpec("3.12", (2, 39), local_base=False, gpu=True),
}

Log = Callable[[str], Any]


# ---- locations --------------------------------------------------------------------------------


def sandbox_images_dir() -> Path:
    """The `sandbox_images/` folder: the repository's (a sibling of the `evoprompt` package) in a
    checkout, or `evoprompt/_sandbox_images` inside an installed wheel."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_sandbox_images", package_dir.parent / "sandbox_images"):
        if candidate.is_dir():
            return candidate
    raise ImageBuildError(
        f"no sandbox_images folder found (looked in {package_dir / '_sandbox_images'} and "
        f"{package_dir.parent / 'sandbox_images'}); reinstall evoprompt or run from a checkout"
    )


def build_dir(root: Path | None = None) -> Path:
    """Where wheelhouses, contexts and the base root filesystem go: `$EVOPROMPT_BUILD_DIR`, else the
    checkout's `build/` (ignored by git), else `~/.cache/evoprompt/build` for an installed wheel."""
    env = os.environ.get("EVOPROMPT_BUILD_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = root or sandbox_images_dir()
    repo = root.parent
    if root.name == "sandbox_images" and (repo / "pyproject.toml").is_file():
        return repo / "build"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "evoprompt" / "build"


def known_images(root: Path | None = None) -> list[str]:
    """Names of all images with a Dockerfile under `sandbox_images/`, sorted."""
    root = root or sandbox_images_dir()
    return sorted(p.parent.name for p in root.glob("*/Dockerfile"))


def _image_dir(name: str, root: Path) -> Path:
    d = root / name
    if not (d / "Dockerfile").is_file():
        known = ", ".join(known_images(root)) or "none"
        raise ImageBuildError(f"unknown sandbox image {name!r}: no {d / 'Dockerfile'} (known: {known})")
    if not (d / "requirements.txt").is_file():
        raise ImageBuildError(f"sandbox image {name!r} has no {d / 'requirements.txt'}")
    return d


def _spec(name: str) -> ImageSpec:
    # An image folder added without an entry here is treated as a CPU image on the local base.
    return IMAGE_SPECS.get(name, ImageSpec("3.11", (2, 36), local_base=True))


# ---- tags -------------------------------------------------------------------------------------


def _harness_files(root: Path) -> list[Path]:
    harness = root / "harness"
    if not harness.is_dir():
        return []
    files = []
    for p in harness.rglob("*"):
        rel = p.relative_to(harness)
        if "__pycache__" in rel.parts or p.suffix == ".pyc" or not p.is_file():
            continue
        files.append(p)
    return sorted(files, key=lambda p: p.relative_to(harness).as_posix())


def _feed(h: Any, label: str, data: bytes) -> None:
    # Length-prefixed, so no two different trees hash the same by shifting bytes between fields.
    for part in (label.encode(), data):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)


def local_base_tag() -> str:
    """The tag of the debootstrapped base: a hash of suite, variant, packages and recipe."""
    h = hashlib.sha256()
    _feed(h, "suite", DEBIAN_SUITE.encode())
    _feed(h, "variant", DEBIAN_VARIANT.encode())
    _feed(h, "packages", "\n".join(sorted(BASE_PACKAGES)).encode())
    _feed(h, "prune", "\n".join(_BASE_PRUNE).encode())
    _feed(h, "recipe", _BASE_RECIPE_VERSION.encode())
    return f"{LOCAL_BASE_ALIAS}-{h.hexdigest()[:12]}"


_ARG_BASE = re.compile(r"^\s*ARG\s+BASE\s*=\s*(\S+)\s*$", re.MULTILINE)


def _dockerfile_default_base(dockerfile: Path) -> str | None:
    m = _ARG_BASE.search(dockerfile.read_text(encoding="utf-8"))
    return m.group(1).strip("\"'") if m else None


def base_image_tag(name: str, root: Path | None = None) -> str:
    """The image `name` is built FROM: `$EVOPROMPT_SANDBOX_BASE` or the local Debian base for the
    CPU images; the Dockerfile's own `ARG BASE` default (a registry image) for the others."""
    root = root or sandbox_images_dir()
    spec = _spec(name)
    if spec.local_base:
        return os.environ.get("EVOPROMPT_SANDBOX_BASE") or local_base_tag()
    default = _dockerfile_default_base(_image_dir(name, root) / "Dockerfile")
    if not default:
        raise ImageBuildError(f"{root / name / 'Dockerfile'} has no `ARG BASE=<image>` line")
    return default


def image_tag(name: str, root: Path | None = None) -> str:
    """`evoprompt-sandbox/<name>:<hash12>`, the hash over the Dockerfile, requirements.txt, every
    harness file (sorted relative paths and contents; no __pycache__ or *.pyc) and the base tag."""
    root = Path(root) if root is not None else sandbox_images_dir()
    d = _image_dir(name, root)
    h = hashlib.sha256()
    _feed(h, "Dockerfile", (d / "Dockerfile").read_bytes())
    _feed(h, "requirements.txt", (d / "requirements.txt").read_bytes())
    if (d / SDIST_REQUIREMENTS).is_file():
        _feed(h, SDIST_REQUIREMENTS, (d / SDIST_REQUIREMENTS).read_bytes())
    harness = root / "harness"
    for p in _harness_files(root):
        _feed(h, "harness/" + p.relative_to(harness).as_posix(), p.read_bytes())
    _feed(h, "base", base_image_tag(name, root).encode())
    return f"{TAG_REPOSITORY}/{name}:{h.hexdigest()[:12]}"


# ---- engine -----------------------------------------------------------------------------------


def _docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def docker_client(timeout: int = 600):
    """A docker-py client that has answered a ping, or ImageBuildError saying how to get one."""
    try:
        import docker
    except ImportError as e:  # pragma: no cover - the evaluator extra installs it
        raise ImageBuildError(
            "the docker Python package is missing: pip install 'evoprompt[evaluator]'"
        ) from e
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as e:
        raise ImageBuildError(
            f"no Docker engine answers at {_docker_host()} ({e}); start one (`systemctl start docker`, "
            "or `dockerd &` as root) or point DOCKER_HOST at it"
        ) from e
    return client


def image_present(client, tag: str) -> bool:
    """Whether the engine has an image with exactly this tag."""
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def missing_images(client, names: Iterable[str]) -> list[str]:
    """The names among `names` whose current tag the engine does not have."""
    return [n for n in names if not image_present(client, image_tag(n))]


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


def build_base_image(client=None, *, force: bool = False, log: Log = print) -> str:
    """Make the local Debian base (debootstrap + docker import) unless its tag exists; return it."""
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
    mirror = os.environ.get("EVOPROMPT_DEBIAN_MIRROR") or DEFAULT_DEBIAN_MIRROR
    work = build_dir() / "base"
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


def build_wheelhouse(name: str, root: Path | None = None, *, force: bool = False, log: Log = print) -> Path:
    """`pip download` the image's requirements (for the image's Python and platform) into
    `build/wheelhouse/<name>`; reused while the requirements and target are unchanged."""
    root = root or sandbox_images_dir()
    d = _image_dir(name, root)
    spec = _spec(name)
    out = build_dir(root) / "wheelhouse" / name
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


def build_image(name: str, *, force: bool = False, log: Log = print) -> str:
    """Build sandbox image `name` (and the base and wheelhouse it needs) unless its current tag is
    present; return the tag. `force` rebuilds the image without the layer cache (the base is kept)."""
    root = sandbox_images_dir()
    _image_dir(name, root)
    tag = image_tag(name, root)
    client = docker_client()
    if not force and image_present(client, tag):
        return tag
    with _build_lock(build_dir(root) / "images.lock"):
        if not force and image_present(client, tag):  # another process built it meanwhile
            return tag
        started = time.monotonic()
        spec = _spec(name)
        base = base_image_tag(name, root)
        if spec.local_base and not os.environ.get("EVOPROMPT_SANDBOX_BASE"):
            build_base_image(client, log=log)
        wheels = build_wheelhouse(name, root, log=log)
        ctx_dir = build_dir(root) / "context"
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


def build_images(names: list[str] | None = None, *, force: bool = False, log: Log = print) -> dict[str, str]:
    """Build the named images (default: the CPU images); return {name: tag}."""
    names = list(names) if names else list(CPU_IMAGES)
    return {n: build_image(n, force=force, log=log) for n in names}
