"""The LE's two training stages on one model, within a time budget: the item tokens (to generate
each item's text), then the state and reward model (L_sm, L_rm and the rating terms); see
:mod:`billp.le.train` for the whole recipe."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from billp.config import LETrainConfig
from billp.le.loss_curve import LossCurve
from billp.le.model import LEModel
from billp.le.negatives import NegativeSampler
from billp.le.packing import pack, pack_texts
from billp.le.ratings import ITEM_SHRINKAGE, prefix_offsets, rating_slots
from billp.le.train_data import UserLog

logger = logging.getLogger(__name__)

WARMUP_FRACTION = 0.05
FINAL_LR_FRACTION = 0.1
MAX_GRAD_NORM = 1.0
LENGTH_BUCKET_BATCHES = 8
"""Item-token batches whose items are sorted by text length together (less padding)."""


def item_batches(lengths: list[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of item batches: shuffled, sorted by text length within buckets of
    ``LENGTH_BUCKET_BATCHES`` batches (so batches pad little), batch order shuffled."""
    order = rng.permutation(len(lengths))
    bucket = batch_size * LENGTH_BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), bucket):
        part = order[start : start + bucket]
        part = part[np.argsort([lengths[i] for i in part], kind="stable")]
        batches += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def init_rating_side(model: LEModel, logs: dict[int, UserLog]) -> None:
    """Start the rating side at the bias-only predictor of the training logs: the mean rating
    and each item's shrunk mean residual (``ITEM_SHRINKAGE``)."""
    items = np.concatenate([log.items for log in logs.values()])
    ratings = np.concatenate([log.ratings for log in logs.values()]).astype(np.float64)
    mean = float(ratings.mean())
    sums = np.bincount(items, weights=ratings - mean, minlength=model.n_items)
    counts = np.bincount(items, minlength=model.n_items)
    with torch.no_grad():
        model.rating_mean.fill_(mean)
        model.item_bias.copy_(
            torch.as_tensor(sums / (counts + ITEM_SHRINKAGE), dtype=torch.float32)
        )


