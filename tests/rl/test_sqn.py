"""The TD target and the SQN loss with and without LE-proposed actions (hand-computed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from billp.rl.sqn import LossWeights, SQNBatch, SQNModel, augmented_windows, sqn_loss, td_target

N_ITEMS = 5
PAD = N_ITEMS


def test_td_target_bootstraps_only_non_terminal_rows() -> None:
    reward = torch.tensor([1.0, 2.0, 3.0])
    next_q = torch.tensor([[0.5, 4.0, -1.0], [2.0, 1.0, 0.0], [9.0, 9.0, 9.0]])
    terminal = torch.tensor([False, False, True])
    y = td_target(reward, next_q, terminal, gamma=0.5)
    # 1 + 0.5 * 4;  2 + 0.5 * 2;  terminal: 3
    assert y.tolist() == pytest.approx([3.0, 3.0, 3.0])


def test_td_target_with_zero_discount_is_the_reward() -> None:
    y = td_target(torch.tensor([4.0]), torch.tensor([[100.0]]), torch.tensor([False]), gamma=0.0)
    assert y.tolist() == [4.0]


def test_augmented_windows_append_each_proposal_and_drop_the_oldest_when_full() -> None:
    window = np.array([[1, 2, PAD], [1, 2, 3]])
    length = np.array([2, 3])
    aug = np.array([[4, -1], [0, 4]])
    out, lengths = augmented_windows(window, length, aug)
    assert out.tolist() == [
        [[1, 2, 4], [1, 2, 0]],  # an empty slot is filled with item 0 (masked by the loss)
        [[2, 3, 0], [2, 3, 4]],
    ]
    assert lengths.tolist() == [[3, 3], [3, 3]]


def _zero_model() -> SQNModel:
    model = SQNModel(N_ITEMS, embedding_dim=3, hidden_dim=4)
    with torch.no_grad():
        for head in (model.ce_head, model.q_head):
            head.weight.zero_()
            head.bias.zero_()
    return model


def _batch(with_aug: bool) -> SQNBatch:
    window = torch.tensor([[0, 1, PAD], [2, 3, 4]])
    length = torch.tensor([2, 3])
    batch = SQNBatch(
        window=window,
        length=length,
        action=torch.tensor([2, 0]),
        reward=torch.tensor([3.0, 1.0]),
        terminal=torch.tensor([False, True]),
        next_window=torch.tensor([[0, 1, 2], [3, 4, 0]]),
        next_length=torch.tensor([3, 3]),
    )
    if with_aug:
        aug = np.array([[3, -1], [1, 2]])
        aug_window, aug_length = augmented_windows(window.numpy(), length.numpy(), aug)
        batch.aug_items = torch.as_tensor(aug)
        batch.aug_reward = torch.tensor([[4.0, 9.0], [2.0, 5.0]])
        batch.aug_next_window = torch.as_tensor(aug_window)
        batch.aug_next_length = torch.as_tensor(aug_length)
    return batch


def test_sqn_loss_without_augmentation_is_ce_plus_weighted_td() -> None:
    model = _zero_model()
    parts = sqn_loss(model, model, _batch(False), LossWeights(gamma=0.5, q_weight=2.0))
    # Zero heads: uniform logits -> CE = log 5; Q = 0 everywhere -> y = r, TD = mean(r^2).
    assert parts.ce == pytest.approx(math.log(N_ITEMS))
    assert parts.td == pytest.approx((9.0 + 1.0) / 2)
    assert parts.ce_aug == 0.0 and parts.td_aug == 0.0
    assert parts.total.item() == pytest.approx(math.log(N_ITEMS) + 2.0 * 5.0)


def test_sqn_loss_adds_weighted_terms_for_each_valid_proposal() -> None:
    model = _zero_model()
    weights = LossWeights(gamma=0.5, q_weight=1.0, ce_weight=0.25, td_weight=0.5)
    parts = sqn_loss(model, model, _batch(True), weights)
    # Three valid proposals over a batch of 2: CE_aug = 3 log 5 / 2;
    # TD_aug = (4^2 + 2^2 + 5^2) / 2 (the empty slot with reward 9 does not count).
    assert parts.ce_aug == pytest.approx(3 * math.log(N_ITEMS) / 2)
    assert parts.td_aug == pytest.approx((16.0 + 4.0 + 25.0) / 2)
    expected = math.log(N_ITEMS) + 0.25 * parts.ce_aug + 1.0 * (5.0 + 0.5 * parts.td_aug)
    assert parts.total.item() == pytest.approx(expected)


def test_sm_model_requires_the_le_state() -> None:
    model = SQNModel(N_ITEMS, embedding_dim=3, hidden_dim=4, le_state_dim=2)
    with pytest.raises(ValueError, match="LE state"):
        model(torch.tensor([[0, 1]]), torch.tensor([2]))
    ce, q = model(torch.tensor([[0, 1]]), torch.tensor([2]), torch.zeros(1, 2))
    assert ce.shape == q.shape == (1, N_ITEMS)
