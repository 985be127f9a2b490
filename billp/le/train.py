"""Train an LE checkpoint: item tokens, then state + reward model, then the calibration.

1. **Item tokens.** Each item's token embedding starts at the mean of its title's token
   embeddings and is trained alone (base frozen) to generate the item's text.
2. **State and reward model.** LoRA adapters, the state head and the score head (and, at a
   lower rate, the item tokens) are trained on history windows of the train part of the users'
   logs (by default every user's, as for the matrix model; see :func:`training_users`). The
   rating side (rating embeddings, item biases, rating head) learns the explicit ratings with a
   squared error. One packed forward pass per window (see :mod:`billp.le.packing`) gives
   * L_sm: sampled softmax between the state at each position and the next item's token
     embedding, against ``sm_negatives`` items drawn per step;
   * L_rm: ``-log sigmoid(psi(pos) - psi(neg))`` with uniform and popularity-matched negatives
     at ``scored_positions`` positions per window;
   * an optional rating term: the same pairwise loss between a window's positives ordered by
     their explicit ratings, so that psi carries the rating order the calibration maps.
3. **Calibration.** A least-squares map of held-out ratings of train users on the predicted
   rating and the neighbourhood term (:mod:`billp.le.neighbours`); see
   :mod:`billp.le.calibration`.

CPU choices (measured on a 2-core machine): the frozen base runs in bf16 with eager attention
(PyTorch's SDPA backward is slower for short sequences), the item-token stage flattens hidden
states to 2-D before the frozen tied head, and adapters are saved without the embedding layers.
"""

from __future__ import annotations

import logging
import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from pydantic import ValidationError
from torch.nn import functional as F  # noqa: N812

from billp.atomic_io import write_bytes_atomic
from billp.config import DataConfig, LEConfig, LETrainConfig, config_to_toml_dict
from billp.data.dataset import Dataset
from billp.le.base import fingerprint_base, load_base, load_tokenizer, resolve_base_folder
from billp.le.calibration import Calibration, fit_linear
from billp.le.checkpoint import (
    CONFIG_FILE,
    LOSS_CURVE_FILE,
    LEManifest,
    TrainingSummary,
    save_checkpoint,
)
from billp.le.errors import LEError
from billp.le.items import encode, item_text_ids, title_mean_embeddings
from billp.le.model import ITEM_SHRINKAGE, LEModel, prefix_offsets, rating_slots
from billp.le.negatives import NegativeSampler
from billp.le.neighbours import logged_residuals, neighbours_from_ratings
from billp.le.packing import pack, pack_texts
from billp.le.scoring import score_logged
from billp.torch_threads import torch_threads

logger = logging.getLogger(__name__)

TRAIN_ATTENTION = "eager"
WARMUP_FRACTION = 0.05
FINAL_LR_FRACTION = 0.1
MAX_GRAD_NORM = 1.0
LENGTH_BUCKET_BATCHES = 8
"""Item-token batches whose items are sorted by text length together (less padding)."""
KIB_PER_MIB = 1024
VERSIONED_PACKAGES = ("billp", "torch", "transformers", "peft", "safetensors")


@dataclass
class LossCurve:
    """Logged loss points, written as CSV beside the checkpoint."""

    rows: list[dict[str, float | int | str]] = field(default_factory=list)

    def add(self, stage: str, step: int, elapsed_s: float, **losses: float) -> None:
        self.rows.append({"stage": stage, "step": step, "elapsed_s": round(elapsed_s, 2), **losses})

    def csv(self) -> str:
        columns = [
            "stage",
            "step",
            "elapsed_s",
            "loss",
            "l_text",
            "l_sm",
            "l_rm",
            "l_rating",
            "l_mse",
        ]
        lines = [",".join(columns)]
        for row in self.rows:
            values = []
            for column in columns:
                value = row.get(column, "")
                values.append(
                    f"{value:.5f}"
                    if isinstance(value, float) and column != "elapsed_s"
                    else str(value)
                )
            lines.append(",".join(values))
        return "\n".join(lines) + "\n"

    def last(self, stage: str) -> dict[str, float]:
        rows = [r for r in self.rows if r["stage"] == stage]
        if not rows:
            return {}
        return {
            k: float(v) for k, v in rows[-1].items() if k.startswith("l") and isinstance(v, float)
        }

    def mean(self, stage: str, key: str, first: bool, count: int) -> float:
        values = [float(r[key]) for r in self.rows if r["stage"] == stage and key in r]
        chosen = values[:count] if first else values[-count:]
        return float(np.mean(chosen)) if chosen else math.nan


