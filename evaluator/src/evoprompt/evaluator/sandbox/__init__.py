"""Sandbox back-ends behind one interface (one sandbox's life), chosen by name; the one job loop that
drives them (lifecycle.py) and the warm pool (pool.py)."""

from __future__ import annotations

import hashlib

from ..images import ImageSettings
from .base import Box, GpuShare, Limits, PoolSettings, Sandbox, SandboxFailure, SandboxJob, SandboxRun


def owner_label(owner_key: str) -> str:
    """The label every sandbox of one home (`owner_key`: its result store's path) carries."""
    return hashlib.sha256(owner_key.encode()).hexdigest()[:16]


def make_sandbox(backend: str, *, owner_key: str, instance: str = "", runtime: str = "", gpu: bool = False,
                 build_images: bool = False, image_settings: ImageSettings | None = None) -> Sandbox:
    """`owner_key` labels containers so that the instances of one home find theirs, `instance` says which
    instance started them (instance.py); `gpu` picks the CUDA images, `build_images` builds missing ones
    on first need (docker back-end)."""
    if backend == "process":
        from .process import ProcessSandbox

        return ProcessSandbox()
    if backend == "docker":
        from .docker import DockerSandbox

        return DockerSandbox(owner=owner_label(owner_key), runtime=runtime or None, gpu=gpu,
                             build_missing=build_images, instance=instance, image_settings=image_settings)
    raise ValueError(f"unknown sandbox back-end {backend!r}; choose docker or process")




def sandbox_id_for(backend: str, framework: str, *, gpu: bool = False, sandbox_base: str = "") -> str:
    """What `backend` runs `framework`'s candidates in, without making a sandbox (a Ray front door
    tells its nodes what they must run)."""
    if backend == "process":
        from .process import ProcessSandbox

        return ProcessSandbox.ID
    if backend == "docker":
        from ..images import FRAMEWORK_GPU_IMAGES, FRAMEWORK_IMAGES, image_tag

        return image_tag((FRAMEWORK_GPU_IMAGES if gpu else FRAMEWORK_IMAGES)[framework], sandbox_base=sandbox_base)
    raise ValueError(f"unknown sandbox back-end {backend!r}; choose docker or process")


__all__ = ["Box", "GpuShare", "Limits", "PoolSettings", "Sandbox", "SandboxFailure", "SandboxJob", "SandboxRun",
           "make_sandbox", "owner_label", "sandbox_id_for"]
