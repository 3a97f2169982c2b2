# expect: TIMEOUT ignores SIGTERM (and SIGINT, SIGHUP) then sleeps: the host must still kill it at the
# wall-clock limit (SIGKILL) and remove the container.
import signal
import time

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
while True:
    try:
        time.sleep(3600)
    except BaseException:  # noqa: BLE001 - survive anything the harness might raise into us
        pass
