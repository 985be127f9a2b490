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
import resource
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from billp.common.atomic_io import write_bytes_atomic
from billp.common.torch_threads import torch_threads
from billp.config import LEConfig, LETrainConfig
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
from billp.le.loss_curve import LossCurve
from billp.le.model import LEModel
from billp.le.negatives import NegativeSampler
from billp.le.neighbours import logged_residuals, neighbours_from_ratings
from billp.le.recorded_config import manifest_config, reproduce_toml
from billp.le.scoring import score_logged
from billp.le.train_data import heldout_data, training_users, user_logs
from billp.le.trainer import (
    Trainer,
    init_rating_side,
)

__all__ = [
    "KIB_PER_MIB",
    "TRAIN_ATTENTION",
    "VERSIONED_PACKAGES",
    "TrainedLE",
    "cpu_seconds",
    "fit_calibration",
    "fit_le",
    "peak_rss_mib",
    "save_trained",
    "train_le",
]

logger = logging.getLogger(__name__)

TRAIN_ATTENTION = "eager"
KIB_PER_MIB = 1024
VERSIONED_PACKAGES = ("billp", "torch", "transformers", "peft", "safetensors")


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
