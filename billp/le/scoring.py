"""Score many logged items in their own contexts with few forward passes (no gradients).

Used by the calibration and the fidelity report. A user's items are scored in chunks: each chunk
is one causal window whose leading items are context only, so every scored item sees between
``context_items // 2`` and ``context_items - 1`` items before it (fewer at the start of a log).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from billp.le.model import LEModel
from billp.le.packing import pack

EVAL_BATCH_WINDOWS = 16
"""Windows per forward pass when scoring logged items."""


@dataclass(frozen=True)
class _Window:
    owner: int
    items: list[int]
    scored: list[int]
    """Indices into ``items`` whose psi is wanted."""
    slots: list[int]
    """Where each scored value goes in the owner's output."""


def _windows(
    sequences: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], context_items: int
) -> list[_Window]:
    chunk = max(context_items // 2, 1)
    lead = context_items - chunk
    windows = []
    for owner, (sequence, wanted) in enumerate(zip(sequences, targets, strict=True)):
        order = sorted(range(len(wanted)), key=lambda k: wanted[k])
        start = 0
        while start < len(order):
            group = [order[start]]
            first = wanted[order[start]]
            while (
                start + len(group) < len(order)
                and wanted[order[start + len(group)]] < first + chunk
            ):
                group.append(order[start + len(group)])
            begin = max(first - lead, 0)
            end = wanted[group[-1]] + 1
            items = [int(i) for i in sequence[begin:end]]
            scored = [wanted[k] - begin for k in group]
            windows.append(_Window(owner=owner, items=items, scored=scored, slots=group))
            start += len(group)
    return windows


@torch.inference_mode()
def score_logged(
    model: LEModel,
    prompt_ids: Sequence[int],
    sequences: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    context_items: int,
) -> list[np.ndarray]:
    """psi of ``sequences[u][t]`` after ``sequences[u][:t]`` for every ``t`` in ``targets[u]``.

    Every target index must be >= 1 (an item needs at least one item before it).
    """
    outputs = [np.zeros(len(t), dtype=np.float32) for t in targets]
    windows = _windows(sequences, targets, context_items)
    for start in range(0, len(windows), EVAL_BATCH_WINDOWS):
        part = windows[start : start + EVAL_BATCH_WINDOWS]
        tokens = [[model.vocab_size + i for i in w.items] for w in part]
        batch = pack(prompt_ids, tokens)
        hidden = model.hidden(batch)
        rows = [batch.window_rows[b][k] for b, w in enumerate(part) for k in w.scored]
        scores = model.psi(hidden[torch.as_tensor(rows, dtype=torch.int64)]).numpy()
        cursor = 0
        for w in part:
            for slot in w.slots:
                outputs[w.owner][slot] = scores[cursor]
                cursor += 1
    return outputs
