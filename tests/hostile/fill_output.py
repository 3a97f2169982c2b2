# expect: OUTPUT_LIMIT fills /job/output (on the host's disk) with 32 MiB files, then sleeps
# The host's size watcher must kill it once the folder passes the output cap (256 MiB); the per-file
# fsize limit alone would not stop many files.
import os
import time

block = os.urandom(1 << 20)
for i in range(64):  # up to 2 GiB
    try:
        with open(f"/job/output/junk{i:03d}.bin", "wb") as f:
            for _ in range(32):
                f.write(block)
    except OSError:
        break
time.sleep(10**6)
