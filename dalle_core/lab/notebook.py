"""What every course notebook needs before its first step, defined once.

A notebook's first code cell is four lines:

    import torch
    import matplotlib.pyplot as plt
    from dalle_core.lab.notebook import start
    mega, course, check_shape = start()

`start()` fixes one thread, as the command line does (`dalle_core.thread_count`: results that do
not depend on the core count, and the fastest choice for small operations on a busy laptop; the
environment variable DALLE_CORE_THREADS overrides it, as `make test-portable` does to check that
the outputs hold with 2 threads),
asks for PNG figures (one copy per figure: the notebook files and HTML exports stay small),
and traces DALL·E Mega's shapes for the walkthrough's 4x4 grid and the course model's for
a 3x3 grid on the meta device: real code, no memory. `check_shape` then asserts, d2l-style,
that a tensor the learner just computed has the course model's traced shape, and that
DALL·E Mega's traced shape is the one the text names, and prints both side by side.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import thread_count
from .shapes import TracedShapes, trace_shapes

CheckShape = Callable[[str, object, tuple], None]


def shape_of(value: object) -> tuple[int, ...]:
    """A tensor's shape, a tuple as it is, a list's length: what `check_shape` compares."""
    if hasattr(value, "shape"):
        return tuple(value.shape)  # type: ignore[attr-defined]
    if isinstance(value, tuple):
        return value
    return (len(value),)  # type: ignore[arg-type]


def shape_checker(mega: TracedShapes, course: TracedShapes) -> CheckShape:
    """`check_shape(name, value, mega_shape)` against two traces (see the module docstring)."""

    def check_shape(name: str, value: object, mega_shape: tuple) -> None:
        shape = shape_of(value)
        assert shape == course.shape(name), f"{name}: course model {shape}, traced {course.shape(name)}"
        assert mega.shape(name) == tuple(mega_shape), (
            f"{name}: DALL·E Mega {mega.shape(name)}, expected {tuple(mega_shape)}"
        )
        print(f"{name:<24} DALL·E Mega {mega.shape(name)!s:<21} course model {shape}")

    return check_shape


def use_png_figures() -> None:
    """`%config InlineBackend.figure_formats = ['png']` when running under IPython (PNG only:
    no SVG or PDF copies in the notebook file); nothing elsewhere."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("config", "InlineBackend.figure_formats = ['png']")


def setup(threads: int = 1) -> None:
    """One thread (or DALLE_CORE_THREADS) and PNG figures, for notebooks that need no shape trace (08)."""
    torch.set_num_threads(thread_count(threads))
    use_png_figures()


def start(threads: int = 1) -> tuple[TracedShapes, TracedShapes, CheckShape]:
    """`setup()`, then the two shape traces and their `check_shape`."""
    setup(threads)
    mega = trace_shapes("mega", 4)  # DALL·E Mega, the walkthrough's 4x4 grid (n = 16): no memory
    course = trace_shapes("tiny", 3)  # the course model, a 3x3 grid (n = 9)
    return mega, course, shape_checker(mega, course)
