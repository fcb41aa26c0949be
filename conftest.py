"""pytest, in this repository: what a strict nbval run of the notebooks needs before any kernel starts.

On a fresh machine the first `import matplotlib.pyplot` logs "Matplotlib is building the font
cache" to stderr, which strict nbval would see as an unexpected output of that notebook's cell.
So a run with --nbval builds the cache first, here at the repository's root (nothing of the test
harness sits in notebooks/, which learners browse). The regex/replace pairs nbval applies to
outputs live in tests/nbval-sanitize.cfg.
"""
from __future__ import annotations


def pytest_configure(config) -> None:
    if getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.font_manager  # importing it builds the font cache
