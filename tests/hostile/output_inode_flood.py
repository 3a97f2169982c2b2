# expect: OUTPUT_LIMIT creates empty files in /job/output (on the host's disk) without end, then sleeps
# The evaluator charges every entry at least 4 KiB, so the flood hits OUTPUT_LIMIT. The program
# stops at 200,000 files to stay polite and reports its progress on stderr.
import os
import sys
import time

count = 0
for count in range(1, 200_001):
    try:
        os.close(os.open(f"/job/output/e{count:07d}", os.O_CREAT | os.O_WRONLY, 0o644))
    except OSError as exc:
        print(f"stopped after {count - 1} files: {exc}", file=sys.stderr, flush=True)
        break
    if count % 20_000 == 0:
        print(f"{count} empty files in /job/output", file=sys.stderr, flush=True)
time.sleep(10**6)
