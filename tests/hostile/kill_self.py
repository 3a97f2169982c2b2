# expect: RUNTIME_ERROR the candidate SIGKILLs its own harness process at import time
# (exit status 137 through tini; it must not be mistaken for an OOM kill).
import os
import signal

os.kill(os.getpid(), signal.SIGKILL)
