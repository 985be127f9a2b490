"""The classic simulator's rating model: matrix factorisation with biases, cached on disk.

Design: the model is fitted on ``dataset.train_interactions`` of ALL users (train and test
users alike), so every user can be simulated; each user's latest ratings
(``heldout_interactions``) stay unseen and give the held-out RMSE logged next to the train
RMSE. Prediction: ``mean + b_user + b_item + p_user . q_item``, clipped to [1, 5].
Training: full-batch Adam on ``MSE + weight_decay * (|P|^2 + |Q|^2)`` (biases unpenalised),
computed through the dense prediction matrix, which the simulator needs anyway.

Everything is computed in float64. The fit is a few hundred full-batch steps, and in float32
the rounding differences between SIMD levels and BLAS kernels (summation order, fused
multiply-add) grew through them into rewards that differed in the 7th digit from one processor
to another; in float64 they stay some 10 orders of magnitude below the 6 decimals rewards are
written with (``python -m tests.e2e.numeric_spread`` measures it).

The fitted factors are cached as safetensors under ``<cache_dir>/rating_models/<sha256(format,
dataset fingerprint, config, numeric environment)>.safetensors``: a cache made under another
SIMD level or library version is never read (see :mod:`billp.common.numerics`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy
import torch

from billp.common.atomic_io import write_bytes_atomic
from billp.common.numerics import numeric_environment, numeric_fingerprint
from billp.common.paths import user_cache_dir
from billp.common.torch_threads import torch_threads
from billp.config import RatingModelConfig
from billp.data.dataset import RATING_MAX, RATING_MIN, Dataset, Interactions

logger = logging.getLogger(__name__)

CACHE_FORMAT = "billp-mf-3"
"""Part of the cache key and file metadata; bump it when the model or its fitting changes."""
CACHE_SUBDIR = "rating_models"
INIT_STD = 0.1
"""Standard deviation of the initial user and item factors."""
MAX_DENSE_CELLS = 250_000_000
"""Largest users x items matrix the dense fit (and the simulator's matrix) may hold."""
FIT_THREADS = 1
"""Torch threads during the fit. The full-batch steps are small (about 1-2 s for ML-100K on one
core); one thread avoids OpenMP stalls on shared CPUs and makes the fitted factors independent
of the machine's core count. The caller's thread setting is restored afterwards."""
TENSOR_NAMES = ("user_factors", "item_factors", "user_bias", "item_bias", "global_mean")


@dataclass(frozen=True)
class RatingFactors:
    """A fitted model: factors, biases and the global mean (float64 arrays)."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_mean: np.ndarray
    train_rmse: float

    def matrix(self) -> np.ndarray:
        """Predicted ratings ``[n_users, n_items]``, computed in float64, clipped to [1, 5]
        and rounded to float32 (the simulator's dtype)."""
        full = self.user_factors @ self.item_factors.T
        full += self.user_bias[:, None]
        full += self.item_bias[None, :]
        full += self.global_mean[0]
        return np.clip(full, RATING_MIN, RATING_MAX).astype(np.float32, copy=False)


default_cache_dir = user_cache_dir
"""billp's cache folder (see :func:`billp.common.paths.user_cache_dir`)."""


def cache_path(dataset: Dataset, config: RatingModelConfig, cache_dir: Path | None) -> Path:
    """Where the model for this dataset and config is cached."""
    key = hashlib.sha256(
        f"{CACHE_FORMAT}\n{dataset.fingerprint}\n{config.model_dump_json()}\n"
        f"{numeric_fingerprint()}".encode()
    ).hexdigest()
    return (cache_dir or default_cache_dir()) / CACHE_SUBDIR / f"{key}.safetensors"


def rmse(factors: RatingFactors, interactions: Interactions) -> float:
    """Root mean squared error of the clipped predictions on ``interactions``."""
    if len(interactions) == 0:
        return float("nan")
    predicted = (
        np.einsum(
            "ij,ij->i",
            factors.user_factors[interactions.users],
            factors.item_factors[interactions.items],
        )
        + factors.user_bias[interactions.users]
        + factors.item_bias[interactions.items]
        + factors.global_mean[0]
    )
    errors = np.clip(predicted, RATING_MIN, RATING_MAX) - interactions.ratings
    return float(np.sqrt(np.mean(errors.astype(np.float64) ** 2)))


def fit_rating_model(dataset: Dataset, config: RatingModelConfig) -> RatingFactors:
    """Fit MF with biases on ``dataset.train_interactions`` (seeded, full-batch Adam).

    Raises:
        ValueError: there are no train interactions, or the matrix is too large to be dense.
    """
    train = dataset.train_interactions
    n_users, n_items = dataset.n_users, len(dataset.catalogue)
    if len(train) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no train interactions to fit on")
    if n_users * n_items > MAX_DENSE_CELLS:
        raise ValueError(
            f"dataset {dataset.name!r} has {n_users} users x {n_items} items, more than the "
            f"{MAX_DENSE_CELLS} cells the dense matrix simulator supports"
        )
    with torch_threads(FIT_THREADS):
        factors = _fit(train, n_users, n_items, config)
    return dataclasses.replace(factors, train_rmse=rmse(factors, train))


def _fit(
    train: Interactions, n_users: int, n_items: int, config: RatingModelConfig
) -> RatingFactors:
    """Full-batch Adam on the dense prediction matrix, in float64; ``train_rmse`` is left unset
    (NaN)."""
    generator = torch.Generator().manual_seed(config.seed)
    dtype = torch.float64
    user_factors = (
        torch.randn(n_users, config.dim, generator=generator, dtype=dtype) * INIT_STD
    ).requires_grad_()
    item_factors = (
        torch.randn(n_items, config.dim, generator=generator, dtype=dtype) * INIT_STD
    ).requires_grad_()
    user_bias = torch.zeros(n_users, dtype=dtype, requires_grad=True)
    item_bias = torch.zeros(n_items, dtype=dtype, requires_grad=True)
    ratings = torch.as_tensor(np.asarray(train.ratings, dtype=np.float64))
    global_mean = ratings.mean()
    cells = torch.as_tensor(np.asarray(train.users) * n_items + np.asarray(train.items))
    optimizer = torch.optim.Adam([user_factors, item_factors, user_bias, item_bias], lr=config.lr)
    for _ in range(config.epochs):
        optimizer.zero_grad(set_to_none=True)
        full = user_factors @ item_factors.T + user_bias[:, None] + item_bias[None, :]
        predicted = global_mean + full.reshape(-1)[cells]
        penalty = user_factors.square().sum() + item_factors.square().sum()
        loss = (predicted - ratings).square().mean() + config.weight_decay * penalty
        loss.backward()
        optimizer.step()
    factors = RatingFactors(
        user_factors=_to_numpy(user_factors),
        item_factors=_to_numpy(item_factors),
        user_bias=_to_numpy(user_bias),
        item_bias=_to_numpy(item_bias),
        global_mean=_to_numpy(global_mean.reshape(1)),
        train_rmse=float("nan"),
    )
    return factors


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy().astype(np.float64)


def save_factors(
    path: Path, factors: RatingFactors, dataset: Dataset, config: RatingModelConfig
) -> None:
    """Write ``factors`` as safetensors, atomically (temporary file + ``os.replace``)."""
    tensors = {name: np.ascontiguousarray(getattr(factors, name)) for name in TENSOR_NAMES}
    metadata = {
        "format": CACHE_FORMAT,
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint,
        "config": config.model_dump_json(),
        "train_rmse": repr(factors.train_rmse),
        **{f"numeric_{k}": v for k, v in numeric_environment().items()},
    }
    write_bytes_atomic(path, safetensors.numpy.save(tensors, metadata=metadata))


def load_factors(path: Path, n_users: int, n_items: int, dim: int) -> RatingFactors:
    """Read cached factors and check their shapes.

    Raises:
        ValueError: the file is unreadable, from another format, or has the wrong shapes.
    """
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in TENSOR_NAMES}
    except (OSError, safetensors.SafetensorError) as exc:
        raise ValueError(f"cannot read cached rating model {path}: {exc}") from exc
    except KeyError as exc:  # pragma: no cover - depends on the safetensors version
        raise ValueError(f"cached rating model {path} lacks tensor {exc}") from exc
    if metadata.get("format") != CACHE_FORMAT:
        raise ValueError(f"cached rating model {path} has format {metadata.get('format')!r}")
    expected = {
        "user_factors": (n_users, dim),
        "item_factors": (n_items, dim),
        "user_bias": (n_users,),
        "item_bias": (n_items,),
        "global_mean": (1,),
    }
    for name, shape in expected.items():
        if tensors[name].shape != shape:
            raise ValueError(
                f"cached rating model {path}: {name} has shape {tensors[name].shape}, "
                f"expected {shape}"
            )
    return RatingFactors(
        **{name: tensors[name].astype(np.float64) for name in TENSOR_NAMES},
        train_rmse=float(metadata.get("train_rmse", "nan")),
    )


def load_or_fit_rating_matrix(
    dataset: Dataset, config: RatingModelConfig, cache_dir: Path | None
) -> np.ndarray:
    """The predicted-rating matrix ``[n_users, n_items]`` (float32, in [1, 5]).

    Loads the cached factors for (dataset fingerprint, config, numeric environment) when
    present and valid;
    otherwise fits them, logs train and held-out RMSE, and caches them (a corrupt cache file
    is reported and replaced).
    """
    path = cache_path(dataset, config, cache_dir)
    n_users, n_items = dataset.n_users, len(dataset.catalogue)
    if path.is_file():
        try:
            factors = load_factors(path, n_users, n_items, config.dim)
        except ValueError as exc:
            logger.warning("%s; refitting", exc)
        else:
            logger.info("rating model for %r loaded from %s", dataset.name, path)
            return factors.matrix()
    started = time.perf_counter()
    factors = fit_rating_model(dataset, config)
    elapsed = time.perf_counter() - started
    logger.info(
        "fitted the rating model of %r (%d users x %d items, %d train ratings) in %.1f s: "
        "train RMSE %.4f, held-out RMSE %.4f",
        dataset.name,
        n_users,
        n_items,
        len(dataset.train_interactions),
        elapsed,
        factors.train_rmse,
        rmse(factors, dataset.heldout_interactions),
    )
    save_factors(path, factors, dataset, config)
    logger.info("rating model cached at %s", path)
    return factors.matrix()
