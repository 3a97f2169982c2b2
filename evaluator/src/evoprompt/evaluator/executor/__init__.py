"""Executors (where evaluations run), chosen by one factory from the server's settings."""

from __future__ import annotations

from ..instance import POOL, Instance
from ..sandbox import make_sandbox
from ..sandbox.base import PoolSettings
from ..settings import EvaluatorSettings
from .base import Executor
from .local import LocalExecutor


def make_executor(settings: EvaluatorSettings, instance: Instance) -> Executor:
    """This machine's sandboxes (`local`), or the Ray cluster's nodes (`ray`), for the server whose claim
    on its work folder is `instance`."""
    owner_key = str(settings.store_path.resolve())
    if settings.executor == "ray":
        from ..fleet.executor import RayExecutor

        return RayExecutor(settings, f"{owner_key}#{instance.id}", owner_key)
    sandbox = make_sandbox(settings.backend, owner_key=owner_key, instance=instance.id, runtime=settings.runtime,
                           gpu=bool(settings.gpus), build_images=settings.build_images,
                           image_settings=settings.image_settings)
    pool = PoolSettings(root=instance.dir / POOL, slots=tuple(settings.slot_plan()),
                        limits=settings.limits, size=settings.pool_size, max_idle=settings.pool_max_idle,
                        frameworks=settings.frameworks)
    return LocalExecutor(sandbox, pool, instance)


__all__ = ["Executor", "LocalExecutor", "make_executor"]
