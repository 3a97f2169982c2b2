"""The job protocol between the harness and the server. The server imports this module from the same
folder (evoprompt/evaluator/harness.py), so the two sides cannot disagree.

A job is a few exchanges through two folders, `input/` (the server writes, the sandbox only reads) and
`output/` (the sandbox writes, the server reads with strict checks):

1. The server writes `spec.json` and `candidate.py`, then `READY` last. A warm sandbox, started ahead
   of need with its framework imported and no data, waits for `READY`.
2. The sandbox imports the candidate and builds its model, then writes `BUILT`. Only then does the
   server link the data file (spec.json's `data`) into `input/`: code that runs at import time sees no
   data, so it cannot train beyond the step budget before the harness starts counting.
3. The sandbox trains, writes the validation predictions of every checkpoint (and, for CLRS, the
   weights), and writes `VALIDATED`.
4. The server scores the validation predictions, picks the best checkpoint and writes `CHOICE`
   (`{"step": N}`, or `{"step": null}` when it could not read them). For a task the verifier covers,
   the sandbox then exports that checkpoint's model (`program.json` for torch, `program.jaxexport` for
   flax, with `tensors.npz`) and exits; for the others it predicts the test inputs once and exits.

A verification job (spec.json `role: "verify"`) holds no candidate: it writes `BUILT` at once, gets
the exported program and the data to predict (validation, test and secret check inputs), and writes
`verified.npz` (logits of each split and the counts of the program's tensors).
"""

# the job folder: the server writes INPUT_DIR (read-only inside), the sandbox writes OUTPUT_DIR
INPUT_DIR = "input"
OUTPUT_DIR = "output"
SPEC = "spec.json"  # input/: role, framework, steps, recipe, checkpoint steps, threads, `data` (its file name)
CANDIDATE = "candidate.py"  # input/: the program

EXIT_OK = 0  # trained; the server scores the outputs
EXIT_BAD_JOB = 2  # the job itself is malformed (the server's fault, never the candidate's)
EXIT_CANDIDATE_FAILED = 3  # the candidate failed; output/result.json says how

READY = "ready"  # input/: the job is complete; written last, atomically
BUILT = "built"  # output/: the candidate is imported and its model built; the server may hand over the data
CHOICE = "choice.json"  # input/: the checkpoint step whose model is exported (or predicts the test inputs)
VALIDATED = "validated"  # output/: validation predictions (CLRS: and weights) are written; awaiting CHOICE
PREDICTIONS = "predictions.npz"  # output/: steps[C] and the validation predictions of each checkpoint
TEST_PREDICTIONS = "test_predictions.npz"  # output/: step, and the test predictions at that step (unverified tasks)
WEIGHTS = "weights.npz"
RESULT = "result.json"

# the exported model (training output/, then the verifier's input/)
PROGRAM_TORCH = "program.json"  # torch.export's serialized program (JSON), its tensors in TENSORS
PROGRAM_JAX = "program.jaxexport"  # jax.export's serialized module, its arguments in TENSORS
TENSORS = "tensors.npz"  # plain arrays, no pickles
VERIFIED = "verified.npz"  # verifier's output/: val, test, check logits; num_params, num_state

ROLE_TRAIN = "train"
ROLE_VERIFY = "verify"

POLL_SECONDS = 0.005  # how often a waiting harness looks for READY, its data or CHOICE
EXPORT_BATCH = 100  # inputs per call of an exported program (a static shape); the verifier pads the last batch
