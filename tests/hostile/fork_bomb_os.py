# expect: TIMEOUT classic os.fork bomb at import time: every process forks forever, ignoring failures
# The pids limit (256) makes fork() fail with EAGAIN; nothing ever exits, so the wall clock ends it
# (observed: TIMEOUT; memory stays low because the forks share pages copy-on-write).
import os
import time

while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
