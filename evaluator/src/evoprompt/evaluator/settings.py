"""One typed settings object for the evaluator: defaults < TOML file < EVOPROMPT_* env < CLI flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .sandbox.base import GpuShare, Limits


def default_home() -> Path:
    """~/.cache/evoprompt; a standalone server reads EVOPROMPT_HOME through `load_settings`."""
    return Path.home() / ".cache" / "evoprompt"


@dataclass(frozen=True)
class EvaluatorSettings:
    host: str = "127.0.0.1"
    port: int = 50051
    backend: str = "docker"  # docker | process
    slots: int = 1
    queue_capacity: int = 64
    timeout: float = 900.0  # wall-clock seconds of one evaluation
    memory_gb: float = 4.0
    cpus: float = 1.0
    pids: int = 256
    output_mb: int = 256
    tmpfs_mb: int = 256
    gpus: tuple[str, ...] = ()
    slots_per_gpu: int = 1
    runtime: str = ""  # docker runtime, e.g. runsc (gVisor)
    home: Path = field(default_factory=default_home)
    metrics_port: int = 0  # 0: no Prometheus endpoint
    token: str = ""  # bearer token every call must carry (health checks excepted); "" = open
    tls_cert: str = ""  # PEM certificate chain; with tls_key, the port speaks TLS only
    tls_key: str = ""
    # MNIST-1D's generator is public: held-out labels come from a secret seed (read from here, else from
    # <home>/data_secret, made on first start) unless public_data asks for the published data set
    data_secret: str = ""
    public_data: bool = False
    # CLRS held-out data: samples per split (0 = dm-clrs run.py's) and test graph size (CLRS-30: 64);
    # smaller ones are for smoke tests on a CPU
    clrs_eval_samples: int = 0
    clrs_test_length: int = 64
    # frameworks whose sandboxes this server prepares at start (empty: every task's); an embedded
    # server for an MNIST-1D torch run needs only torch's image, not the 3 GB CLRS one
    frameworks: tuple[str, ...] = ()
    # a missing sandbox image is built on first need (at start for `frameworks`, else when a job needs
    # it); off, a missing image is an error that says to run `evoprompt images build`
    build_images: bool = True
    # sandboxes started ahead of need, per slot and framework in use (0: each evaluation starts its own);
    # one that waited longer than pool_max_idle seconds is replaced by a fresh one
    pool_size: int = 1
    pool_max_idle: float = 600.0
    # where evaluations run: "local" (this machine's slots) or "ray" (the nodes of the Ray cluster at
    # ray_address, each with its own sandboxes and warm pool; fleet/)
    executor: str = "local"
    ray_address: str = "auto"
    # ray: evaluations handed to the cluster at once (0: the cluster's slots when the server starts)
    ray_in_flight: int = 0
    # ray: 0 = CPU evaluations; K = each takes 1/K of a GPU (Ray packs K on a device)
    ray_gpu_share: int = 0

    @property
    def store_path(self) -> Path:
        return self.home / "results.sqlite3"

    @property
    def data_secret_path(self) -> Path:
        return self.home / "data_secret"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    @property
    def limits(self) -> Limits:
        return Limits(
            memory_bytes=int(self.memory_gb * 1024**3),
            cpus=self.cpus,
            pids=self.pids,
            output_bytes=self.output_mb * 1024**2,
            tmpfs_bytes=self.tmpfs_mb * 1024**2,
        )

    def slot_plan(self) -> list[GpuShare | None]:
        """One entry per worker slot: with GPUs, `slots_per_gpu` slots share each listed device."""
        if self.gpus:
            return [GpuShare(gpu, self.slots_per_gpu) for gpu in self.gpus for _ in range(self.slots_per_gpu)]
        return [None] * self.slots


def _coerce(name: str, raw: Any, default: Any) -> Any:
    if isinstance(default, tuple):
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(str(i).strip() for i in items if str(i).strip())
    if isinstance(default, bool):
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"setting {name!r}: cannot read {raw!r} as true/false")
    if isinstance(default, Path):
        return Path(raw).expanduser().resolve()  # bind mounts need absolute paths
    try:
        return type(default)(raw)
    except (TypeError, ValueError):
        raise ValueError(f"setting {name!r}: cannot read {raw!r} as {type(default).__name__}") from None


def load_settings(config: Path | None = None, overrides: dict[str, Any] | None = None) -> EvaluatorSettings:
    """Build settings from a TOML file ([evaluator] table), EVOPROMPT_<NAME> variables and overrides."""
    base = EvaluatorSettings()
    values: dict[str, Any] = {}
    if config is not None:
        with open(config, "rb") as f:
            values.update(tomllib.load(f).get("evaluator", {}))
    for f in fields(base):
        env = os.environ.get(f"EVOPROMPT_{f.name.upper()}")
        if env is not None:
            values[f.name] = env
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = {f.name for f in fields(base)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown evaluator setting(s): {', '.join(sorted(unknown))}")
    typed = {k: _coerce(k, v, getattr(base, k)) for k, v in values.items()}
    return validate_settings(replace(base, **typed))


def validate_settings(settings: EvaluatorSettings) -> EvaluatorSettings:
    """Refuse settings that cannot work, with a message saying which and why; returns them."""
    if settings.backend not in ("docker", "process"):
        raise ValueError(f"backend must be 'docker' or 'process', not {settings.backend!r}")
    if settings.slots < 1 or settings.slots_per_gpu < 1 or settings.queue_capacity < 1:
        raise ValueError("slots, slots_per_gpu and queue_capacity must be at least 1")
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ValueError("TLS needs both tls_cert and tls_key")
    if settings.clrs_eval_samples < 0 or settings.clrs_test_length < 4:
        raise ValueError("clrs_eval_samples must be 0 (dm-clrs' sizes) or positive; clrs_test_length at least 4")
    if settings.public_data and settings.data_secret:
        raise ValueError("choose public_data or a data_secret, not both")
    if settings.timeout <= 0:
        raise ValueError("timeout must be positive")
    if settings.pool_size < 0 or settings.pool_max_idle <= 0:
        raise ValueError("pool_size must be 0 (no warm pool) or more, and pool_max_idle positive")
    if settings.executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', not {settings.executor!r}")
    if settings.ray_in_flight < 0 or settings.ray_gpu_share < 0:
        raise ValueError("ray_in_flight and ray_gpu_share must be 0 (automatic / CPU) or more")
    if settings.executor == "ray" and settings.gpus:
        raise ValueError("with the ray executor the GPUs are the nodes': drop --gpus and set --ray-gpu-share K "
                         "(each evaluation takes 1/K of a GPU)")
    return settings
