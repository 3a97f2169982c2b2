# expect: TIMEOUT fork bomb through subprocess: each process starts two more Python interpreters
# that do the same, forever, ignoring failures (pids limit 256).
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
