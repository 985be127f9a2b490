"""One trainer for the four SQN variants (base, +SM, +RM, +LEA), offline on the training logs."""

from __future__ import annotations

import copy
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from billp.config import validate_recorded
from billp.data import Dataset
from billp.rl.budget import EpochBudget
from billp.rl.checkpoint import RLManifest, save_policy
from billp.rl.config import RLConfig
from billp.rl.features import LEFeatures
from billp.rl.le_models import LEFeatureModel
from billp.rl.sqn import LossWeights, SQNBatch, SQNModel, augmented_windows, sqn_loss
from billp.rl.transitions import LoggedTransitions, append_items, windows

logger = logging.getLogger(__name__)

POLICY_NAMES: dict[str, str] = {
    "base": "sqn",
    "sm": "sqn-sm",
    "rm": "sqn-rm",
    "lea": "lea",
    "base-all": "sqn-all",
}
"""Agent name of each variant's trained policy."""


@dataclass(frozen=True)
class VariantSpec:
    le_state: bool
    le_reward: bool
    augment: bool
    all_le_users: bool = False
    """Train on every logged transition of the users the LE was trained on (the data the LE
    variants import through the LE), not on the featurised subset."""

    @property
    def needs_le(self) -> bool:
        return self.le_state or self.le_reward or self.augment


VARIANTS: dict[str, VariantSpec] = {
    "base": VariantSpec(False, False, False),
    "sm": VariantSpec(True, False, False),
    "rm": VariantSpec(False, True, False),
    "lea": VariantSpec(True, True, True),
    "base-all": VariantSpec(False, False, False, all_le_users=True),
}


