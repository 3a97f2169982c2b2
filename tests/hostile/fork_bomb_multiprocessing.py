# expect: TIMEOUT fork bomb through multiprocessing (fork start method): every Process starts more
# Processes forever, ignoring failures (pids limit 256). The children are forks that share their
# parent's pages, so memory stays under the limit and nothing ever exits: observed TIMEOUT.
import multiprocessing as mp
import time


def bomb():
    ctx = mp.get_context("fork")
    while True:
        try:
            ctx.Process(target=bomb).start()
        except Exception:  # noqa: BLE001
            time.sleep(0.05)


bomb()
