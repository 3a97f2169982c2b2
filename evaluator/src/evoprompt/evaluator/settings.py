"""One typed settings object for the evaluator: defaults < TOML file < EVOPROMPT_* env < CLI flags.

Each field carries its help text (and, where it has them, its choices) in its metadata: `evoprompt
serve` makes its flags from the fields (`serve_flags`), the TOML `[evaluator]` table and the
`EVOPROMPT_<NAME>` variables use the fields' names, and `load_settings` is the one reader of all
three, so a new setting is one field here. A field whose metadata has `serve: False` is no flag
(a secret, or a per-node value); `flag` names a flag that is not the field's name in kebab case.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from evoprompt.sdk.errors import UserError

from .images import DEFAULT_DEBIAN_MIRROR, ImageSettings
from .sandbox.base import GpuShare, Limits

BACKENDS = ("docker", "process")
EXECUTORS = ("local", "ray")
ENV_PREFIX = "EVOPROMPT_"


class SettingsError(UserError, ValueError):
    """The settings cannot work (a bad value, an unknown name, an unreadable --config file); says which."""


def default_home() -> Path:
    """~/.cache/evoprompt; a standalone server reads EVOPROMPT_HOME through `load_settings`."""
    return Path.home() / ".cache" / "evoprompt"


def _setting(default: Any = None, help: str = "", *, factory: Any = None, **meta: Any) -> Any:
    """A settings field: its default (or default factory) and its help text, plus `means` (what the
    default does, where its value does not say), `flag`, `choices` or `serve=False` (see the module's
    docstring)."""
    metadata = {"help": help, **meta}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class EvaluatorSettings:
    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(50051, "port to listen on (0 picks a free one)")
    backend: str = _setting("docker", "sandbox back-end (process is NOT a security boundary)", choices=BACKENDS)
    slots: int = _setting(1, "evaluations run at once (CPU; with --gpus, --slots-per-gpu per GPU instead)")
    queue_capacity: int = _setting(64, "evaluations that may wait for a slot; more are refused as queue full",
                                   flag="--queue")
    timeout: float = _setting(900.0, "wall-clock limit of one evaluation, seconds")
    memory_gb: float = _setting(4.0, "memory limit of one sandbox, GB (swap included)")
    cpus: float = _setting(1.0, "CPUs of one sandbox")
    pids: int = _setting(256, "process limit of one sandbox")
    output_mb: int = _setting(256, "size limit of one sandbox's output folder, MB")
    tmpfs_mb: int = _setting(256, "size of one sandbox's /tmp and /dev/shm, MB")
    gpus: tuple[str, ...] = _setting((), "comma-separated GPU ids; each slot gets one GPU alone", means="CPU slots")
    slots_per_gpu: int = _setting(1, "slots sharing each GPU of --gpus (each gets 1/K of its memory)")
    runtime: str = _setting("", "Docker runtime of the sandboxes, e.g. runsc (gVisor)", means="the engine's default")
    home: Path = _setting(factory=default_home, help="folder of the result store, job files and data")
    metrics_port: int = _setting(0, "serve Prometheus /metrics on this port", means="no metrics endpoint")
    token: str = _setting("", "require this bearer token on every call but health checks (or EVOPROMPT_TOKEN)",
                          means="every caller is served")
    tls_cert: str = _setting("", "PEM certificate chain: serve TLS only (with --tls-key)")
    tls_key: str = _setting("", "PEM private key of --tls-cert")
    # MNIST-1D's generator is public: held-out labels come from a secret seed (read from here, else from
    # <home>/data_secret, made on first start) unless public_data asks for the published data set
    data_secret: str = _setting("", "secret seed of the held-out MNIST-1D data (EVOPROMPT_DATA_SECRET; a fleet's "
                                "servers share one)", means="one made on first start in HOME/data_secret",
                                serve=False)  # a secret: never on a command line, where `ps` shows it
    public_data: bool = _setting(False, "score on MNIST-1D's published data (seed 42) to compare with published "
                                 "figures; candidates can replay it, so scores are forgeable",
                                 means="a secret seed, kept in HOME/data_secret; a fleet shares one by "
                                 "EVOPROMPT_DATA_SECRET")
    clrs_eval_samples: int = _setting(0, "CLRS held-out samples per split; fewer are for smoke tests on a CPU",
                                      means="dm-clrs run.py's")
    clrs_test_length: int = _setting(64, "CLRS test graph size (CLRS-30's: 64; at least 4)")
    frameworks: tuple[str, ...] = _setting((), "comma-separated frameworks whose sandboxes are checked, built and "
                                           "warmed at start", means="each framework's on its first job")
    build_images: bool = _setting(True, "build a missing sandbox image on first need; off, a missing image is an "
                                  "error that says to run `evoprompt images build`")
    pool_size: int = _setting(2, "sandboxes started ahead of need per slot and framework in use (0: each "
                              "evaluation starts its own; 2: one for a job's training, one for its verifier)")
    pool_max_idle: float = _setting(600.0, "seconds a warm sandbox may wait before a fresh one replaces it")
    executor: str = _setting("local", "where evaluations run: this machine's slots (local) or the nodes of the "
                             "Ray cluster at --ray-address (ray), each with its own sandboxes", choices=EXECUTORS)
    ray_address: str = _setting("auto", "the Ray cluster (ray): auto (the cluster this machine is a node of) "
                                "or HOST:PORT")
    ray_in_flight: int = _setting(0, "evaluations handed to the Ray cluster at once",
                                  means="its slots when the server starts")
    ray_gpu_share: int = _setting(0, "ray: each evaluation takes 1/K of a GPU on its node", means="CPU only")
    sandbox_base: str = _setting("", "the Python 3.11 image the CPU sandbox images are built FROM, e.g. "
                                 "python:3.11-slim where a registry is reachable; part of the images' tags",
                                 means="the local Debian base, made by debootstrap")
    build_dir: str = _setting("", "folder of the image builds' wheelhouses, contexts and base root filesystem",
                              means="the checkout's build/, else ~/.cache/evoprompt/build")
    debian_mirror: str = _setting(DEFAULT_DEBIAN_MIRROR, "Debian mirror debootstrap makes the sandbox base from")
    node_name: str = _setting("", "this machine's name as a Ray node, in `worker` and its sandboxes' labels",
                              means="the host name",
                              serve=False)  # one per node: the agent reads it (EVOPROMPT_NODE_NAME), not the front door

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

    @property
    def image_settings(self) -> ImageSettings:
        return ImageSettings(self.sandbox_base, self.build_dir, self.debian_mirror)

    def slot_plan(self) -> list[GpuShare | None]:
        """One entry per worker slot: with GPUs, `slots_per_gpu` slots share each listed device."""
        if self.gpus:
            return [GpuShare(gpu, self.slots_per_gpu) for gpu in self.gpus for _ in range(self.slots_per_gpu)]
        return [None] * self.slots


def _default(f: Field) -> Any:
    return f.default if f.default_factory is MISSING else f.default_factory()


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
        raise SettingsError(f"setting {name!r}: cannot read {raw!r} as true/false")
    if isinstance(default, Path):
        return Path(raw).expanduser().resolve()  # bind mounts need absolute paths
    try:
        return type(default)(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {name!r}: cannot read {raw!r} as {type(default).__name__}") from None


def _read_config(config: Path) -> dict[str, Any]:
    try:
        with open(config, "rb") as f:
            table = tomllib.load(f).get("evaluator", {})
    except OSError as exc:
        raise SettingsError(f"cannot read --config {config}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"--config {config} is not TOML: {exc}") from None
    if not isinstance(table, dict):
        raise SettingsError(f"--config {config}: `evaluator` must be a table ([evaluator])")
    return table


def load_settings(config: Path | None = None, overrides: dict[str, Any] | None = None) -> EvaluatorSettings:
    """Build settings from a TOML file ([evaluator] table), EVOPROMPT_<NAME> variables and overrides
    (None: not given); raises SettingsError saying which setting is wrong and why."""
    base = EvaluatorSettings()
    values: dict[str, Any] = {}
    if config is not None:
        values.update(_read_config(config))
    for f in fields(base):
        env = os.environ.get(f"{ENV_PREFIX}{f.name.upper()}")
        if env is not None:
            values[f.name] = env
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = {f.name for f in fields(base)}
    unknown = set(values) - known
    if unknown:
        raise SettingsError(f"unknown evaluator setting(s): {', '.join(sorted(unknown))}")
    typed = {k: _coerce(k, v, getattr(base, k)) for k, v in values.items()}
    return validate_settings(replace(base, **typed))


def setting_field_from_environment(name: str) -> Any:
    """One setting from its EVOPROMPT_<NAME> variable alone (else its default), for an embedded server
    that takes nothing else from the environment (embedded.py: the images' settings)."""
    f = next(f for f in fields(EvaluatorSettings) if f.name == name)
    default = _default(f)
    raw = os.environ.get(f"{ENV_PREFIX}{name.upper()}")
    return default if raw is None else _coerce(name, raw, default)


def validate_settings(settings: EvaluatorSettings) -> EvaluatorSettings:
    """Refuse settings that cannot work, with a message saying which and why (SettingsError); returns them."""
    if settings.backend not in BACKENDS:
        raise SettingsError(f"backend must be 'docker' or 'process', not {settings.backend!r}")
    if settings.slots < 1 or settings.slots_per_gpu < 1 or settings.queue_capacity < 1:
        raise SettingsError("slots, slots_per_gpu and queue_capacity must be at least 1")
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise SettingsError("TLS needs both tls_cert and tls_key")
    if settings.clrs_eval_samples < 0 or settings.clrs_test_length < 4:
        raise SettingsError("clrs_eval_samples must be 0 (dm-clrs' sizes) or positive; clrs_test_length at least 4")
    if settings.public_data and settings.data_secret:
        raise SettingsError("choose public_data or a data_secret, not both")
    if settings.timeout <= 0:
        raise SettingsError("timeout must be positive")
    if settings.pool_size < 0 or settings.pool_max_idle <= 0:
        raise SettingsError("pool_size must be 0 (no warm pool) or more, and pool_max_idle positive")
    if settings.executor not in EXECUTORS:
        raise SettingsError(f"executor must be 'local' or 'ray', not {settings.executor!r}")
    if settings.ray_in_flight < 0 or settings.ray_gpu_share < 0:
        raise SettingsError("ray_in_flight and ray_gpu_share must be 0 (automatic / CPU) or more")
    if settings.executor == "ray" and settings.gpus:
        raise SettingsError("with the ray executor the GPUs are the nodes': drop --gpus and set --ray-gpu-share K "
                            "(each evaluation takes 1/K of a GPU)")
    return settings


# ---- command-line flags from the fields -------------------------------------------------------


def flag_fields() -> list[Field]:
    """The fields that are `evoprompt serve` flags, in declaration order."""
    return [f for f in fields(EvaluatorSettings) if f.metadata.get("serve", True)]


def flag_name(f: Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _shown(value: Any) -> str:
    """A default as the help text shows it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path):
        home = Path.home()
        return f"~/{value.relative_to(home)}" if value.is_relative_to(home) else str(value)
    return str(value) if value != "" else "none"


def describe_default(f: Field) -> str:
    """`f`'s default as help texts show it, with what it means where its value does not say."""
    shown = _shown(_default(f))
    return f"{shown}: {f.metadata['means']}" if f.metadata.get("means") else shown


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per settings field (see `flag_fields`): its type from the field's default (a tuple
    is comma-separated, a bool is `--NAME`/`--no-NAME`), its help from the field, with the default.
    Every flag defaults to None, so a flag left out does not override the TOML file or the environment."""
    for f in flag_fields():
        default = _default(f)
        help_text = f"{f.metadata['help']} (default: {describe_default(f)})".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = (_comma_list if isinstance(default, tuple) else Path if isinstance(default, Path)
                              else type(default))
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag_name(f), **kwargs)


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags of `add_settings_arguments` that were given, for `load_settings(overrides=...)`."""
    return {f.name: getattr(args, f.name) for f in flag_fields() if getattr(args, f.name, None) is not None}
