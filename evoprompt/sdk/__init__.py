"""The EvoPrompting evaluator SDK: a thin, typed gRPC client (depends on grpcio and protobuf only).

    from evoprompt.sdk import EvaluatorClient
    with EvaluatorClient("127.0.0.1:50051") as client:
        result = client.evaluate("mnist1d", "torch", code, max_steps=1000)
        print(result.status.name, result.val_accuracy, result.num_params)
"""

from ._policy import RetryPolicy
from .aio import AsyncEvaluatorClient
from .client import EvaluatorClient, new_request_id
from .errors import (
    AuthenticationError,
    CancelledError,
    DeadlineExceededError,
    EvaluatorError,
    EvaluatorUnavailableError,
    InvalidRequestError,
    NotFoundError,
    QueueFullError,
)
from .types import Checkpoint, EvaluationRequest, EvaluationResult, ServerInfo, Status, TaskInfo

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
    "InvalidRequestError",
    "NotFoundError",
    "QueueFullError",
    "RetryPolicy",
    "ServerInfo",
    "Status",
    "TaskInfo",
    "new_request_id",
]
