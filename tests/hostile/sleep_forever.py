# expect: TIMEOUT time.sleep forever at import time (no CPU used, so only the wall clock can end it)
import time

time.sleep(10**7)
