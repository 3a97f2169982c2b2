# expect: OOM|TIMEOUT fork bomb through subprocess: every process starts more Python interpreters
# that do the same, forever, ignoring failures (pids limit 256).
# Unlike os.fork, each child is a fresh interpreter with its own memory (~10 MB), so 1 GiB runs out
# before the pids limit: observed OOM (the kernel kills the largest process, the harness, and the
# container ends). TIMEOUT is acceptable too: if the OOM killer picks only children, the bomb goes on
# until the wall-clock limit, which outranks the OOM kill.
import subprocess
import sys
import time

BOMB = r'''
import subprocess, sys, time
code = sys.argv[1]
while True:
    try:
        subprocess.Popen([sys.executable, "-c", code, code])
    except Exception:
        time.sleep(0.05)
'''
while True:
    try:
        subprocess.Popen([sys.executable, "-c", BOMB, BOMB])
    except Exception:  # noqa: BLE001
        time.sleep(0.05)
