"""Sandbox back-ends behind one interface, chosen by name."""

from __future__ import annotations

import hashlib

from .base import GpuShare, Limits, Sandbox, SandboxJob, SandboxRun


def make_sandbox(backend: str, *, owner_key: str, runtime: str = "", gpu: bool = False,
                 build_images: bool = False) -> Sandbox:
    """`owner_key` (the result store's path) labels containers so a restarted server finds its own;
    `gpu` picks the CUDA images, `build_images` builds missing ones on first need (docker back-end)."""
    if backend == "process":
        from .process import ProcessSandbox

        return ProcessSandbox()
    if backend == "docker":
        from .docker import DockerSandbox

        return DockerSandbox(owner=hashlib.sha256(owner_key.encode()).hexdigest()[:16], runtime=runtime or None,
                             gpu=gpu, build_missing=build_images)
    raise ValueError(f"unknown sandbox back-end {backend!r}; choose docker or process")


__all__ = ["GpuShare", "Limits", "Sandbox", "SandboxJob", "SandboxRun", "make_sandbox"]
