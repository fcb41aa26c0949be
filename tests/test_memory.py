"""dalle_core.memory: freed large blocks leave the process at once (glibc)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from dalle_core.memory import return_large_blocks_promptly

# A 24 MiB block freed raises glibc's dynamic threshold to 24 MiB; the 16 MiB block after it
# then comes from the heap and stays resident after `del`, unless the threshold is fixed.
PROBE = """
import sys, torch
from dalle_core.memory import return_large_blocks_promptly
def rss_mib():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
if sys.argv[1] == "fixed":
    assert return_large_blocks_promptly()
big = torch.ones(6 << 20); del big            # 24 MiB
base = rss_mib()
block = torch.ones(4 << 20); del block        # 16 MiB
print(rss_mib() - base)
"""


def _held_after_free(mode: str) -> float:
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux only")
def test_freed_block_leaves_the_process():
    assert _held_after_free("default") > 12  # the behaviour the module works around
    assert _held_after_free("fixed") < 4


@pytest.mark.parametrize("value", [0, -1, 64 << 20, 1.5, "1"])
def test_bad_threshold(value):
    with pytest.raises(ValueError, match="threshold_bytes"):
        return_large_blocks_promptly(value)
