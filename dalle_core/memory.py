"""Give freed activations back to the operating system at once (glibc on Linux).

glibc's malloc serves a large request with its own `mmap` and unmaps it on `free`, but
only above a threshold that it *raises* each time such a block is freed (up to 32 MiB).
After loading a model, the many freed file tensors have pushed the threshold up, so the
VQGAN's 32 MiB activations come from the heap, where freed memory stays in the process.
The peak then counts activations that are long dead. A fixed threshold keeps every block
of at least 1 MiB on its own mapping: the peak is what is alive at one moment.
Measured on DALL·E Mini, float32, one image: peak RSS 2450 -> 2343 MiB (docs/performance.md).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
DEFAULT_THRESHOLD = 1 << 20


def return_large_blocks_promptly(threshold_bytes: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold for this process; False where there is no glibc."""
    if not isinstance(threshold_bytes, int) or not 0 < threshold_bytes <= 32 << 20:
        raise ValueError(f"threshold_bytes must be an int in 1..{32 << 20}, got {threshold_bytes!r}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, threshold_bytes) == 1
