"""Sandbox images: tag hashing (on temporary copies), build-context contents, static checks of the
Dockerfiles, and (integration, docker) the built CPU images running locked down."""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path

import pytest

from evoprompt.evaluator import image_builder, images
from tests.support.docker_util import require_docker, require_sandbox_images

TAG_RE = re.compile(r"^evoprompt-sandbox/(?P<name>[a-z0-9-]+):(?P<hash>[0-9a-f]{12})$")


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small sandbox_images/ copy: two images and a harness package."""
    monkeypatch.delenv("EVOPROMPT_SANDBOX_BASE", raising=False)
    root = tmp_path / "sandbox_images"
    for name in ("torch-cpu", "jax-cpu"):
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text(
            f"ARG BASE={images.LOCAL_BASE_ALIAS}\nFROM ${{BASE}}\n# {name}\n"
        )
        (root / name / "requirements.txt").write_text("numpy==2.4.6\n")
    pkg = root / "harness" / "evoprompt_harness"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""harness"""\n')
    (pkg / "__main__.py").write_text("print('hi')\n")
    return root


def test_tag_format_and_stable(tree: Path) -> None:
    tag = images.image_tag("torch-cpu", tree)
    m = TAG_RE.match(tag)
    assert m and m["name"] == "torch-cpu"
    assert images.image_tag("torch-cpu", tree) == tag
    assert images.image_tag("jax-cpu", tree) != tag


def test_tag_does_not_depend_on_location(tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "sandbox_images"
    shutil.copytree(tree, other)
    assert images.image_tag("torch-cpu", other) == images.image_tag("torch-cpu", tree)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: (r / "torch-cpu" / "Dockerfile").write_text("ARG BASE=x\nFROM ${BASE}\n# changed\n"),
        lambda r: (r / "torch-cpu" / "requirements.txt").write_text("numpy==2.4.5\n"),
        lambda r: (r / "harness" / "evoprompt_harness" / "__main__.py").write_text("print('bye')\n"),
        lambda r: (r / "harness" / "evoprompt_harness" / "extra.py").write_text("X = 1\n"),
        lambda r: (r / "harness" / "evoprompt_harness" / "__main__.py").rename(
            r / "harness" / "evoprompt_harness" / "main2.py"
        ),
        lambda r: (r / "harness" / "evoprompt_harness" / "__init__.py").unlink(),
    ],
    ids=[
        "dockerfile",
        "requirements",
        "harness-content",
        "harness-new-file",
        "harness-rename",
        "harness-removed",
    ],
)
def test_tag_changes_with_inputs(tree: Path, change) -> None:
    before = images.image_tag("torch-cpu", tree)
    change(tree)
    assert images.image_tag("torch-cpu", tree) != before


def test_tag_ignores_bytecode_and_other_images(tree: Path) -> None:
    before = images.image_tag("torch-cpu", tree)
    cache = tree / "harness" / "evoprompt_harness" / "__pycache__"
    cache.mkdir()
    (cache / "__init__.cpython-311.pyc").write_bytes(b"\0junk")
    (tree / "harness" / "evoprompt_harness" / "stray.pyc").write_bytes(b"\0junk")
    (tree / "jax-cpu" / "requirements.txt").write_text("jax==0.10.2\n")
    (tree / "README.md").write_text("docs\n")
    assert images.image_tag("torch-cpu", tree) == before


def test_tag_changes_with_source_only_pins(tree: Path) -> None:
    before = images.image_tag("torch-cpu", tree)
    (tree / "torch-cpu" / images.SDIST_REQUIREMENTS).write_text("promise==2.3\n")
    assert images.image_tag("torch-cpu", tree) != before