def seed_everything(seed: int, threads: int) -> None:
    """Seed python, numpy and torch; fixed torch threads; deterministic kernels where possible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class TrainingData:
    """Per-transition numpy arrays the batches are cut from."""

    window: np.ndarray
    length: np.ndarray
    next_window: np.ndarray
    next_length: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    le_state: np.ndarray | None = None
    le_next_state: np.ndarray | None = None
    aug_items: np.ndarray | None = None
    aug_reward: np.ndarray | None = None
    aug_le_next_state: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.action)


def build_training_data(
    transitions: LoggedTransitions,
    features: LEFeatures | None,
    spec: VariantSpec,
    max_len: int,
    pad: int,
    n_augmented: int,
) -> TrainingData:
    """The arrays a variant trains on.

    Raises:
        ValueError: the variant needs LE features and none (or too few proposals) were given.
    """
    if spec.needs_le and features is None:
        raise ValueError("this variant needs LE features; none were given")
    histories = [transitions.prefix(i) for i in range(len(transitions))]
    window, length = windows(histories, max_len, pad)
    next_window, next_length = append_items(window, length, transitions.actions)
    data = TrainingData(
        window=window,
        length=length,
        next_window=next_window,
        next_length=next_length,
        action=transitions.actions.copy(),
        reward=transitions.ratings.copy(),
        terminal=transitions.terminal.copy(),
    )
    if features is None:
        return data
    if spec.le_reward:
        data.reward = features.reward.astype(np.float32)
    if spec.le_state:
        data.le_state = features.state
        data.le_next_state = features.next_state
    if spec.augment and n_augmented:
        if features.aug_items.shape[1] < n_augmented:
            raise ValueError(
                f"the LE features hold {features.aug_items.shape[1]} proposals per transition, "
                f"the variant asks for {n_augmented}"
            )
        data.aug_items = features.aug_items[:, :n_augmented]
        data.aug_reward = features.aug_reward[:, :n_augmented]
        if spec.le_state:
            data.aug_le_next_state = features.aug_next_state[:, :n_augmented]
    return data


def make_batch(data: TrainingData, index: np.ndarray) -> SQNBatch:
    """Tensors of the transitions at ``index``."""

    def t(array: np.ndarray | None) -> torch.Tensor | None:
        return None if array is None else torch.as_tensor(array[index])

    batch = SQNBatch(
        window=torch.as_tensor(data.window[index]),
        length=torch.as_tensor(data.length[index]),
        action=torch.as_tensor(data.action[index]),
        reward=torch.as_tensor(data.reward[index]),
        terminal=torch.as_tensor(data.terminal[index]),
        next_window=torch.as_tensor(data.next_window[index]),
        next_length=torch.as_tensor(data.next_length[index]),
        le_state=t(data.le_state),
        le_next_state=t(data.le_next_state),
    )
    if data.aug_items is not None:
        items = data.aug_items[index]
        aug_window, aug_length = augmented_windows(data.window[index], data.length[index], items)
        batch.aug_items = torch.as_tensor(items)
        batch.aug_reward = t(data.aug_reward)
        batch.aug_le_next_state = t(data.aug_le_next_state)
        batch.aug_next_window = torch.as_tensor(aug_window)
        batch.aug_next_length = torch.as_tensor(aug_length)
    return batch


@dataclass
class TrainedSQN:
    model: SQNModel
    manifest: RLManifest
    folder: Path


def train_sqn(
    config: RLConfig,
    variant: str,
    dataset: Dataset,
    transitions: LoggedTransitions,
    features: LEFeatures | None,
    feature_model: LEFeatureModel | None,
    output_root: Path,
    le_train_users: int | None = None,
) -> TrainedSQN:
    """Train ``variant`` and save it under ``output_root/<policy name>`` (``le_train_users``:
    how many users taught the LE it reads, recorded in the manifest)."""
    spec = VARIANTS[variant]
    cfg = config.sqn
    seed_everything(config.seed, config.threads)
    n_items = len(dataset.catalogue)
    n_aug = config.lea.n_augmented if spec.augment else 0
    data = build_training_data(transitions, features, spec, cfg.max_len, n_items, n_aug)
    le_dim = 0 if not spec.le_state or features is None else int(features.state.shape[1])
    model = SQNModel(n_items, cfg.embedding_dim, cfg.hidden_dim, le_dim)
    target = copy.deepcopy(model).eval()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    weights = LossWeights(
        gamma=cfg.gamma,
        q_weight=cfg.q_weight,
        ce_weight=config.lea.ce_weight if n_aug else 0.0,
        td_weight=config.lea.td_weight if n_aug else 0.0,
    )
    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()
    step = 0
    stats: dict[str, float] = {}
    budget = EpochBudget(cfg.time_budget_s, started)
    for epoch in range(cfg.epochs):
        if not budget.allows_epoch():
            logger.warning(
                "another epoch would pass sqn.time_budget_s=%.0f; stopped after %d epochs",
                cfg.time_budget_s,
                epoch,
            )
            break
        budget.start_epoch()
        order = rng.permutation(len(data))
        sums = np.zeros(4)
        batches = 0
        model.train()
        for start in range(0, len(order), cfg.batch_size):
            batch = make_batch(data, order[start : start + cfg.batch_size])
            parts = sqn_loss(model, target, batch, weights)
            optimizer.zero_grad()
            parts.total.backward()
            optimizer.step()
            step += 1
            if step % cfg.target_update_every == 0:
                target.load_state_dict(model.state_dict())
            sums += (parts.ce, parts.td, parts.ce_aug, parts.td_aug)
            batches += 1
        budget.end_epoch()
        mean = sums / max(batches, 1)
        stats = {"ce": mean[0], "td": mean[1], "ce_aug": mean[2], "td_aug": mean[3]}
        if config.progress:
            logger.info(
                "%s epoch %d/%d: ce %.3f td %.3f ce_aug %.3f td_aug %.3f (%.0f s)",
                POLICY_NAMES[variant],
                epoch + 1,
                cfg.epochs,
                *mean,
                time.perf_counter() - started,
            )
    elapsed = time.perf_counter() - started
    name = POLICY_NAMES[variant]
    manifest = RLManifest(
        policy=name,
        family="sqn",
        algo=variant,
        trained_on="logs",
        n_items=n_items,
        catalogue_fingerprint=dataset.catalogue.fingerprint,
        dataset_fingerprint=dataset.fingerprint,
        le_state_dim=le_dim,
        le_source=config.features.source if spec.needs_le else None,
        le_identity=feature_model.identity if (spec.needs_le and feature_model) else None,
        observation_length=config.env.observation_length,
        config=config.model_dump(mode="json"),
        train_seconds=round(elapsed, 2),
        steps=step,
        transitions=len(data),
        train_users=len(set(transitions.users.tolist())),
        le_train_users=le_train_users,
        stats={k: round(float(v), 5) for k, v in stats.items()},
    )
    folder = save_policy(output_root / name, model, manifest)
    return TrainedSQN(model.eval(), manifest, folder)


def build_sqn(manifest: RLManifest) -> SQNModel:
    """An untrained :class:`SQNModel` shaped as ``manifest`` says."""
    cfg = validate_recorded(RLConfig, manifest.config, "the SQN manifest").sqn
    return SQNModel(manifest.n_items, cfg.embedding_dim, cfg.hidden_dim, manifest.le_state_dim)
