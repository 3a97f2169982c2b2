# expect: OUTPUT_LIMIT creates empty files in /job/output (host disk) without end, then sleeps
# weakness: status the output watcher counts bytes (st_blocks) only, so empty files cost nothing: the sandbox can fill the host's inode table and slow every poll of the watcher; observed TIMEOUT instead of OUTPUT_LIMIT
# Empty files take no blocks, so a byte cap alone cannot stop this. Ideally the evaluator caps the
# number of entries too (OUTPUT_LIMIT). The program stops at 200,000 files to stay polite.
import os
import time

for i in range(200_000):
    try:
        os.close(os.open(f"/job/output/e{i:07d}", os.O_CREAT | os.O_WRONLY, 0o644))
    except OSError:
        break
time.sleep(10**6)
