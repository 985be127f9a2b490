"""torch_threads: sets and restores torch's thread count; None leaves it alone."""

from __future__ import annotations

import torch

from billp.common.torch_threads import torch_threads


def test_count_is_set_then_restored_and_none_leaves_it_alone() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before
