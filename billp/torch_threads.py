"""A context manager that limits torch's intra-op threads and restores them after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch threads.

    Small forward passes gain nothing from more threads, and on a machine shared with a
    vLLM CPU worker (whose OpenMP threads spin on every core) extra threads only contend.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
