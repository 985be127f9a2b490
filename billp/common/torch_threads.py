"""Thread settings for torch in billp's own processes.

``torch_threads`` limits torch's intra-op threads for a block; ``prefer_passive_openmp``
makes idle OpenMP threads sleep instead of spin (it must run before torch is imported).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

PASSIVE_OMP_MARK = "BILLP_PASSIVE_OMP"
"""Set beside OMP_WAIT_POLICY when billp chose it, so that a child (the vLLM server, which
tunes its own OpenMP runtime) can be given back the default."""


def prefer_passive_openmp() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` for this process, unless the caller chose a policy.

    On a small machine shared with a busy vLLM CPU worker, spinning OpenMP threads slow every
    parallel region down many times over (measured: an LE training step went from ~2.5 s to
    10-50 s on 2 shared cores).
    """
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ[PASSIVE_OMP_MARK] = "1"


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch threads (None: leave torch's setting alone).

    Small forward passes gain nothing from more threads, and on a machine shared with a
    vLLM CPU worker (whose OpenMP threads spin on every core) extra threads only contend.
    """
    if count is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
