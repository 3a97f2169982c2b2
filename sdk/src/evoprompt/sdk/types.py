"""Typed, immutable views of the API's messages, so callers never handle protobuf objects.

`Status` mirrors the proto enum by name and number (a unit test checks that they agree).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from .proto import evaluator_pb2 as pb


class Status(enum.IntEnum):
    STATUS_UNSPECIFIED = 0
    OK = 1
    COMPILE_ERROR = 2
    RUNTIME_ERROR = 3
    TIMEOUT = 4
    OOM = 5
    OUTPUT_LIMIT = 6
    INVALID_OUTPUT = 7
    CANCELLED = 8
    REJECTED = 9
    INTERNAL_ERROR = 10
    NOT_EXPORTABLE = 11
    VERIFICATION_FAILED = 12


@dataclass(frozen=True)
class Checkpoint:
    """Validation and test accuracy at one training step, computed by the server."""

    step: int
    val_accuracy: float
    test_accuracy: float


@dataclass(frozen=True)
class EvaluationResult:
    """One EvaluateResponse. Field names are the proto's; `status` is a `Status`."""

    request_id: str
    status: Status
    val_accuracy: float = 0.0
    test_accuracy: float = 0.0
    num_params: int = 0
    num_state: int = 0
    best_step: int = 0
    wall_seconds: float = 0.0
    train_seconds: float = 0.0
    message: str = ""
    stderr_tail: str = ""
    cached: bool = False
    code_sha256: str = ""
    task: str = ""
    framework: str = ""
    steps: int = 0
    seed: int = 0
    sandbox: str = ""
    checkpoints: tuple[Checkpoint, ...] = field(default_factory=tuple)
    worker: str = ""  # where it ran: "local", or the Ray node
    verified: bool = False  # scores from the verifier (the exported model, rebuilt without candidate code)
    check_accuracy: float = 0.0
    cpu_seconds: float = 0.0
    verify_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def val_error(self) -> float:
        return 1.0 - self.val_accuracy

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the EvaluateResponse field names, status as its enum name."""
        data = asdict(self)
        data["status"] = self.status.name
        data["checkpoints"] = [asdict(c) for c in self.checkpoints]
        return data

    @classmethod
    def from_proto(cls, msg: pb.EvaluateResponse) -> EvaluationResult:
        return cls(
            request_id=msg.request_id,
            status=_status(msg.status),
            val_accuracy=msg.val_accuracy,
            test_accuracy=msg.test_accuracy,
            num_params=msg.num_params,
            num_state=msg.num_state,
            best_step=msg.best_step,
            wall_seconds=msg.wall_seconds,
            train_seconds=msg.train_seconds,
            message=msg.message,
            stderr_tail=msg.stderr_tail,
            cached=msg.cached,
            code_sha256=msg.code_sha256,
            task=msg.task,
            framework=msg.framework,
            steps=msg.steps,
            seed=msg.seed,
            sandbox=msg.sandbox,
            checkpoints=tuple(
                Checkpoint(step=c.step, val_accuracy=c.val_accuracy, test_accuracy=c.test_accuracy)
                for c in msg.checkpoints
            ),
            worker=msg.worker,
            verified=msg.verified,
            check_accuracy=msg.check_accuracy,
            cpu_seconds=msg.cpu_seconds,
            verify_seconds=msg.verify_seconds,
        )

    def to_proto(self) -> pb.EvaluateResponse:
        fields = {k: v for k, v in asdict(self).items() if k != "checkpoints"}
        fields["status"] = int(self.status)
        return pb.EvaluateResponse(
            **fields,
            checkpoints=[pb.Checkpoint(step=c.step, val_accuracy=c.val_accuracy, test_accuracy=c.test_accuracy)
                         for c in self.checkpoints],
        )


def _status(value: int) -> Status:
    try:
        return Status(value)
    except ValueError:  # a newer server's status this client does not know
        return Status.STATUS_UNSPECIFIED


@dataclass(frozen=True)
class EvaluationRequest:
    """One candidate to evaluate. An empty request_id gets a fresh one from the client."""

    task: str
    framework: str
    code: str
    max_steps: int = 0
    seed: int = 0
    request_id: str = ""
    timeout_seconds: float = 0.0

    def to_proto(self) -> pb.EvaluateRequest:
        return pb.EvaluateRequest(
            request_id=self.request_id, task=self.task, framework=self.framework, code=self.code,
            max_steps=self.max_steps, seed=self.seed, timeout_seconds=self.timeout_seconds,
        )


@dataclass(frozen=True)
class TaskInfo:
    name: str
    frameworks: tuple[str, ...]
    default_steps: int
    max_steps: int
    description: str

    @classmethod
    def from_proto(cls, msg: pb.TaskInfo) -> TaskInfo:
        return cls(msg.name, tuple(msg.frameworks), msg.default_steps, msg.max_steps, msg.description)


@dataclass(frozen=True)
class NodeInfo:
    """One machine evaluations run on: "local", or a Ray node."""

    name: str
    slots: int
    free_slots: int
    gpus: tuple[str, ...] = ()
    warm: int = 0

    @classmethod
    def from_proto(cls, msg: pb.NodeInfo) -> NodeInfo:
        return cls(msg.name, msg.slots, msg.free_slots, tuple(msg.gpus), msg.warm)

    def to_proto(self) -> pb.NodeInfo:
        return pb.NodeInfo(name=self.name, slots=self.slots, free_slots=self.free_slots, gpus=list(self.gpus),
                           warm=self.warm)


@dataclass(frozen=True)
class ServerInfo:
    version: str
    backend: str
    slots: int
    queue_capacity: int
    queued: int
    running: int
    gpus: tuple[str, ...]
    images: dict[str, str]
    max_code_bytes: int
    timeout_seconds: float
    executor: str = "local"
    nodes: tuple[NodeInfo, ...] = ()

    @classmethod
    def from_proto(cls, msg: pb.ServerInfo) -> ServerInfo:
        return cls(msg.version, msg.backend, msg.slots, msg.queue_capacity, msg.queued, msg.running,
                   tuple(msg.gpus), dict(msg.images), msg.max_code_bytes, msg.timeout_seconds,
                   msg.executor or "local", tuple(NodeInfo.from_proto(n) for n in msg.nodes))
