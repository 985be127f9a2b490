"""Score many logged items in their own contexts with few forward passes (no gradients).

Used by the calibration and the fidelity report. A user's items are scored in chunks: each chunk
is one causal window whose leading items are context only, so every scored item sees between
``context_items // 2`` and ``context_items - 1`` items before it (fewer at the start of a log).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from billp.le.model import LEModel
from billp.le.packing import pack
from billp.le.ratings import prefix_offsets, rating_slots

EVAL_BATCH_WINDOWS = 16
"""Windows per forward pass when scoring logged items."""


@dataclass(frozen=True)
class _Window:
    owner: int
    begin: int
    """Index in the owner's sequence of ``items[0]``."""
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
            windows.append(
                _Window(owner=owner, begin=begin, items=items, scored=scored, slots=group)
            )
            start += len(group)
    return windows


class LoggedScores(NamedTuple):
    """Per sequence, the scores of its target items."""

    psi: list[np.ndarray]
    rating: list[np.ndarray]
    """Predicted (uncalibrated) ratings."""


@torch.inference_mode()
def score_logged(
    model: LEModel,
    prompt_ids: Sequence[int],
    sequences: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    context_items: int,
    ratings: Sequence[Sequence[float]] | None = None,
) -> LoggedScores:
    """psi and the predicted rating of ``sequences[u][t]`` after ``sequences[u][:t]`` for every
    ``t`` in ``targets[u]``.

    ``ratings[u]`` gives the user's rating of each item of ``sequences[u]`` (NaN: unknown to the
    model, e.g. held-out ratings); None: all unknown. Every target index must be >= 1 (an item
    needs at least one item before it).
    """
    known = (
        [np.asarray(r, dtype=np.float64) for r in ratings]
        if ratings is not None
        else [np.full(len(seq), np.nan) for seq in sequences]
    )
    slots = [rating_slots(r.tolist()) for r in known]
    mean = float(model.rating_mean)
    offsets = [
        prefix_offsets(seq, r, model.item_bias, mean)[list(wanted)]
        for seq, r, wanted in zip(sequences, known, targets, strict=True)
    ]
    psi_out = [np.zeros(len(t), dtype=np.float32) for t in targets]
    rating_out = [np.zeros(len(t), dtype=np.float32) for t in targets]
    windows = _windows(sequences, targets, context_items)
    for start in range(0, len(windows), EVAL_BATCH_WINDOWS):
        part = windows[start : start + EVAL_BATCH_WINDOWS]
        tokens = [[model.vocab_size + i for i in w.items] for w in part]
        window_slots = [slots[w.owner][w.begin : w.begin + len(w.items)] for w in part]
        batch = pack(prompt_ids, tokens, slots=window_slots)
        hidden = model.hidden(batch)
        device = hidden.device
        rows = torch.as_tensor(
            [batch.window_rows[b][k] for b, w in enumerate(part) for k in w.scored],
            dtype=torch.int64,
            device=device,
        )
        items = torch.as_tensor(
            [w.items[k] for w in part for k in w.scored], dtype=torch.int64, device=device
        )
        offset = torch.as_tensor(
            [offsets[w.owner][slot] for w in part for slot in w.slots],
            dtype=torch.float32,
            device=device,
        )
        psi = model.psi(hidden[rows]).cpu().numpy()
        rating = model.rating(hidden[rows], items, offset).cpu().numpy()
        cursor = 0
        for w in part:
            for slot in w.slots:
                psi_out[w.owner][slot] = psi[cursor]
                rating_out[w.owner][slot] = rating[cursor]
                cursor += 1
    return LoggedScores(psi=psi_out, rating=rating_out)