@dataclass(frozen=True)
class UserLog:
    """A user's train part: item ids and explicit ratings, chronological."""

    items: np.ndarray
    ratings: np.ndarray
    seen: frozenset[int]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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


def training_users(dataset: Dataset, config: LETrainConfig) -> list[int]:
    """The users whose train logs teach the LE: a seeded subset of the train users, plus every
    test user when ``config.learn_test_users`` (their train part only, as for the matrix
    model; held-out interactions are never read)."""
    users = np.asarray(dataset.split.train_users, dtype=np.int64)
    count = max(1, round(config.train_user_fraction * len(users)))
    chosen = {
        int(u) for u in np.random.default_rng(config.seed).choice(users, count, replace=False)
    }
    if config.learn_test_users:
        chosen |= {int(u) for u in dataset.split.test_users}
    return sorted(chosen)


def user_logs(dataset: Dataset, users: list[int]) -> dict[int, UserLog]:
    """Train logs of ``users`` with at least two items."""
    logs = {}
    for user in users:
        log = dataset.user_log(user)
        if len(log) >= 2:
            items = np.asarray(log.items, dtype=np.int64)
            logs[user] = UserLog(
                items=items,
                ratings=np.asarray(log.ratings, dtype=np.float32),
                seen=frozenset(int(i) for i in items),
            )
    if not logs:
        raise LEError(f"dataset {dataset.name!r}: no training user has two or more train items")
    return logs


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


class HeldOut(NamedTuple):
    """Held-out items to score, per user."""

    sequences: list[list[int]]
    """The chronological sequence: train part, then held-out part."""
    known: list[np.ndarray]
    """Ratings the LE may read: the train part's; NaN for the held-out part."""
    targets: list[list[int]]
    """Indices in the sequence of the scored held-out items."""
    ratings: list[np.ndarray]
    """Their true ratings."""
    users: list[int]


def heldout_data(dataset: Dataset, users: list[int], items_per_user: int) -> HeldOut:
    """Per user: the earliest ``items_per_user`` held-out items after their train part."""
    heldout = dataset.heldout_interactions
    out = HeldOut([], [], [], [], [])
    for user in users:
        log = dataset.user_log(user)
        mask = heldout.users == user
        held_items, held_ratings = heldout.items[mask], heldout.ratings[mask]
        if len(log.items) == 0 or len(held_items) == 0:
            continue
        count = min(items_per_user, len(held_items))
        out.sequences.append([int(i) for i in np.concatenate([log.items, held_items])])
        out.known.append(
            np.concatenate(
                [np.asarray(log.ratings, dtype=np.float64), np.full(len(held_items), np.nan)]
            )
        )
        out.targets.append(list(range(len(log.items), len(log.items) + count)))
        out.ratings.append(np.asarray(held_ratings[:count], dtype=np.float64))
        out.users.append(user)
    return out