def test_tag_changes_with_base(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = images.image_tag("torch-cpu", tree)
    assert images.base_image_tag("torch-cpu", tree, sandbox_base="python:3.11-slim") == "python:3.11-slim"
    slim = images.image_tag("torch-cpu", tree, sandbox_base="python:3.11-slim")
    assert slim != before
    monkeypatch.setattr(images, "BASE_PACKAGES", (*images.BASE_PACKAGES, "libgomp1"))
    assert images.image_tag("torch-cpu", tree) not in (before, slim)


def test_local_base_tag_hashes_package_list(monkeypatch: pytest.MonkeyPatch) -> None:
    tag = images.local_base_tag()
    assert re.fullmatch(re.escape(images.LOCAL_BASE_ALIAS) + r"-[0-9a-f]{12}", tag)
    assert images.local_base_tag() == tag
    monkeypatch.setattr(images, "BASE_PACKAGES", tuple(reversed(images.BASE_PACKAGES)))
    assert images.local_base_tag() == tag  # order does not matter
    monkeypatch.setattr(images, "BASE_PACKAGES", (*images.BASE_PACKAGES, "libgomp1"))
    assert images.local_base_tag() != tag


def test_registry_based_image_uses_dockerfile_default(tree: Path) -> None:
    (tree / "torch-cuda").mkdir()
    (tree / "torch-cuda" / "Dockerfile").write_text(
        "ARG BASE=nvidia/cuda:13.0.2-runtime-ubuntu24.04\nFROM ${BASE}\n"
    )
    (tree / "torch-cuda" / "requirements.txt").write_text("torch==2.13.0\n")
    assert images.base_image_tag("torch-cuda", tree) == "nvidia/cuda:13.0.2-runtime-ubuntu24.04"
    assert TAG_RE.match(images.image_tag("torch-cuda", tree))


def test_unknown_image(tree: Path) -> None:
    with pytest.raises(
        images.ImageBuildError, match="unknown sandbox image 'nope'.*known: jax-cpu, torch-cpu"
    ):
        images.image_tag("nope", tree)


def test_context_contents(tree: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"PK")
    (wheels / ".complete").write_text("x")
    cache = tree / "harness" / "evoprompt_harness" / "__pycache__"
    cache.mkdir()
    (cache / "x.pyc").write_bytes(b"\0")
    (tree / "harness" / "evoprompt_harness" / "__init__.py").chmod(0o600)
    out = tmp_path / "ctx.tar"
    image_builder._write_context("torch-cpu", tree, wheels, out)
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {
        "Dockerfile",
        "requirements.txt",
        "wheels",
        "wheels/numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl",
        "harness",
        "harness/evoprompt_harness",
        "harness/evoprompt_harness/__init__.py",
        "harness/evoprompt_harness/__main__.py",
    }
    for m in members.values():
        assert m.uid == 0 and m.gid == 0
        assert m.mode == (0o755 if m.isdir() else 0o644), m.name  # world-readable for user nobody


def test_wheelhouse_targets_image_python() -> None:
    args = image_builder._platform_args(images.IMAGE_SPECS["torch-cpu"])
    assert "--only-binary=:all:" in args
    assert args[args.index("--python-version") + 1] == "3.11"
    assert args[args.index("--abi") + 1] == "cp311"
    platforms = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    assert any(p.startswith("manylinux_2_36_") for p in platforms)
    assert not any(p.startswith("manylinux_2_37_") for p in platforms)  # bookworm's glibc is 2.36
    cuda = image_builder._platform_args(images.IMAGE_SPECS["torch-cuda"])
    assert cuda[cuda.index("--abi") + 1] == "cp312"


def test_no_engine_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    with pytest.raises(images.ImageBuildError, match="no Docker engine answers at unix://"):
        images.docker_client(timeout=5)


def test_missing_debootstrap_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import docker.errors

    class Images:
        def get(self, tag):
            raise docker.errors.ImageNotFound(tag)

    class Client:
        images = Images()

    monkeypatch.setattr(image_builder.shutil, "which", lambda name: None)
    monkeypatch.setattr(image_builder.os, "access", lambda path, mode: False)
    with pytest.raises(images.ImageBuildError, match="debootstrap not found: `apt-get install debootstrap`"):
        image_builder.build_base_image(Client(), log=lambda line: None)


# ---- the real tree ----------------------------------------------------------------------------


def test_real_tree_layout() -> None:
    root = images.sandbox_images_dir()
    assert (root / "harness").is_dir()
    known = images.known_images()
    assert set(images.FRAMEWORK_IMAGES.values()) <= set(known)
    assert {"torch-cuda", "jax-cuda"} <= set(known)
    for name in known:
        assert TAG_RE.match(images.image_tag(name))


PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!]+$")


