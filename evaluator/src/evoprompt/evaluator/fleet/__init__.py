"""The ray executor: the front door hands each evaluation to a Ray cluster, a node runs it in its own sandbox.

- executor.py: the front door's side, a `Sandbox` to the scheduler (so queue, idempotency, cache,
  store and scoring stay where they are); one Ray task per evaluation, asking for one slot's
  resources, retried elsewhere when its node is lost.
- remote.py: that task, and how it finds its node's agent.
- agent.py: one actor per node and front door: the node's sandbox back-end and warm pool.
- transfer.py: a job's output folder as plain data, packed on the node and rebuilt at the front door.

Labels never leave the front door: a node relays the validation predictions, the front door scores them
and answers with the chosen checkpoint, exactly as the local exchange does (exchange.py).
"""