def fit_calibration(
    model: LEModel, prompt_ids: list[int], dataset: Dataset, config: LETrainConfig
) -> tuple[Calibration, int]:
    """Least-squares map of the predicted rating and the neighbourhood term
    (:mod:`billp.le.neighbours`) onto held-out ratings of (a seeded sample of) train users,
    linear in the prediction and extended beyond its ends (see :mod:`billp.le.calibration`)."""
    users = np.asarray(dataset.split.train_users, dtype=np.int64)
    rng = np.random.default_rng(config.seed + 1)
    chosen = rng.choice(users, size=min(config.calibration_users, len(users)), replace=False)
    data = heldout_data(dataset, sorted(int(u) for u in chosen), config.calibration_items_per_user)
    if not data.sequences:
        raise LEError(
            f"dataset {dataset.name!r} has no held-out ratings of train users to calibrate on "
            "(data.holdout_fraction is 0?)"
        )
    scores = score_logged(
        model, prompt_ids, data.sequences, data.targets, config.context_items, data.known
    )
    bias = model.item_bias.detach().float().numpy().astype(np.float64)
    mean = float(model.rating_mean)
    train = dataset.train_interactions
    neighbours = neighbours_from_ratings(
        train.users, train.items, train.ratings, bias, mean, model.n_items
    )
    terms = logged_residuals(neighbours, data.sequences, data.known, data.targets, bias, mean)
    x, y = np.concatenate(scores.rating), np.concatenate(data.ratings)
    return fit_linear(x, y, np.concatenate(terms)), int(x.size)


def _versions() -> dict[str, str]:
    found = {}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found


@dataclass
class TrainedLE:
    """A freshly trained LE, not yet written to disk."""

    model: LEModel
    calibration: Calibration
    manifest: LEManifest
    curve: LossCurve


def fit_le(dataset: Dataset, le_config: LEConfig, train: LETrainConfig) -> TrainedLE:
    """Train an LE on ``dataset`` (all three stages, as ``train`` says) and describe it in a
    manifest.

    Runs with ``le_config.threads`` torch threads when set (restored afterwards).

    Raises:
        LEError: the base model, dataset or config cannot produce an LE.
    """
    with torch_threads(le_config.threads):
        return _fit_le(dataset, le_config, train)


def _fit_le(dataset: Dataset, le_config: LEConfig, config: LETrainConfig) -> TrainedLE:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    clock = time.monotonic()
    cpu_start = cpu_seconds()
    deadline = clock + config.time_budget_s
    base_folder = resolve_base_folder(le_config.base_model)
    fingerprint = fingerprint_base(base_folder)
    tokenizer = load_tokenizer(base_folder)
    base = load_base(base_folder, config.dtype, TRAIN_ATTENTION)
    catalogue = dataset.catalogue
    model = LEModel(base, len(catalogue))
    with torch.no_grad():
        model.item_embeddings.copy_(
            title_mean_embeddings(catalogue, tokenizer, base.get_input_embeddings().weight)
        )
    prompt_ids = encode(tokenizer, config.prompt)
    texts = item_text_ids(catalogue, tokenizer, config.item_text_template)
    seconds: dict[str, float] = {"setup": time.monotonic() - clock}
    trainer = Trainer(model, config, deadline)
    model.train()

    stage = time.monotonic()
    item_steps = trainer.item_stage(texts, rng)
    seconds["item_tokens"] = time.monotonic() - stage

    stage = time.monotonic()
    model.add_lora(config.lora_rank, config.lora_alpha, config.lora_targets)
    users = training_users(dataset, config)
    logs = user_logs(dataset, users)
    init_rating_side(model, logs)
    sampler = NegativeSampler(dataset.item_popularity, config.popularity_window, rng)
    lora_steps = trainer.lora_stage(logs, sampler, prompt_ids, rng)
    seconds["state_reward"] = time.monotonic() - stage

    stage = time.monotonic()
    model.eval()
    model.requires_grad_(False)
    calibration, n_points = fit_calibration(model, prompt_ids, dataset, config)
    seconds["calibration"] = time.monotonic() - stage
    seconds["total"] = time.monotonic() - clock

    summary = TrainingSummary(
        seconds={k: round(v, 1) for k, v in seconds.items()},
        cpu_seconds=round(cpu_seconds() - cpu_start, 1),
        peak_rss_mib=round(peak_rss_mib(), 1),
        item_steps=item_steps,
        lora_steps=lora_steps,
        budget_exhausted=trainer.budget_exhausted,
        final_losses={**trainer.curve.last("item"), **trainer.curve.last("lora")},
        calibration_points=n_points,
        train_users=len(logs),
        threads=torch.get_num_threads(),
        versions=_versions(),
    )
    manifest = LEManifest(
        base_model=le_config.base_model,
        base=fingerprint,
        catalogue_fingerprint=catalogue.fingerprint,
        n_items=len(catalogue),
        dataset_name=dataset.name,
        dataset_fingerprint=dataset.fingerprint,
        vocab_size=model.vocab_size,
        hidden_size=model.hidden_size,
        prompt_ids=prompt_ids,
        context_items=config.context_items,
        lora_rank=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_targets=list(config.lora_targets),
        item_dtype=config.dtype,
        weights_sha256="",
        config=manifest_config(dataset.config, le_config, config),
        training=summary,
    )
    return TrainedLE(model=model, calibration=calibration, manifest=manifest, curve=trainer.curve)


