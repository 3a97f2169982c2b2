# expect: OOM memory bomb with Python objects (lists of distinct ints) at import time
chunks = []
n = 0
while True:
    chunks.append(list(range(n, n + 1_000_000)))
    n += 1_000_000
