"""A switch that lets the model report its named tensors.

The encoder, decoder, sampler and VQGAN call `record("name", tensor)` at every step
the course talks about. Normally that is a no-op costing one variable lookup; inside
`with recording() as records:` each call appends (name, shape, dtype). `dalle_core.shapes`
uses this on the meta device to print DALL·E Mega's shapes without allocating them.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass(frozen=True)
class Record:
    name: str
    shape: tuple[int, ...]
    dtype: str


_records: ContextVar[list[Record] | None] = ContextVar("dalle_core_records", default=None)


def record(name: str, value: object) -> None:
    """Note `value` under `name` if a recording is active; tensors, lists or ints."""
    records = _records.get()
    if records is None:
        return
    if isinstance(value, torch.Tensor):
        records.append(Record(name, tuple(value.shape), str(value.dtype).replace("torch.", "")))
    elif isinstance(value, (list, tuple)):
        records.append(Record(name, (len(value),), "list"))
    else:
        records.append(Record(name, (), type(value).__name__))


@contextmanager
def recording() -> Iterator[list[Record]]:
    records: list[Record] = []
    token = _records.set(records)
    try:
        yield records
    finally:
        _records.reset(token)
