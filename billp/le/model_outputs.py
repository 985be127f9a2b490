"""What :class:`~billp.le.model.LEModel`'s inference methods return, and the prompt's key/value
cache that :meth:`~billp.le.model.LEModel.score_windows` shares across windows."""

from __future__ import annotations

from typing import NamedTuple

import torch


class SharedPrefixScores(NamedTuple):
    """What :meth:`LEModel.score_shared_prefix` returns."""

    psi: torch.Tensor
    """``[C]`` choice scores."""
    rating: torch.Tensor
    """``[C]`` predicted (uncalibrated) ratings."""
    states: torch.Tensor
    """``[C, hidden]`` states after each candidate."""
    prefix_state: torch.Tensor
    """``[hidden]`` state after the prefix."""


class PromptCache(NamedTuple):
    """The prompt's keys and values per layer (batch 1), computed once by
    :meth:`LEModel.prompt_cache`; empty when the prompt is."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    length: int
    """Prompt tokens."""


class WindowScores(NamedTuple):
    """What :meth:`LEModel.score_windows` returns: per window, its last token scored as the
    candidate after the tokens before it."""

    psi: torch.Tensor
    """``[B]`` choice scores of the last token."""
    rating: torch.Tensor
    """``[B]`` predicted (uncalibrated) ratings of the last token."""
    states: torch.Tensor
    """``[B, hidden]`` states after the whole window."""
    previous_states: torch.Tensor
    """``[B, hidden]`` states after all but the last window token (zeros for one-token
    windows)."""
