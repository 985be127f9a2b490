"""The three ways of scoring candidates agree, and packed negatives see exactly their context."""

from __future__ import annotations

import torch

from billp.le.packing import pack
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
    shared, states, _ = model.score_shared_prefix(prefix, candidates, chunk=3)  # 3 chunks
    torch.testing.assert_close(batched, one, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(shared, batched, atol=TOLERANCE, rtol=0)
    # The state after a candidate is the state of the longer history.
    alone = model.state_of([*prefix, candidates[1]])
    torch.testing.assert_close(states[1], alone, atol=TOLERANCE, rtol=0)


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
