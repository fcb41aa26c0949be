"""Peak memory, read one way everywhere, and freed activations given back at once (glibc).

`peak_rss_mib` reads VmHWM, the resident-set high-water mark, from /proc: unlike
`ru_maxrss`, it is reset by exec, so a child process reports its own peak and not the
forking parent's. Tests, the benchmark and the notebook measurements all use it.
`available_memory` says how much a generation may still take (the pipeline refuses a grid
that would not fit before any work).

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
import os
import sys

import torch

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


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """The process's peak resident memory in MiB (VmHWM), or None where /proc has no answer
    (not Linux, or the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Restart this process's VmHWM count from its current resident size (Linux); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


GENEROUS_CAP = 2**40  # 1 TiB: where free memory cannot be read, only the absurd is refused


def available_memory(device: torch.device) -> tuple[int, str]:
    """Free memory where the generation runs, and where that number comes from."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free, f"free on {device}"
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
        except OSError:
            pass
    try:  # macOS and other Unix systems: the physical memory (Apple's GPUs share it)
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "physical memory"
    except (AttributeError, ValueError, OSError):
        return GENEROUS_CAP, "a cap of 1 TiB (free memory could not be read)"
