"""SQN-style sequential recommender: a GRU4Rec encoder with a supervised (CE) head and a Q head.

Variants share the model and the loss; they differ in what the batch carries:

* base: reward = logged rating, state = GRU state;
* +SM: the LE state vector is concatenated to the GRU state (for s and s');
* +RM: reward = the LE's reward of the logged action;
* +LEA: +SM and +RM, plus the LE's proposed positives: each adds a weighted CE term (as an
  extra target of the same state) and an extra TD transition (s, a_aug, r_LE(a_aug), s + a_aug).

Loss per batch (means over the batch ``B``)::

    L = CE(s, a) + ce_weight * sum_j CE(s, a_j)
        + q_weight * [ (Q(s,a) - y)^2 + td_weight * sum_j (Q(s,a_j) - y_j)^2 ]
    y = r + gamma * (1 - terminal) * max_a' Q_target(s', a')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from billp.rl.transitions import append_items


class SQNModel(nn.Module):
    """GRU4Rec encoder (+ optional LE state) feeding a CE head and a Q head over all items."""

    def __init__(
        self, n_items: int, embedding_dim: int, hidden_dim: int, le_state_dim: int = 0
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.pad = n_items
        self.le_state_dim = le_state_dim
        self.items = nn.Embedding(n_items + 1, embedding_dim, padding_idx=n_items)
        self.gru = nn.GRU(embedding_dim, hidden_dim, batch_first=True)
        width = hidden_dim + le_state_dim
        self.ce_head = nn.Linear(width, n_items)
        self.q_head = nn.Linear(width, n_items)

    def encode(
        self, windows: torch.Tensor, lengths: torch.Tensor, le_state: torch.Tensor | None
    ) -> torch.Tensor:
        """``[B, width]`` state of right-padded ``windows`` ``[B, L]`` with ``lengths`` ``[B]``."""
        outputs, _ = self.gru(self.items(windows))
        hidden = outputs[torch.arange(len(windows)), lengths - 1]
        if self.le_state_dim:
            if le_state is None:
                raise ValueError("this model reads the LE state; none was given")
            hidden = torch.cat([hidden, le_state], dim=-1)
        return hidden

    def forward(
        self, windows: torch.Tensor, lengths: torch.Tensor, le_state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CE logits and Q values, each ``[B, n_items]``."""
        state = self.encode(windows, lengths, le_state)
        return self.ce_head(state), self.q_head(state)


def td_target(
    reward: torch.Tensor, next_q: torch.Tensor, terminal: torch.Tensor, gamma: float
) -> torch.Tensor:
    """``r + gamma * (1 - terminal) * max_a' next_q[a']`` per row."""
    return reward + gamma * (1.0 - terminal.float()) * next_q.max(dim=-1).values


@dataclass
class SQNBatch:
    """One batch of transitions as tensors (``aug_*`` present only for +LEA)."""

    window: torch.Tensor
    length: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    terminal: torch.Tensor
    next_window: torch.Tensor
    next_length: torch.Tensor
    le_state: torch.Tensor | None = None
    le_next_state: torch.Tensor | None = None
    aug_items: torch.Tensor | None = None
    """``[B, A]``; ``-1`` marks an empty slot."""
    aug_reward: torch.Tensor | None = None
    aug_le_next_state: torch.Tensor | None = None
    aug_next_window: torch.Tensor | None = None
    """``[B, A, L]`` windows of ``history + [a_j]``."""
    aug_next_length: torch.Tensor | None = None


@dataclass(frozen=True)
class LossWeights:
    gamma: float
    q_weight: float
    ce_weight: float = 0.0
    td_weight: float = 0.0


@dataclass
class LossParts:
    total: torch.Tensor
    ce: float
    td: float
    ce_aug: float
    td_aug: float


def sqn_loss(model: SQNModel, target: SQNModel, batch: SQNBatch, weights: LossWeights) -> LossParts:
    """The SQN loss of the module docstring (augmented terms when ``batch.aug_items`` is set)."""
    logits, q = model(batch.window, batch.length, batch.le_state)
    rows = torch.arange(len(batch.action))
    ce = F.cross_entropy(logits, batch.action)
    with torch.no_grad():
        _, next_q = target(batch.next_window, batch.next_length, batch.le_next_state)
        y = td_target(batch.reward, next_q, batch.terminal, weights.gamma)
    td = F.mse_loss(q[rows, batch.action], y)
    ce_aug = torch.zeros(())
    td_aug = torch.zeros(())
    if batch.aug_items is not None and batch.aug_items.shape[1] > 0:
        assert batch.aug_reward is not None and batch.aug_next_window is not None
        assert batch.aug_next_length is not None
        valid = batch.aug_items >= 0
        items = batch.aug_items.clamp(min=0)
        n, a = items.shape
        log_probs = F.log_softmax(logits, dim=-1)
        ce_aug = -(log_probs.gather(1, items) * valid).sum() / n
        with torch.no_grad():
            le_next = (
                None
                if batch.aug_le_next_state is None
                else batch.aug_le_next_state.reshape(n * a, -1)
            )
            _, aug_next_q = target(
                batch.aug_next_window.reshape(n * a, -1), batch.aug_next_length.reshape(-1), le_next
            )
            y_aug = td_target(
                batch.aug_reward.reshape(-1), aug_next_q, torch.zeros(n * a), weights.gamma
            ).reshape(n, a)
        td_aug = (((q.gather(1, items) - y_aug) ** 2) * valid).sum() / n
    total = ce + weights.ce_weight * ce_aug + weights.q_weight * (td + weights.td_weight * td_aug)
    return LossParts(
        total,
        float(ce.detach()),
        float(td.detach()),
        float(ce_aug.detach()),
        float(td_aug.detach()),
    )


def augmented_windows(
    window: np.ndarray, length: np.ndarray, aug_items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``[B, A, L]`` windows (and ``[B, A]`` lengths) of each history extended by each proposed
    item; an empty slot (``-1``) is extended by item 0 and masked out by the loss."""
    n, a = aug_items.shape
    flat_window = np.repeat(window, a, axis=0)
    flat_length = np.repeat(length, a)
    out, lengths = append_items(flat_window, flat_length, np.maximum(aug_items.reshape(-1), 0))
    return out.reshape(n, a, -1), lengths.reshape(n, a)