def _schedule(total: int) -> Callable[[int], float]:
    warmup = max(1, round(WARMUP_FRACTION * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 1.0 - (1.0 - FINAL_LR_FRACTION) * min(progress, 1.0)

    return factor


class Trainer:
    """Runs the stages on one model; ``deadline`` is a ``time.monotonic()`` bound."""

    def __init__(self, model: LEModel, config: LETrainConfig, deadline: float) -> None:
        self.model = model
        self.config = config
        self.deadline = deadline
        self.curve = LossCurve()
        self.budget_exhausted = False
        self.started = time.monotonic()

    def _out_of_time(self, stage: str, step: int, total: int) -> bool:
        if time.monotonic() < self.deadline:
            return False
        logger.warning(
            "time budget of %.0f s spent: %s stage stops after %d of %d steps",
            self.config.time_budget_s,
            stage,
            step,
            total,
        )
        self.budget_exhausted = True
        return True

    def item_stage(self, texts: list[list[int]], rng: np.random.Generator) -> int:
        """Train the item-token embeddings alone to generate each item's text."""
        config, model = self.config, self.model
        n_items = len(texts)
        per_epoch = math.ceil(n_items / config.item_batch_size)
        total = per_epoch * config.item_epochs
        if total == 0:
            return 0
        model.item_embeddings.requires_grad_(True)
        optimizer = torch.optim.SparseAdam([model.item_embeddings], lr=config.item_lr)
        step = 0
        lengths = [len(t) for t in texts]
        for _ in range(config.item_epochs):
            for chosen in item_batches(lengths, config.item_batch_size, rng):
                if self._out_of_time("item-token", step, total):
                    return step
                sequences = [[model.vocab_size + int(i), *texts[int(i)]] for i in chosen]
                batch = pack_texts(sequences)
                hidden = model.hidden(batch)
                rows = [
                    r
                    for b, seq in enumerate(sequences)
                    for r in batch.window_rows[b][: len(seq) - 1]
                ]
                labels = [t for seq in sequences for t in seq[1:]]
                logits = model.lm_logits(hidden[torch.as_tensor(rows, dtype=torch.int64)])
                loss = F.cross_entropy(logits, torch.as_tensor(labels, dtype=torch.int64))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if step % config.log_every == 0 or step == total:
                    elapsed = time.monotonic() - self.started
                    value = loss.item()
                    self.curve.add("item", step, elapsed, loss=value, l_text=value)
                    logger.info(
                        "item tokens  step %d/%d  loss %.4f  (%.0f s)", step, total, value, elapsed
                    )
        return step

    def _window(
        self,
        logs: dict[int, UserLog],
        users: list[int],
        weights: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[UserLog, int, int]:
        user = users[int(rng.choice(len(users), p=weights))]
        log = logs[user]
        size = min(self.config.context_items, len(log.items))
        start = int(rng.integers(len(log.items) - size + 1))
        return log, start, size

    def lora_stage(
        self,
        logs: dict[int, UserLog],
        sampler: NegativeSampler,
        prompt_ids: list[int],
        rng: np.random.Generator,
    ) -> int:
        """Train adapters, heads (and item tokens) with L_sm + L_rm (+ the rating term)."""
        config, model = self.config, self.model
        total = config.steps
        if total == 0:
            return 0
        users = sorted(logs)
        lengths = np.asarray([len(logs[u].items) for u in users], dtype=np.float64)
        weights = lengths / lengths.sum()
        dense = [
            p for n, p in model.named_parameters() if p.requires_grad and n != "item_embeddings"
        ]
        dense += [*model.state_head.parameters(), *model.score_head.parameters()]
        dense = list({id(p): p for p in dense}.values())
        for parameter in dense:
            parameter.requires_grad_(True)
        optimizers: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=config.lr)]
        tune_items = config.item_embedding_lr > 0
        model.item_embeddings.requires_grad_(tune_items)
        if tune_items:
            optimizers.append(
                torch.optim.SparseAdam([model.item_embeddings], lr=config.item_embedding_lr)
            )
        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, _schedule(total)) for o in optimizers]
        n_items = model.n_items
        n_sm = min(config.sm_negatives, n_items)
        for step in range(total):
            if self._out_of_time("state/reward", step, total):
                return step
            windows, ratings, negatives, window_slots, offsets = [], [], [], [], []
            mean = float(model.rating_mean)
            for _ in range(config.batch_size):
                log, start, size = self._window(logs, users, weights, rng)
                items = log.items[start : start + size]
                windows.append([model.vocab_size + int(i) for i in items])
                ratings.append(log.ratings[start : start + size])
                seen = np.where(
                    rng.random(len(log.items)) < config.rating_dropout, np.nan, log.ratings
                )
                window_slots.append(rating_slots(seen.tolist())[start : start + size])
                history = prefix_offsets(log.items, seen, model.item_bias, mean)
                offsets.append(history[start + 1 : start + size])
                slots = rng.choice(
                    np.arange(1, size), size=min(config.scored_positions, size - 1), replace=False
                )
                pairs = []
                for slot in sorted(int(s) for s in slots):
                    for _ in range(config.uniform_negatives):
                        pairs.append((slot, model.vocab_size + sampler.uniform(log.seen)))
                    for _ in range(config.popular_negatives):
                        matched = sampler.popularity_matched(int(items[slot]), log.seen)
                        pairs.append((slot, model.vocab_size + matched))
                negatives.append(pairs)
            batch = pack(prompt_ids, windows, negatives, window_slots)
            losses = self._lora_losses(batch, windows, ratings, offsets, rng, n_sm)
            loss = (
                losses["l_rm"]
                + config.sm_weight * losses["l_sm"]
                + config.rating_pair_weight * losses["l_rating"]
                + config.rating_weight * losses["l_mse"]
            )
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(dense, MAX_GRAD_NORM)
            for optimizer in optimizers:
                optimizer.step()
            for scheduler in schedulers:
                scheduler.step()
            done = step + 1
            if done % config.log_every == 0 or done == total:
                elapsed = time.monotonic() - self.started
                values = {k: v.item() for k, v in losses.items()}
                self.curve.add("lora", done, elapsed, loss=loss.item(), **values)
                logger.info(
                    "state/reward step %d/%d  loss %.4f  "
                    "(L_sm %.4f  L_rm %.4f  rating order %.4f  rating MSE %.4f)  (%.0f s)",
                    done,
                    total,
                    loss.item(),
                    values["l_sm"],
                    values["l_rm"],
                    values["l_rating"],
                    values["l_mse"],
                    elapsed,
                )
        return total

    def _lora_losses(
        self,
        batch: object,
        windows: list[list[int]],
        ratings: list[np.ndarray],
        offsets: list[np.ndarray],
        rng: np.random.Generator,
        n_sm: int,
    ) -> dict[str, torch.Tensor]:
        from billp.le.packing import PackedBatch

        assert isinstance(batch, PackedBatch)
        config, model = self.config, self.model
        hidden = model.hidden(batch)
        pos_rows = [r for rows in batch.window_rows for r in rows[1:]]
        state_rows = [r for rows in batch.window_rows for r in rows[:-1]]
        targets = torch.as_tensor(
            [t - model.vocab_size for w in windows for t in w[1:]], dtype=torch.int64
        )
        groups = torch.as_tensor(
            [b for b, w in enumerate(windows) for _ in w[1:]], dtype=torch.int64
        )
        pos_ratings = torch.as_tensor(np.concatenate([r[1:] for r in ratings]), dtype=torch.float32)
        psi_pos = model.psi(hidden[torch.as_tensor(pos_rows, dtype=torch.int64)])
        # L_rm: each negative against the positive it competes with.
        index_of_row = {row: k for k, row in enumerate(pos_rows)}
        pair = torch.as_tensor(
            [index_of_row[int(r)] for r in batch.negative_slots], dtype=torch.int64
        )
        if len(pair):
            psi_neg = model.psi(hidden[batch.negative_rows])
            l_rm = F.softplus(psi_neg - psi_pos[pair]).mean()
        else:
            l_rm = psi_pos.sum() * 0.0
        # L_sm: state at t against the item at t+1 and sampled items.
        states = model.state(hidden[torch.as_tensor(state_rows, dtype=torch.int64)])
        sampled = torch.as_tensor(
            rng.choice(model.n_items, size=n_sm, replace=False), dtype=torch.int64
        )
        positive_logit = (states * model.item_vectors(targets)).sum(-1, keepdim=True)
        negative_logits = states @ model.item_vectors(sampled).T
        negative_logits = negative_logits.masked_fill(
            sampled[None, :] == targets[:, None], -math.inf
        )
        logits = torch.cat([positive_logit, negative_logits], dim=1) / config.sm_temperature
        l_sm = F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.int64))
        # Rating order among a window's positives.
        better = (pos_ratings[:, None] > pos_ratings[None, :]) & (
            groups[:, None] == groups[None, :]
        )
        if bool(better.any()):
            margins = psi_pos[:, None] - psi_pos[None, :]
            l_rating = F.softplus(-margins[better]).mean()
        else:
            l_rating = psi_pos.sum() * 0.0
        # The rating head: squared error on the positives' explicit ratings.
        history = torch.as_tensor(np.concatenate(offsets), dtype=torch.float32)
        predicted = model.rating(
            hidden[torch.as_tensor(pos_rows, dtype=torch.int64)], targets, history
        )
        l_mse = F.mse_loss(predicted, pos_ratings)
        return {"l_sm": l_sm, "l_rm": l_rm, "l_rating": l_rating, "l_mse": l_mse}