@pytest.mark.parametrize("name", ["torch-cpu", "jax-cpu", "clrs-cpu", "torch-cuda", "jax-cuda"])
def test_real_dockerfiles_keep_the_contract(name: str) -> None:
    d = images.sandbox_images_dir() / name
    text = (d / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=\S+$", text, re.M)
    assert "COPY harness/evoprompt_harness /opt/harness/evoprompt_harness" in text
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    assert "python3 -m venv /opt/venv" in text and "--no-index" in text
    for env in (
        "PATH=/opt/venv/bin:",
        "PYTHONPATH=/opt/harness",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        "HOME=/tmp",
        "MPLCONFIGDIR=/tmp",
    ):
        assert env in text, env
    assert re.search(r"^WORKDIR /tmp$", text, re.M)
    assert not re.search(r"^\s*USER\b", text, re.M)
    assert "XLA_FLAGS" not in text
    if name.startswith("jax"):
        assert "import jax" in text
    if name == "clrs-cpu":
        assert "import clrs" in text
    if name.endswith("-cuda"):
        assert re.search(r"^ARG BASE=nvidia/cuda:\S+-runtime-\S+$", text, re.M)
    else:
        assert f"ARG BASE={images.LOCAL_BASE_ALIAS}\n" in text
    lines = [ln.strip() for ln in (d / "requirements.txt").read_text().splitlines()]
    pins = [ln for ln in lines if ln and not ln.startswith("#")]
    assert pins and all(PIN.match(p) for p in pins), [p for p in pins if not PIN.match(p)]
    names = [re.split(r"[\[=]", p)[0].lower().replace("_", "-") for p in pins]
    assert len(names) == len(set(names))
    if name.startswith("torch"):
        assert any(p.startswith("torch==2.13.0") for p in pins)
    elif name == "clrs-cpu":
        assert {"dm-clrs", "dm-haiku", "jax", "jaxlib", "optax", "numpy", "tensorflow", "tfds-nightly"} <= set(names)
        sdists = [ln.strip() for ln in (d / images.SDIST_REQUIREMENTS).read_text().splitlines()]
        sdist_pins = [ln for ln in sdists if ln and not ln.startswith("#")]
        assert sdist_pins and all(PIN.match(p) for p in sdist_pins)
        assert not {p.split("==")[0] for p in sdist_pins} & set(names)  # each pin in one file only
    else:
        assert {"jax", "jaxlib", "flax", "optax", "numpy"} <= set(names)


# ---- built images -----------------------------------------------------------------------------

IMPORT_CHECKS = {
    "torch-cpu": "import torch, numpy; print('ok', torch.__version__, float(torch.ones(3).sum()))",
    "jax-cpu": "import jax, flax, optax; import jax.numpy as jnp; import flax.linen; "
    "print('ok', jax.__version__, float(jnp.ones(3).sum()))",
    "clrs-cpu": "import clrs, haiku, jax, tensorflow; import jax.numpy as jnp; "
    "print('ok', jax.__version__, float(jnp.ones(3).sum()))",
}


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.parametrize("name", sorted(IMPORT_CHECKS))
def test_built_image_runs_locked_down(name: str) -> None:
    client = require_docker()
    tags = require_sandbox_images(list(IMPORT_CHECKS))
    tag = tags[name]
    assert tag == images.image_tag(name)
    assert images.image_present(client, tag)
    assert images.missing_images(client, list(IMPORT_CHECKS)) == []
    code = (
        IMPORT_CHECKS[name] + "; import os, sys, evoprompt_harness; "
        "assert sys.executable == '/opt/venv/bin/python', sys.executable; "
        "assert os.getcwd() == '/tmp' and os.environ['HOME'] == '/tmp'; "
        "assert os.getuid() == 65534; "
        "assert not os.access('/opt/venv', os.W_OK)"
    )
    out = client.containers.run(
        tag,
        ["python", "-c", code],
        network_mode="none",
        read_only=True,
        user="65534:65534",
        tmpfs={"/tmp": "size=64m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mem_limit="2g",
        pids_limit=256,
        remove=True,
        stdout=True,
        stderr=False,  # tensorflow logs its start-up on stderr
    ).decode()
    assert out.startswith("ok "), out
