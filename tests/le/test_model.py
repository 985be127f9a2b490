"""The three ways of scoring candidates agree, and packed negatives see exactly their context."""

from __future__ import annotations

import math

import pytest
import torch

from billp.le.packing import pack
from billp.le.ratings import USER_SHRINKAGE, history_offset, rating_slots
from tests.le.tiny_le import TinyLE

TOLERANCE = 1e-4


def _tokens(tiny_le: TinyLE, items: list[int]) -> list[int]:
    model = tiny_le.trained.model
    return [*tiny_le.trained.manifest.prompt_ids, *(model.vocab_size + i for i in items)]


def test_shared_prefix_equals_batched_and_one_at_a_time(tiny_le: TinyLE) -> None:
    model = tiny_le.trained.model
    prefix = _tokens(tiny_le, [3, 7, 1, 12])
    candidates = [model.vocab_size + i for i in (0, 5, 9, 13, 17, 21, 2)]
    one = model.score_one_at_a_time(prefix, candidates)
    batched = model.score_batched(prefix, candidates)
    shared = model.score_shared_prefix(prefix, candidates, chunk=3)  # 3 chunks
    torch.testing.assert_close(batched, one, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(shared.psi, batched, atol=TOLERANCE, rtol=0)
    # The state after a candidate is the state of the longer history.
    alone = model.state_of([*prefix, candidates[1]])
    torch.testing.assert_close(shared.states[1], alone, atol=TOLERANCE, rtol=0)


def test_shared_prefix_with_ratings_equals_the_packed_forward(tiny_le: TinyLE) -> None:
    """Rating slots and the history offset enter the shared-prefix scorer exactly as they
    enter training's packed pass, where each item carries its predecessor's rating."""
    model = tiny_le.trained.model
    prompt = list(tiny_le.trained.manifest.prompt_ids)
    history, ratings = [3, 7, 1, 12], [5.0, math.nan, 2.0, 4.0]
    candidates = [0, 9, 21]
    slots = rating_slots([*ratings, math.nan])
    assert slots == [0, 5, 0, 2, 4]
    offset = history_offset(history, ratings, model.item_bias, float(model.rating_mean))
    shared = model.score_shared_prefix(
        _tokens(tiny_le, history),
        [model.vocab_size + c for c in candidates],
        chunk=2,
        prefix_slots=[0] * len(prompt) + slots,
        offset=offset,
    )
    windows = [[model.vocab_size + i for i in [*history, c]] for c in candidates]
    with torch.inference_mode():
        batch = pack(prompt, windows, slots=[slots] * len(candidates))
        hidden = model.hidden(batch)
        rows = torch.as_tensor([rows[-1] for rows in batch.window_rows])
        psi = model.psi(hidden[rows])
        rating = model.rating(hidden[rows], torch.as_tensor(candidates), torch.full((3,), offset))
    torch.testing.assert_close(shared.psi, psi, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(shared.rating, rating, atol=TOLERANCE, rtol=0)
    # Without the ratings the scores differ: the slots reach the model.
    blind = model.score_shared_prefix(
        _tokens(tiny_le, history), [model.vocab_size + c for c in candidates], chunk=2
    )
    assert not torch.allclose(blind.rating, shared.rating, atol=TOLERANCE)


def test_history_offset_is_the_shrunk_mean_residual_of_known_ratings() -> None:
    bias = torch.tensor([0.5, -0.5, 0.0])
    value = history_offset([0, 1, 2], [4.0, math.nan, 2.0], bias, mean=3.0)
    assert value == pytest.approx(((4 - 3 - 0.5) + (2 - 3 - 0.0)) / (2 + USER_SHRINKAGE))
    assert history_offset([1], [math.nan], bias, mean=3.0) == 0.0


def test_packed_negatives_see_only_their_own_context(tiny_le: TinyLE) -> None:
    model = tiny_le.trained.model
    prompt = tiny_le.trained.manifest.prompt_ids
    window = [model.vocab_size + i for i in (4, 8, 15, 16)]
    negatives = [(1, model.vocab_size + 20), (3, model.vocab_size + 23)]
    with torch.inference_mode():
        batch = pack(prompt, [window, window[:2]], [negatives, []])
        hidden = model.hidden(batch)
        packed_scores = model.psi(hidden[batch.negative_rows])
        positive_scores = model.psi(hidden[torch.as_tensor(batch.window_rows[0])])
    expected = torch.cat(
        [
            model.score_one_at_a_time([*prompt, *window[:1]], [model.vocab_size + 20]),
            model.score_one_at_a_time([*prompt, *window[:3]], [model.vocab_size + 23]),
        ]
    )
    torch.testing.assert_close(packed_scores, expected, atol=TOLERANCE, rtol=0)
    alone = model.score_one_at_a_time([*prompt, *window[:2]], [window[2]])
    torch.testing.assert_close(positive_scores[2:3], alone, atol=TOLERANCE, rtol=0)
    assert batch.negative_slots.tolist() == [batch.window_rows[0][1], batch.window_rows[0][3]]
