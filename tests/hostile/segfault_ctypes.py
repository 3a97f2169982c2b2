# expect: RUNTIME_ERROR a segmentation fault through ctypes (reads address 8) at import time
import ctypes

ctypes.cast(8, ctypes.POINTER(ctypes.c_long))[0]
raise RuntimeError("reading address 8 did not crash")
