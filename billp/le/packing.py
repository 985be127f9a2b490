"""Pack history windows and their negative candidates into one causal forward pass.

A packed sequence is ``prefix + window + negatives``. The prefix (the prompt) and the window
(item tokens, oldest first) attend causally. A negative that competes with ``window[t]`` sees the
prefix and ``window[:t]`` and itself, and takes ``window[t]``'s position id. Its last hidden
state is therefore exactly what the model would compute for ``prefix + window[:t] + [negative]``,
while ``window[t]``'s own hidden state is the positive's: one pass scores a whole window's
positives and negatives and gives the state at every position.

For inference, :func:`pad_windows` right-pads many histories' windows after a cached prompt
(:meth:`~billp.le.model.LEModel.score_windows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from billp.le.errors import LEError


@dataclass(frozen=True)
class PackedBatch:
    """Token ids, position ids and the attention pattern of a batch, plus row bookkeeping.

    Rows index the flattened ``[batch * length]`` hidden states.
    """

    ids: torch.Tensor
    """int64 ``[B, L]``; padding is token 0."""
    slots: torch.Tensor
    """int64 ``[B, L]``: the rating slot added to each item token (0: unknown)."""
    positions: torch.Tensor
    """int64 ``[B, L]``."""
    allowed: torch.Tensor
    """bool ``[B, L, L]``: query may attend to key."""
    window_rows: list[list[int]]
    """Per sequence, the rows of its window tokens in order."""
    negative_rows: torch.Tensor
    """int64 ``[M]``: rows of the negative candidates."""
    negative_slots: torch.Tensor
    """int64 ``[M]``: for each negative, the row of the window token it competes with."""

    @property
    def length(self) -> int:
        return int(self.ids.shape[1])

    def additive_mask(self, dtype: torch.dtype) -> torch.Tensor:
        """The float mask ``[B, 1, L, L]`` that attention adds to its scores."""
        mask = torch.zeros(self.allowed.shape, dtype=dtype)
        mask.masked_fill_(~self.allowed, torch.finfo(dtype).min)
        return mask.unsqueeze(1)


def pack(
    prefix: Sequence[int],
    windows: Sequence[Sequence[int]],
    negatives: Sequence[Sequence[tuple[int, int]]] | None = None,
    slots: Sequence[Sequence[int]] | None = None,
) -> PackedBatch:
    """Pack ``prefix + window + negatives`` for every window (token ids throughout).

    Args:
        prefix: prompt token ids shared by every sequence.
        windows: per sequence, item token ids (oldest first), at least one.
        negatives: per sequence, ``(t, token)`` pairs: ``token`` competes with ``window[t]``
            (``1 <= t < len(window)``, so it has at least one history item before it).
        slots: per sequence, the rating slot of each window token (see
            :func:`billp.le.model.rating_slots`); a negative takes the slot of the window token
            it competes with. None: all unknown.

    Raises:
        LEError: a window is empty or a negative's slot is out of range.
    """
    if not windows:
        raise LEError("pack needs at least one window")
    negatives = negatives if negatives is not None else [[] for _ in windows]
    if len(negatives) != len(windows):
        raise LEError(f"{len(negatives)} negative lists for {len(windows)} windows")
    n_prefix = len(prefix)
    lengths = [n_prefix + len(w) + len(n) for w, n in zip(windows, negatives, strict=True)]
    width = max(lengths)
    batch = len(windows)
    ids = torch.zeros(batch, width, dtype=torch.int64)
    slot_ids = torch.zeros(batch, width, dtype=torch.int64)
    if slots is not None and len(slots) != len(windows):
        raise LEError(f"{len(slots)} slot lists for {len(windows)} windows")
    positions = torch.zeros(batch, width, dtype=torch.int64)
    allowed = torch.zeros(batch, width, width, dtype=torch.bool)
    window_rows: list[list[int]] = []
    negative_rows: list[int] = []
    negative_slots: list[int] = []
    for b, (window, pairs) in enumerate(zip(windows, negatives, strict=True)):
        if not window:
            raise LEError(f"window {b} is empty; every history needs at least one item")
        causal_end = n_prefix + len(window)
        ids[b, :n_prefix] = torch.as_tensor(list(prefix), dtype=torch.int64)
        ids[b, n_prefix:causal_end] = torch.as_tensor(list(window), dtype=torch.int64)
        window_slots = list(slots[b]) if slots is not None else [0] * len(window)
        if len(window_slots) != len(window):
            raise LEError(f"window {b}: {len(window_slots)} slots for {len(window)} tokens")
        slot_ids[b, n_prefix:causal_end] = torch.as_tensor(window_slots, dtype=torch.int64)
        positions[b, :causal_end] = torch.arange(causal_end)
        allowed[b, :causal_end, :causal_end] = torch.ones(
            causal_end, causal_end, dtype=torch.bool
        ).tril()
        base = b * width
        window_rows.append([base + n_prefix + t for t in range(len(window))])
        for k, (slot, token) in enumerate(pairs):
            if not 1 <= slot < len(window):
                raise LEError(f"window {b}: negative slot {slot} is outside 1..{len(window) - 1}")
            column = causal_end + k
            ids[b, column] = token
            slot_ids[b, column] = window_slots[slot]
            positions[b, column] = n_prefix + slot
            allowed[b, column, : n_prefix + slot] = True
            allowed[b, column, column] = True
            negative_rows.append(base + column)
            negative_slots.append(base + n_prefix + slot)
        for column in range(lengths[b], width):
            allowed[b, column, column] = True  # padding sees itself only (no empty softmax rows)
    return PackedBatch(
        ids=ids,
        slots=slot_ids,
        positions=positions,
        allowed=allowed,
        window_rows=window_rows,
        negative_rows=torch.as_tensor(negative_rows, dtype=torch.int64),
        negative_slots=torch.as_tensor(negative_slots, dtype=torch.int64),
    )


def pack_texts(sequences: Sequence[Sequence[int]]) -> PackedBatch:
    """Right-padded causal sequences (the item-token stage); window_rows cover every token."""
    return pack([], sequences)


@dataclass(frozen=True)
class PaddedWindows:
    """Windows right-padded to one width, after a cached prompt (see
    :meth:`~billp.le.model.LEModel.score_windows`)."""

    ids: torch.Tensor
    """int64 ``[B, W]``; padding is token 0."""
    slots: torch.Tensor
    """int64 ``[B, W]``: the rating slot of each token (padding 0)."""
    lengths: torch.Tensor
    """int64 ``[B]``: tokens per window."""
    allowed: torch.Tensor
    """bool ``[B, W, prompt + W]``: query may attend to key (the prompt's keys first)."""
    positions: torch.Tensor
    """int64 ``[B, W]``: position ids, after the prompt's."""


def pad_windows(
    windows: Sequence[Sequence[int]], slots: Sequence[Sequence[int]], prompt_length: int
) -> PaddedWindows:
    """Right-pad ``windows`` (and their rating ``slots``) after a prompt of ``prompt_length``
    tokens: each window attends to the whole prompt and causally to itself.

    Raises:
        LEError: an empty window, or one whose slots do not match it.
    """
    lengths = [len(w) for w in windows]
    for b, (window, window_slots) in enumerate(zip(windows, slots, strict=True)):
        if not window or len(window_slots) != len(window):
            raise LEError(
                f"window {b}: {len(window)} tokens (need >= 1) and {len(window_slots)} slots"
            )
    batch, width = len(windows), max(lengths)
    ids = torch.zeros(batch, width, dtype=torch.int64)
    slot_ids = torch.zeros(batch, width, dtype=torch.int64)
    for b, (window, window_slots) in enumerate(zip(windows, slots, strict=True)):
        ids[b, : len(window)] = torch.as_tensor(list(window), dtype=torch.int64)
        slot_ids[b, : len(window)] = torch.as_tensor(list(window_slots), dtype=torch.int64)
    length = torch.as_tensor(lengths, dtype=torch.int64)
    column = torch.arange(width)
    # Query q of window b sees the whole prompt and its own tokens k <= q, k < length[b];
    # a padding query sees the real tokens (never an empty row).
    own = (column[None, :] <= column[:, None])[None] & (column < length[:, None])[:, None, :]
    allowed = torch.cat([torch.ones(batch, width, prompt_length, dtype=torch.bool), own], 2)
    positions = (prompt_length + column).expand(batch, width)
    return PaddedWindows(ids, slot_ids, length, allowed, positions)
