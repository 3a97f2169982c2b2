"""Sandbox images as the server sees them: which image runs each framework, their specs, where their
recipes live, their tags, and whether the engine has them. Building them is `image_builder`'s job.

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

The ``sandbox_base`` setting (``EVOPROMPT_SANDBOX_BASE``, ``--sandbox-base``) replaces the local Debian
base of the CPU images with another Python 3.11 image (e.g. ``python:3.11-slim`` where Docker Hub is
reachable); the tag changes with it, so the evaluator and the builder agree as long as both have the
same settings. Callers pass it (`sandbox_base=settings.sandbox_base`); one that passes nothing gets
the local Debian base.

Heavy imports (docker) stay inside functions: the evaluator imports this module on every start.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evoprompt.sdk.errors import UserError

__all__ = [
    "FRAMEWORK_IMAGES",
    "FRAMEWORK_GPU_IMAGES",
    "CPU_IMAGES",
    "ImageBuildError",
    "ImageSpec",
    "IMAGE_SPECS",
    "sandbox_images_dir",
    "known_images",
    "base_image_tag",
    "configured",
    "ImageSettings",
    "local_base_tag",
    "image_tag",
    "image_present",
    "missing_images",
    "docker_client",
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


@dataclass(frozen=True)
class ImageSettings:
    """The evaluator's settings of its images ("": the built-in choice), handed to whoever builds or tags."""

    sandbox_base: str = ""
    build_dir: str = ""
    debian_mirror: str = ""

    def as_kwargs(self) -> dict[str, str]:
        return {"sandbox_base": self.sandbox_base, "build_dir": self.build_dir,
                "debian_mirror": self.debian_mirror or None}


class ImageBuildError(UserError):
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
    """The `sandbox_images/` folder: `evoprompt/evaluator/_sandbox_images` inside an installed wheel,
    or the repository's (evaluator/src/evoprompt/evaluator -> the checkout's root) for a checkout."""
    package_dir = Path(__file__).resolve().parent
    candidates = (package_dir / "_sandbox_images", package_dir.parents[3] / "sandbox_images")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ImageBuildError(
        f"no sandbox_images folder found (looked in {' and '.join(map(str, candidates))}); "
        "reinstall evoprompt-evaluator or run from a checkout"
    )


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


def configured(name: str, value: str | None) -> str:
    """`value`, or the setting `name`'s default ("": the built-in choice) when a caller passes none. The
    values come from the caller's settings object (EVOPROMPT_<NAME>, --config, flags); this module reads
    no environment, so a builder and a server given the same settings agree on every tag."""
    return "" if value is None else value


def base_image_tag(name: str, root: Path | None = None, *, sandbox_base: str | None = None) -> str:
    """The image `name` is built FROM: `sandbox_base` (the setting; None or "": the default) or
    the local Debian base for the CPU images; the Dockerfile's own `ARG BASE` default (a registry
    image) for the others."""
    root = root or sandbox_images_dir()
    spec = _spec(name)
    if spec.local_base:
        return configured("sandbox_base", sandbox_base) or local_base_tag()
    default = _dockerfile_default_base(_image_dir(name, root) / "Dockerfile")
    if not default:
        raise ImageBuildError(f"{root / name / 'Dockerfile'} has no `ARG BASE=<image>` line")
    return default


def image_tag(name: str, root: Path | None = None, *, sandbox_base: str | None = None) -> str:
    """`evoprompt-sandbox/<name>:<hash12>`, the hash over the Dockerfile, requirements.txt, every
    harness file (sorted relative paths and contents; no __pycache__ or *.pyc) and the base tag
    (`sandbox_base`: see `base_image_tag`)."""
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
    _feed(h, "base", base_image_tag(name, root, sandbox_base=sandbox_base).encode())
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
            "the docker Python package is missing: pip install docker"
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


def missing_images(client, names: Iterable[str], *, sandbox_base: str | None = None) -> list[str]:
    """The names among `names` whose current tag the engine does not have."""
    return [n for n in names if not image_present(client, image_tag(n, sandbox_base=sandbox_base))]
