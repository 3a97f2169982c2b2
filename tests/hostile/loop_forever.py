# expect: TIMEOUT an endless busy loop at import time; the host's wall-clock limit must end it
while True:
    pass
