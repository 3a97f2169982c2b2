"""What the evaluator does with each status, decided here and nowhere else.

- CLAIMABLE: the failures a sandbox may report for itself (in result.json, with exit status 3);
  any other claim becomes RUNTIME_ERROR. What the host observes (timeout, OOM kill, output limit,
  cancellation) never comes from the sandbox's word.
- STORED: kept under their request_id, so a retried id gets its first answer back. CANCELLED and
  INTERNAL_ERROR are not: a retry of that id runs again.
- CACHEABLE: reproduced by the same inputs, so identical work is answered from the store
  (cached=true). TIMEOUT and OOM depend on limits and load; they are stored, never reused.
"""

from __future__ import annotations

from evoprompt.sdk.types import Status

CLAIMABLE = frozenset({Status.COMPILE_ERROR, Status.RUNTIME_ERROR, Status.INVALID_OUTPUT, Status.OOM,
                       Status.NOT_EXPORTABLE})
NOT_STORED = frozenset({Status.CANCELLED, Status.INTERNAL_ERROR})
CACHEABLE = frozenset(
    {Status.OK, Status.COMPILE_ERROR, Status.RUNTIME_ERROR, Status.INVALID_OUTPUT, Status.OUTPUT_LIMIT,
     Status.NOT_EXPORTABLE, Status.VERIFICATION_FAILED}
)


def is_stored(status: Status) -> bool:
    return status not in NOT_STORED


def is_cacheable(status: Status) -> bool:
    return status in CACHEABLE


def claimed_status(claim: str) -> Status:
    """The status a sandbox's own report may set: its claim when allowed, else RUNTIME_ERROR."""
    status = Status.__members__.get(claim)
    return status if status in CLAIMABLE else Status.RUNTIME_ERROR
