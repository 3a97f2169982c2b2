"""The job protocol between the harness and the server. The server imports this module from the same
folder (evoprompt/evaluator/harness.py), so the two sides cannot disagree.

A job is two exchanges through two folders, `input/` (the server writes, the sandbox only reads) and
`output/` (the sandbox writes, the server reads with strict checks):

1. The server writes `spec.json` and `candidate.py`, then `READY` last. A warm sandbox, started ahead
   of need with its framework imported, waits for `READY`; then it trains, writes the validation
   predictions of every checkpoint and the weights, and writes `VALIDATED`.
2. The server scores the validation predictions, picks the best checkpoint and writes `CHOICE`
   (`{"step": N}`, or `{"step": null}` when it could not read them). The sandbox predicts the test
   inputs once, from that checkpoint's parameters, writes them and exits.

The data file named by spec.json's `data` is read from the data folder (mounted read-only, written
once per data identity), or from `input/` when no data folder is given.
"""

# the job folder: the server writes INPUT_DIR (read-only inside), the sandbox writes OUTPUT_DIR
INPUT_DIR = "input"
OUTPUT_DIR = "output"
SPEC = "spec.json"  # input/: framework, steps, recipe, checkpoint steps, threads, `data` (the data file's name)
CANDIDATE = "candidate.py"  # input/: the program

EXIT_OK = 0  # trained; the server scores the outputs
EXIT_BAD_JOB = 2  # the job itself is malformed (the server's fault, never the candidate's)
EXIT_CANDIDATE_FAILED = 3  # the candidate failed; output/result.json says how

READY = "ready"  # input/: the job is complete; written last, atomically
CHOICE = "choice.json"  # input/: the checkpoint step whose parameters predict the test inputs
VALIDATED = "validated"  # output/: validation predictions and weights are written; awaiting CHOICE
PREDICTIONS = "predictions.npz"  # output/: steps[C] and the validation predictions of each checkpoint
TEST_PREDICTIONS = "test_predictions.npz"  # output/: step, and the test predictions at that step
WEIGHTS = "weights.npz"
RESULT = "result.json"

POLL_SECONDS = 0.005  # how often a waiting harness looks for READY or CHOICE
