"""The LE as the simulator's user model: calibrated rewards on 1..5 and the state vector.

The LE models a user through their history alone (it has no per-user parameters), so the
``user`` argument of the :class:`~billp.envs.UserModel` protocol is accepted and ignored.
It reads at most ``context_items`` items at once: a candidate is scored after the latest
``context_items - 1`` history items, and the state of a history is read after its latest
``context_items`` items. The state after ``history + [item]`` is therefore a by-product of
scoring ``item`` after ``history``: the env's step costs one forward pass, not two.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from billp.config import LEConfig
from billp.data.catalogue import Catalogue
from billp.data.errors import UnknownItemError
from billp.envs.user_model import RATING_MAX, RATING_MIN
from billp.le.checkpoint import LoadedLE, default_checkpoint_dir, load_checkpoint
from billp.le.errors import LEError
from billp.torch_threads import torch_threads

STATE_CACHE_SIZE = 256
"""States kept per model (most recent first out): enough for the envs stepping at once."""


class LEUserModel:
    """A :class:`~billp.envs.UserModel` (and state provider) backed by a loaded LE."""

    name = "le"

    def __init__(
        self, loaded: LoadedLE, score_batch_size: int = 128, threads: int | None = None
    ) -> None:
        """
        Args:
            loaded: a verified checkpoint.
            score_batch_size: candidates per forward pass over a shared history prefix.
            threads: torch threads while scoring (restored after each call); None: unchanged.
        """
        if score_batch_size < 1:
            raise LEError(f"score_batch_size must be >= 1, got {score_batch_size}")
        if threads is not None and threads < 1:
            raise LEError(f"threads must be >= 1 or None, got {threads}")
        self.threads = threads
        self.loaded = loaded
        self.model = loaded.model
        self.calibration = loaded.calibration
        self.prompt_ids = list(loaded.manifest.prompt_ids)
        self.context_items = loaded.manifest.context_items
        self.n_items = loaded.manifest.n_items
        self.score_batch_size = score_batch_size
        self._states: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        # Envs step in worker threads (billp.runner) while baselines score on the event
        # loop: one forward pass at a time keeps the state cache and torch's threads sane.
        self._lock = threading.RLock()
        with torch.no_grad():
            self._item_vectors = (
                torch.nn.functional.normalize(self.model.item_embeddings.float(), dim=-1)
                .numpy()
                .copy()
            )

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

    def _remember(self, window: Sequence[int], state: np.ndarray) -> None:
        key = tuple(window)
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > STATE_CACHE_SIZE:
            self._states.popitem(last=False)

    # -- scores ----------------------------------------------------------------------------

    def raw_scores(self, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """Uncalibrated psi (float32) of ``items`` after ``history``, sharing its prefix."""
        context = self._history(history)[-(self.context_items - 1) :]
        candidates = self._items(items, "candidate items")
        if not candidates:
            return np.zeros(0, dtype=np.float32)
        tokens = [self.model.vocab_size + i for i in candidates]
        with self._lock:
            with torch_threads(self.threads):
                scores, states, prefix_state = self.model.score_shared_prefix(
                    self._tokens(context), tokens, self.score_batch_size
                )
            self._remember(context, prefix_state.numpy())
            if len(candidates) == 1:
                self._remember([*context, candidates[0]], states[0].numpy())
        return scores.numpy().astype(np.float32)

    def rewards(self, user: int, history: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """Calibrated rewards (float32, in [1, 5]) of ``items`` after ``history``."""
        ratings = self.calibration(self.raw_scores(history, items))
        return np.clip(ratings, RATING_MIN, RATING_MAX).astype(np.float32)

    def reward(self, user: int, history: Sequence[int], item: int) -> float:
        """The calibrated reward of ``item`` after ``history`` (``user`` is not used)."""
        return float(self.rewards(user, history, [item])[0])

    def state(self, user: int, history: Sequence[int]) -> np.ndarray:
        """The unit-length state vector s_t (float32 ``[state_dim]``) after ``history``."""
        window = self._history(history)[-self.context_items :]
        key = tuple(window)
        with self._lock:
            cached = self._states.get(key)
            if cached is None:
                with torch_threads(self.threads):
                    cached = self.model.state_of(self._tokens(window)).numpy()
                self._remember(window, cached)
            return cached.astype(np.float32, copy=True)


def load_user_model(config: LEConfig, catalogue: Catalogue) -> LEUserModel:
    """Load ``config.checkpoint`` (default: the shipped one) for ``catalogue`` and wrap it.

    Raises:
        CheckpointError: the checkpoint is missing or corrupted.
        CheckpointMismatchError: it was trained on another catalogue or base model.
    """
    folder = Path(config.checkpoint) if config.checkpoint is not None else default_checkpoint_dir()
    loaded = load_checkpoint(folder, catalogue, config.base_model, config.dtype)
    return LEUserModel(
        loaded, score_batch_size=config.score_batch_size, threads=config.score_threads
    )
