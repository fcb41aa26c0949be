"""How the model reports what it does: its named tensors, and progress bars.

The encoder, decoder, sampler and VQGAN call `record("name", tensor)` at every step
the course talks about. Normally that is a no-op costing one variable lookup; inside
`with recording() as records:` each call appends (name, shape, dtype). `dalle_core.lab.shapes`
uses this on the meta device to print DALL·E Mega's shapes without allocating them.

Long loops (the 256 decoder steps, training) show a tqdm bar through `progress_bar`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Record:
    name: str
    shape: tuple[int, ...]
    dtype: str
    value: torch.Tensor | None = None  # kept only by `recording(keep_values=True)`


_records: ContextVar[list[Record] | None] = ContextVar("dalle_core_records", default=None)
_keep_values: ContextVar[bool] = ContextVar("dalle_core_keep_values", default=False)


def is_recording() -> bool:
    return _records.get() is not None


def record(name: str, value: object) -> None:
    """Note `value` under `name` if a recording is active; tensors, lists or ints."""
    records = _records.get()
    if records is None:
        return
    if isinstance(value, torch.Tensor):
        kept = value.detach().clone() if _keep_values.get() else None
        records.append(Record(name, tuple(value.shape), str(value.dtype).replace("torch.", ""), kept))
    elif isinstance(value, (list, tuple)):
        records.append(Record(name, (len(value),), "list"))
    else:
        records.append(Record(name, (), type(value).__name__))


@contextmanager
def recording(keep_values: bool = False) -> Iterator[list[Record]]:
    """Collect the named tensors; with keep_values=True also a copy of each (to plot them)."""
    records: list[Record] = []
    token, keep_token = _records.set(records), _keep_values.set(keep_values)
    try:
        yield records
    finally:
        _records.reset(token)
        _keep_values.reset(keep_token)


def progress_bar(iterable: Iterable, desc: str, show: bool, **options: Any) -> Any:
    """A tqdm bar over `iterable` when `show`, a silent one otherwise (it still has tqdm's
    `write` and `set_postfix`). The environment variable TQDM_DISABLE=1 silences every bar
    that was asked for (the tests set it)."""
    from tqdm.auto import tqdm  # imported here: `import dalle_core` stays light

    return tqdm(iterable, desc=desc, **({"mininterval": 2} | options | ({} if show else {"disable": True})))
