"""The EvoPrompting evaluator SDK: a thin, typed gRPC client (depends on grpcio and protobuf only).

    from evoprompt.sdk import EvaluatorClient
    with EvaluatorClient("127.0.0.1:50051") as client:
        result = client.evaluate("mnist1d", "torch", code, max_steps=1000)
        print(result.status.name, result.val_accuracy, result.num_params)
"""

from importlib import metadata

from ._core import RetryPolicy, new_request_id
from .aio import AsyncEvaluatorClient
from .client import EvaluatorClient
from .errors import (
    AuthenticationError,
    CancelledError,
    DeadlineExceededError,
    EvaluatorError,
    EvaluatorUnavailableError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    QueueFullError,
)
from .types import Checkpoint, EvaluationRequest, EvaluationResult, ServerInfo, Status, TaskInfo

__version__ = metadata.version("evoprompt-sdk")

__all__ = [
    "AsyncEvaluatorClient",
    "AuthenticationError",
    "CancelledError",
    "Checkpoint",
    "DeadlineExceededError",
    "EvaluationRequest",
    "EvaluationResult",
    "EvaluatorClient",
    "EvaluatorError",
    "EvaluatorUnavailableError",
    "InternalError",
    "InvalidRequestError",
    "NotFoundError",
    "QueueFullError",
    "RetryPolicy",
    "ServerInfo",
    "Status",
    "TaskInfo",
    "new_request_id",
]
