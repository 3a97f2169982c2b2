# expect: OOM memory bomb with numpy: 64 MiB arrays of ones (pages touched) appended forever
import numpy as np

arrays = []
while True:
    arrays.append(np.ones(8 * 1024 * 1024, dtype=np.float64))
