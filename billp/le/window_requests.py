"""Single-candidate scores and states as batchable requests: the window each request asks about
(what :class:`~billp.le.user_model.LEUserModel`'s :class:`~billp.le.batching.DynamicBatcher`
gathers) and the one forward pass that serves a batch of them
(:meth:`~billp.le.model.LEModel.score_windows`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from billp.le.model import LEModel
from billp.le.model_outputs import PromptCache


class WindowRequest(NamedTuple):
    """One batched request: score ``items[-1]`` after ``items[:-1]`` (and read the states)."""

    items: tuple[int, ...]
    slots: tuple[int, ...]
    """The rating slot of each item."""
    offset: float
    """The user's history offset (:func:`~billp.le.ratings.history_offset`); unused by state
    requests."""


class WindowResult(NamedTuple):
    """What a :class:`WindowRequest` gets back (on the CPU)."""

    psi: float
    rating: float
    """Predicted (uncalibrated) rating of ``items[-1]``."""
    state: np.ndarray
    """float32 ``[state_dim]``: after the whole window."""
    previous_state: np.ndarray
    """float32 ``[state_dim]``: after ``items[:-1]`` (zeros for a one-item window)."""


def run_windows(
    model: LEModel, prompt: PromptCache, requests: list[WindowRequest]
) -> list[WindowResult]:
    """Score each request's last item after its other items, after ``prompt``, in one forward
    pass (the caller holds the model's lock and thread settings)."""
    vocab = model.vocab_size
    scored = model.score_windows(
        prompt,
        [[vocab + i for i in r.items] for r in requests],
        [r.slots for r in requests],
        [r.offset for r in requests],
    )
    psi = scored.psi.cpu().numpy()
    rating = scored.rating.cpu().numpy()
    states = scored.states.float().cpu().numpy()
    previous = scored.previous_states.float().cpu().numpy()
    return [
        WindowResult(float(psi[b]), float(rating[b]), states[b], previous[b])
        for b in range(len(requests))
    ]