def save_trained(
    trained: TrainedLE,
    dataset: Dataset,
    le_config: LEConfig,
    train: LETrainConfig,
    out_dir: Path,
) -> LEManifest:
    """Write the checkpoint, its loss curve and the config that reproduces it."""
    manifest = save_checkpoint(out_dir, trained.model, trained.calibration, trained.manifest)
    write_bytes_atomic(out_dir / LOSS_CURVE_FILE, trained.curve.csv().encode("utf-8"))
    toml = reproduce_toml(le_config, train, dataset.config)
    write_bytes_atomic(out_dir / CONFIG_FILE, toml.encode("utf-8"))
    return manifest


def train_le(
    dataset: Dataset, le_config: LEConfig, train: LETrainConfig, out_dir: Path
) -> LEManifest:
    """Train an LE on ``dataset`` and write the checkpoint folder ``out_dir``.

    Raises:
        LEError: the base model, dataset or config cannot produce a checkpoint.
    """
    trained = fit_le(dataset, le_config, train)
    manifest = save_trained(trained, dataset, le_config, train, out_dir)
    summary = manifest.training
    assert summary is not None
    logger.info(
        "LE checkpoint written to %s: %.1f min wall, %.1f min CPU, peak RSS %.0f MiB",
        out_dir,
        summary.seconds["total"] / 60.0,
        summary.cpu_seconds / 60.0,
        summary.peak_rss_mib,
    )
    return manifest


def manifest_config(
    data_config: DataConfig, le_config: LEConfig, train: LETrainConfig
) -> dict[str, Any]:
    """The settings a manifest records: ``data``, and ``le`` with the training settings under
    ``le.train`` (the layout of every manifest so far; :func:`recorded_train_config` reads it)."""
    return {
        "data": data_config.model_dump(mode="json"),
        "le": {**le_config.model_dump(mode="json"), "train": train.model_dump(mode="json")},
    }


def recorded_train_config(manifest: LEManifest) -> LETrainConfig:
    """The training settings a checkpoint's manifest records (``config.le.train``).

    Manifests written before ``learn_test_users`` existed lack it; that code learned from the
    train users only, so their value is ``False`` (not today's default).

    Raises:
        LEError: the manifest records none, or invalid ones.
    """
    try:
        recorded = dict(manifest.config["le"]["train"])
        recorded.setdefault("learn_test_users", False)
        return LETrainConfig.model_validate(recorded)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise LEError(f"the LE manifest records no valid training settings: {exc}") from None


def reproduce_toml(le_config: LEConfig, train: LETrainConfig, data_config: DataConfig) -> str:
    """The config file that reproduces a checkpoint (``--config`` of ``billp.le train``)."""
    import tomli_w

    tree = {
        "data": config_to_toml_dict(data_config),
        "env": {"le": config_to_toml_dict(le_config.model_copy(update={"checkpoint": None}))},
        "train": config_to_toml_dict(train),
    }
    header = "# Reproduce with: python -m billp.le train --config THIS_FILE --out FOLDER\n"
    return header + tomli_w.dumps(tree)
