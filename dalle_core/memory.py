"""Peak memory, read one way everywhere, and freed activations given back at once (glibc).

`peak_rss_mib` reads VmHWM, the resident-set high-water mark, from /proc: unlike
`ru_maxrss`, it is reset by exec, so a child process reports its own peak and not the
forking parent's. Tests, the benchmark and the notebook measurements all use it.
`available_memory` says how much a generation may still take, `generation_bytes` how much
one needs: `check_memory` refuses a grid that would not fit before any work.

glibc's malloc serves a large request with its own `mmap` and unmaps it on `free`, but
only above a threshold that it *raises* each time such a block is freed (up to 32 MiB).
After loading a model, the many freed file tensors have pushed the threshold up, so the
VQGAN's 32 MiB activations come from the heap, where freed memory stays in the process.
The peak then counts activations that are long dead. A fixed threshold keeps every block
of at least 1 MiB on its own mapping: the peak is what is alive at one moment
(docs/performance.md gives what it saves on DALL·E Mini).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys

import torch

from .config import DalleConfig, VQGanConfig

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


def attention_state_bytes(config: DalleConfig, image_count: int, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of the key/value cache (layers x 4n x image tokens x embed elements)."""
    element_size = torch.empty((), dtype=dtype).element_size()
    return config.layer_count * 4 * image_count * config.image_token_count * config.embed_count * element_size


def generation_bytes(
    config: DalleConfig, vqgan_config: VQGanConfig, image_count: int,
    dtype: torch.dtype = torch.float32, attention_dtype: torch.dtype = torch.float32,
) -> dict[str, int]:
    """Bytes one generation holds beyond the weights, by part, an upper estimate (all parts
    counted as if alive at once): the key/value cache, the encoder's state and its
    cross-attention keys/values for 2n rows, one step's logits and probabilities, the
    VQGAN's largest activations (float32, three full-resolution tensors alive in a
    ResnetBlock) and the output: images, the grid, and the grid as bytes for PIL."""
    rows, size = 2 * image_count, torch.empty((), dtype=dtype).element_size()
    attention_size = torch.empty((), dtype=attention_dtype).element_size()
    text = rows * config.text_token_count * config.embed_count  # (2n, text tokens, E)
    side = config.image_token_side  # tokens per side of one image
    pixels = (side * vqgan_config.downsample_factor) ** 2  # per image
    widest = max(vqgan_config.channel_counts[:2])  # up[0] and up[1]'s upsampled output run at full resolution
    return {
        "attention_state": attention_state_bytes(config, image_count, attention_dtype),
        "encoder state and keys/values": text * size + config.layer_count * 2 * text * attention_size,
        "logits": 2 * rows * config.image_vocab_count * 4,  # float32 sampling: logits and probabilities
        "VQGAN activations": image_count * (3 * widest * pixels + 2 * side**4) * 4,  # + the (P, P) attention weights
        "images": image_count * pixels * 3 * (4 + 4 + 4 + 1),  # images, grid, float32 copy, uint8
    }


def gib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**28 else f"{count / 2**20:.0f} MiB"


def check_memory(
    config: DalleConfig, vqgan_config: VQGanConfig, grid_size: int, dtype: torch.dtype,
    attention_dtype: torch.dtype, device: torch.device,
) -> None:
    """Refuse, before any work, a grid whose generation would not fit in free memory (a
    ValueError with the estimate and the limit), rather than fail in torch's allocator later."""
    parts = generation_bytes(config, vqgan_config, grid_size**2, dtype, attention_dtype)
    needed = sum(parts.values())
    limit, source = available_memory(device)
    if needed <= limit:
        return
    per_image = sum(generation_bytes(config, vqgan_config, 1, dtype, attention_dtype).values())
    largest = math.isqrt(limit // per_image)
    detail = ", ".join(f"{name} {gib(count)}" for name, count in parts.items())
    advice = (f"use grid_size {largest} or less" if largest
              else "not even one image fits; free memory or use a smaller model")
    raise ValueError(
        f"a {grid_size}x{grid_size} grid needs about {gib(needed)} of memory ({detail}), "
        f"more than the {gib(limit)} available ({source}); {advice}"
    )
