"""The LE as the simulator's user model: calibrated rewards on 1..5 and the state vector.

The LE models a user through their history alone (it has no per-user parameters): the items and
the ratings the user gave them. The ``user`` argument of the :class:`~billp.envs.UserModel`
protocol only selects which logged ratings (``known_ratings``, the train part of the data) the
LE may read; items without a logged rating, such as this episode's recommendations, enter the
LE as unrated. The rating adds, when the checkpoint's calibration weighs it, the user's rating
residuals on the rated history items most similar to the candidate (:mod:`billp.le.neighbours`,
similarities from all users' known ratings).
It reads at most ``context_items`` items at once: a candidate is scored after the latest
``context_items - 1`` history items, and the state of a history is read after its latest
``context_items`` items. The state after ``history + [item]`` is therefore a by-product of
scoring ``item`` after ``history``: the env's step costs one forward pass, not two.

With batching on, single-candidate scores (the env's step) and uncached states from many
threads are gathered by a :class:`~billp.le.batching.DynamicBatcher` into one forward pass
(:meth:`~billp.le.model.LEModel.score_windows`: each request's window right-padded, after the
prompt's cached keys and values); the numbers equal the one-at-a-time path's up to float
rounding, which depends on the batch's shape (fp32: within 1e-4). Several candidates after one
history still take the shared-prefix path.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from billp.common.torch_threads import torch_threads
from billp.config import LEConfig
from billp.data.catalogue import Catalogue
from billp.data.dataset import RATING_MAX, RATING_MIN
from billp.data.errors import UnknownItemError
from billp.le.batching import DynamicBatcher
from billp.le.checkpoint import (
    LoadedLE,
    default_checkpoint_dir,
    load_checkpoint,
    verify_checkpoint,
)
from billp.le.errors import LEError
from billp.le.model_outputs import PromptCache
from billp.le.neighbours import history_residuals, logged_residuals
from billp.le.ratings import UNKNOWN_RATING_SLOT, history_offset, rating_slots
from billp.le.scoring import score_logged
from billp.le.user_ratings import KnownRatings, neighbours_from_known
from billp.le.window_requests import WindowRequest, WindowResult, run_windows

__all__ = [
    "BATCHER_THREAD",
    "DEFAULT_BATCH_MAX_SIZE",
    "DEFAULT_BATCH_MAX_WAIT_MS",
    "STATE_CACHE_SIZE",
    "LEScores",
    "LEUserModel",
    "check_device",
    "check_user_model",
    "load_user_model",
]

STATE_CACHE_SIZE = 256
"""States kept per model (most recent first out): enough for the envs stepping at once."""
DEFAULT_BATCH_MAX_SIZE = 32
"""Default of ``LEConfig.batch_max_size`` (see there for how it was chosen)."""
DEFAULT_BATCH_MAX_WAIT_MS = 2.0
"""Default of ``LEConfig.batch_max_wait_ms`` (see there for how it was chosen)."""
BATCHER_THREAD = "billp-le-batcher"


class LEScores(NamedTuple):
    """Scores of candidates after one history."""

    psi: np.ndarray
    """float32 ``[C]``: choice scores (ranking)."""
    rewards: np.ndarray
    """float32 ``[C]``: calibrated predicted ratings in [1, 5]."""
    states: np.ndarray
    """float32 ``[C, state_dim]``: the state after each candidate."""


def check_device(device: str) -> None:
    """Raise :class:`LEError` unless torch can place the LE on ``device``."""
    if device == "cpu":
        return
    if device.split(":")[0] != "cuda":
        raise LEError(f"the LE runs on 'cpu' or 'cuda', got device {device!r}")
    if not torch.cuda.is_available():
        raise LEError(
            f"le.device is {device!r} but torch sees no CUDA device "
            f"(torch {torch.__version__}; CUDA build: {torch.version.cuda or 'none'})"
        )


class LEUserModel:
    """A :class:`~billp.envs.UserModel` (and state provider) backed by a loaded LE."""

    name = "le"

    def __init__(
        self,
        loaded: LoadedLE,
        score_batch_size: int = 128,
        threads: int | None = None,
        known_ratings: KnownRatings | None = None,
        device: str = "cpu",
        batching: bool = True,
        batch_max_size: int = DEFAULT_BATCH_MAX_SIZE,
        batch_max_wait_ms: float = DEFAULT_BATCH_MAX_WAIT_MS,
    ) -> None:
        """
        Args:
            loaded: a verified checkpoint.
            known_ratings: user -> item -> rating the LE may read (the users' logged ratings);
                items without one (recommendations, held-out items) enter as unrated.
            score_batch_size: candidates per forward pass over a shared history prefix.
            threads: torch threads while scoring (restored after each call); None: unchanged.
            device: where the model runs ("cpu", "cuda", "cuda:N"); it is moved there.
            batching: gather concurrent single-candidate scores and states into shared
                forward passes (see the module).
            batch_max_size: most requests per batched forward pass.
            batch_max_wait_ms: longest wait for more requests before a batch starts.
        """
        if score_batch_size < 1:
            raise LEError(f"score_batch_size must be >= 1, got {score_batch_size}")
        if threads is not None and threads < 1:
            raise LEError(f"threads must be >= 1 or None, got {threads}")
        check_device(device)
        self.threads = threads
        self.loaded = loaded
        self.model = loaded.model.to(device)
        self.calibration = loaded.calibration
        self.prompt_ids = list(loaded.manifest.prompt_ids)
        self.context_items = loaded.manifest.context_items
        self.n_items = loaded.manifest.n_items
        self.score_batch_size = score_batch_size
        self.known_ratings: KnownRatings = known_ratings if known_ratings is not None else {}
        self._item_bias = self.model.item_bias.detach().float().cpu().numpy().astype(np.float64)
        self._rating_mean = float(self.model.rating_mean)
        self.neighbours = (
            neighbours_from_known(
                self.known_ratings, self._item_bias, self._rating_mean, self.n_items
            )
            if self.calibration.uses_neighbours
            else None
        )
        self._states: OrderedDict[tuple[tuple[int, ...], tuple[int, ...]], np.ndarray] = (
            OrderedDict()
        )
        # Envs step in worker threads (billp.runner) while baselines score on the event
        # loop: one forward pass at a time keeps the state cache and torch's threads sane.
        self._lock = threading.RLock()
        self._prompt: PromptCache | None = None
        self._batcher: DynamicBatcher[WindowRequest, WindowResult] | None = (
            DynamicBatcher(
                self._run_windows, batch_max_size, batch_max_wait_ms / 1000.0, BATCHER_THREAD
            )
            if batching
            else None
        )
        with torch.no_grad():
            self._item_vectors = (
                torch.nn.functional.normalize(self.model.item_embeddings.float(), dim=-1)
                .cpu()
                .numpy()
                .copy()
            )

    @property
    def batcher(self) -> DynamicBatcher[WindowRequest, WindowResult] | None:
        """The batcher of single-candidate scores and states (None: batching off or closed)."""
        return self._batcher

    def close(self) -> None:
        """Stop the batching thread; later calls score one at a time (same numbers)."""
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()

    def __enter__(self) -> LEUserModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state_dim(self) -> int:
        """Length of the state vector (the base model's hidden size)."""
        return self.model.hidden_size

    @property
    def item_vectors(self) -> np.ndarray:
        """Unit-length item-token embeddings ``[n_items, state_dim]`` (what L_sm compares)."""
        return self._item_vectors

    # -- validation ------------------------------------------------------------------------

    def _items(self, items: Sequence[int] | np.ndarray, what: str) -> list[int]:
        array = np.asarray(items).reshape(-1)
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise UnknownItemError(f"{what} must hold integer item ids, got dtype {array.dtype}")
        values = [int(v) for v in array]
        for value in values:
            if not 0 <= value < self.n_items:
                raise UnknownItemError(
                    f"{what}: item id {value} is not in the catalogue of {self.n_items} items"
                )
        return values

    def _history(self, history: Sequence[int]) -> list[int]:
        items = self._items(history, "history")
        if not items:
            raise LEError(
                "the LE needs a non-empty history: it models a user only through the items "
                "they interacted with"
            )
        return items

    def _tokens(self, items: Sequence[int]) -> list[int]:
        return [*self.prompt_ids, *(self.model.vocab_size + i for i in items)]

    def _ratings(self, user: int | None, items: Sequence[int]) -> list[float]:
        """The user's known rating of each item (NaN where unknown)."""
        known = self.known_ratings.get(int(user), {}) if user is not None else {}
        return [float(known.get(i, math.nan)) for i in items]

    def _slots(self, ratings: Sequence[float], count: int) -> list[int]:
        """Rating slots of the prompt and of the last ``count`` of the items rated ``ratings``,
        then the slot a next item would take (each item carries its predecessor's rating)."""
        item_slots = rating_slots([*ratings, math.nan])[-(count + 1) :]
        return [UNKNOWN_RATING_SLOT] * len(self.prompt_ids) + item_slots

    def _remember(self, key: tuple[tuple[int, ...], tuple[int, ...]], state: np.ndarray) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > STATE_CACHE_SIZE:
            self._states.popitem(last=False)

    def _neighbour_terms(
        self, ratings: Sequence[float], history: Sequence[int], candidates: Sequence[int]
    ) -> np.ndarray | None:
        if self.neighbours is None:
            return None
        rated, residuals = history_residuals(history, ratings, self._item_bias, self._rating_mean)
        return self.neighbours.residuals(candidates, rated, residuals)

    def logged_ratings(
        self,
        sequences: Sequence[Sequence[int]],
        ratings: Sequence[np.ndarray],
        targets: Sequence[Sequence[int]],
    ) -> np.ndarray:
        """Calibrated rewards (float32, in [1, 5]) of logged items ``sequences[u][t]``, ``t`` in
        ``targets[u]``, concatenated in order (``ratings``: known ratings, NaN unknown)."""
        scores = score_logged(
            self.model, self.prompt_ids, sequences, targets, self.context_items, ratings
        )
        neighbour = None
        if self.neighbours is not None:
            terms = logged_residuals(
                self.neighbours, sequences, ratings, targets, self._item_bias, self._rating_mean
            )
            neighbour = np.concatenate(terms)
        predicted = self.calibration(np.concatenate(scores.rating), neighbour)
        return np.clip(predicted, RATING_MIN, RATING_MAX).astype(np.float32)

    # -- scores ----------------------------------------------------------------------------

    def score(self, user: int | None, history: Sequence[int], items: Sequence[int]) -> LEScores:
        """psi, calibrated rewards and next states of ``items`` after ``history``, with one
        forward pass over the shared history (``user``: whose known ratings to read; None:
        none)."""
        full = self._history(history)
        candidates = self._items(items, "candidate items")
        if not candidates:
            empty = np.zeros(0, dtype=np.float32)
            return LEScores(empty, empty.copy(), np.zeros((0, self.state_dim), dtype=np.float32))
        ratings = self._ratings(user, full)
        offset = history_offset(full, ratings, self.model.item_bias, float(self.model.rating_mean))
        context = full[-(self.context_items - 1) :]
        slots = self._slots(ratings, len(context))
        batcher = self._batcher
        if batcher is not None and len(candidates) == 1:
            psi, rating, states = self._score_batched(
                batcher, context, slots, candidates[0], offset
            )
        else:
            psi, rating, states = self._score_shared(context, slots, candidates, offset)
        neighbour = self._neighbour_terms(ratings, full, candidates)
        rewards = np.clip(self.calibration(rating, neighbour), RATING_MIN, RATING_MAX)
        return LEScores(
            psi=psi.astype(np.float32),
            rewards=rewards.astype(np.float32),
            states=states.astype(np.float32),
        )

    def _score_shared(
        self, context: list[int], slots: list[int], candidates: list[int], offset: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """psi, predicted ratings and states of ``candidates`` over the shared history prefix."""
        tokens = [self.model.vocab_size + i for i in candidates]
        with self._lock:
            with torch_threads(self.threads):
                scored = self.model.score_shared_prefix(
                    self._tokens(context), tokens, self.score_batch_size, slots, offset
                )
            states = scored.states.float().cpu().numpy()
            self._remember((tuple(context), tuple(slots[:-1])), scored.prefix_state.cpu().numpy())
            if len(candidates) == 1:
                self._remember((tuple([*context, candidates[0]]), tuple(slots)), states[0])
        return scored.psi.cpu().numpy(), scored.rating.cpu().numpy(), states

    def _score_batched(
        self,
        batcher: DynamicBatcher[WindowRequest, WindowResult],
        context: list[int],
        slots: list[int],
        candidate: int,
        offset: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """psi, predicted rating and state of one candidate, in the batcher's next pass."""
        item_slots = tuple(slots[len(self.prompt_ids) :])
        scored = batcher.submit(WindowRequest((*context, candidate), item_slots, offset))
        with self._lock:
            self._remember((tuple(context), tuple(slots[:-1])), scored.previous_state)
            self._remember((tuple([*context, candidate]), tuple(slots)), scored.state)
        return (
            np.asarray([scored.psi], dtype=np.float32),
            np.asarray([scored.rating], dtype=np.float32),
            scored.state[None, :],
        )

    def _run_windows(self, requests: list[WindowRequest]) -> list[WindowResult]:
        """One forward pass over the batcher's requests (runs in the batcher's thread)."""
        with self._lock, torch_threads(self.threads):
            if self._prompt is None:
                self._prompt = self.model.prompt_cache(self.prompt_ids)
            return run_windows(self.model, self._prompt, requests)

    def raw_scores(
        self, history: Sequence[int], items: Sequence[int], user: int | None = None
    ) -> np.ndarray:
        """psi (float32): how likely the user picks each of ``items`` next (the ranking score)."""
        return self.score(user, history, items).psi

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """Calibrated rewards (float32, in [1, 5]): the predicted ratings of ``items``."""
        return self.score(user, history, items).rewards

    def reward(self, user: int, history: Sequence[int], item: int) -> float:
        """The calibrated reward of ``item`` after ``history``."""
        return float(self.rewards(user, history, [item])[0])

    def _state_of(self, window: list[int], slots: list[int]) -> np.ndarray:
        """The state after ``window`` (``slots``: of the prompt and the items), computed."""
        batcher = self._batcher
        if batcher is not None:
            item_slots = tuple(slots[len(self.prompt_ids) :])
            return batcher.submit(WindowRequest(tuple(window), item_slots, 0.0)).state
        with self._lock, torch_threads(self.threads):
            state: np.ndarray = self.model.state_of(self._tokens(window), slots).cpu().numpy()
        return state

    def state(self, user: int, history: Sequence[int]) -> np.ndarray:
        """The unit-length state vector s_t (float32 ``[state_dim]``) after ``history``."""
        full = self._history(history)
        window = full[-self.context_items :]
        slots = self._slots(self._ratings(user, full), len(window))[:-1]
        key = (tuple(window), tuple(slots))
        with self._lock:
            cached = self._states.get(key)
        if cached is None:
            cached = self._state_of(window, slots)
            with self._lock:
                self._remember(key, cached)
        return cached.astype(np.float32, copy=True)


def _checkpoint_folder(config: LEConfig) -> Path:
    return Path(config.checkpoint) if config.checkpoint is not None else default_checkpoint_dir()


def check_user_model(config: LEConfig, catalogue: Catalogue) -> None:
    """What :func:`load_user_model` checks before loading, without loading the base model.

    Raises:
        LEError: the device is unavailable, or the base model names nothing loadable.
        CheckpointError: the checkpoint is missing or corrupted.
        CheckpointMismatchError: it was trained on another catalogue or base model.
    """
    check_device(config.device)
    verify_checkpoint(_checkpoint_folder(config), catalogue, config.base_model)


def load_user_model(
    config: LEConfig, catalogue: Catalogue, ratings: KnownRatings | None = None
) -> LEUserModel:
    """Load ``config.checkpoint`` (default: the shipped one) for ``catalogue`` and wrap it;
    ``ratings`` are the users' known ratings (see :func:`known_ratings`; None: none known).

    Raises:
        CheckpointError: the checkpoint is missing or corrupted.
        CheckpointMismatchError: it was trained on another catalogue or base model.
    """
    check_device(config.device)  # before the seconds of loading
    loaded = load_checkpoint(_checkpoint_folder(config), catalogue, config.base_model, config.dtype)
    return LEUserModel(
        loaded,
        score_batch_size=config.score_batch_size,
        threads=config.score_threads,
        known_ratings=ratings,
        device=config.device,
        batching=config.batching,
        batch_max_size=config.batch_max_size,
        batch_max_wait_ms=config.batch_max_wait_ms,
    )
