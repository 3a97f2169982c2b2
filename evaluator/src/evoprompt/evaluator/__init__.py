"""The evaluator service: runs candidate programs in sandboxes and scores them (trusted side)."""
