"""Trained RL recommenders as agents: the same protocol as every other billp policy.

Each step the agent scores the whole catalogue for the episode's full history (starting
history + its own recommendations), masks every item the user has seen or been shown, and
recommends the best (ties to the lowest id). A policy that reads the LE state takes it from
the observation when the env is the LE it was trained with, and otherwise asks an LE of its
own (the real one from ``env.le``, or the fake one it was trained with), so every trained
policy runs in both simulators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from billp.config import validate_recorded
from billp.data import Catalogue
from billp.envs import StateModel
from billp.policy import Decision, MemorylessEpisode, RankedTrace, ScoredChoice, decide
from billp.policy.build import PolicyInputs
from billp.rl.checkpoint import (
    RLManifest,
    check_catalogue,
    checkpoint_root,
    load_weights,
    read_manifest,
)
from billp.rl.config import RLConfig
from billp.rl.le_models import RandomVectorLE
from billp.rl.scoring import Scorer, SQNScorer
from billp.rl.sqn_train import build_sqn

TRACE_SHORTLIST = 10
"""Best-scored candidates recorded in each step's trace."""
__all__ = [
    "RLPolicy",
    "build",
    "build_rl_policy",
    "load_trained",
]


@dataclass
class LoadedPolicy:
    manifest: RLManifest
    scorer: Scorer
    folder: Path


def load_trained(folder: Path, catalogue: Catalogue) -> LoadedPolicy:
    """The scorer of the trained policy in ``folder``, checked against ``catalogue``.

    Raises:
        RLCheckpointError: missing, corrupted, or trained on another catalogue.
    """
    manifest = read_manifest(folder)
    check_catalogue(manifest, len(catalogue), catalogue.fingerprint, folder)
    config = validate_recorded(RLConfig, manifest.config, f"{folder}/manifest.json")
    scorer: Scorer
    if manifest.family == "sqn":
        model = build_sqn(manifest)
        load_weights(folder, model)
        scorer = SQNScorer(model, config.sqn.max_len, config.sqn.rank_by)
    else:
        from billp.rl.ts_nets import TianshouScorer, build_nets  # Tianshou: the rl extra

        nets = build_nets(manifest.algo, manifest.n_items, config.tianshou, manifest.le_state_dim)
        load_weights(folder, nets)
        scorer = TianshouScorer(
            manifest.algo,
            nets,
            manifest.observation_length,
            config.tianshou,
            manifest.le_state_dim,
        )
    return LoadedPolicy(manifest, scorer, folder)


class RLEpisode(MemorylessEpisode):
    """One episode of a trained RL policy."""

    def __init__(self, policy: RLPolicy) -> None:
        super().__init__()
        self.policy = policy

    async def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> Decision:
        full = self.history + self.recommended
        return decide(self.policy.choose(self.user_id, full, obs))


class RLPolicy:
    """A trained scorer behind the agent protocol (no memories; nothing to commit)."""

    def __init__(
        self,
        name: str,
        loaded: LoadedPolicy,
        catalogue: Catalogue,
        state_model: StateModel | None = None,
        obs_state_ok: bool = False,
    ) -> None:
        """
        Args:
            state_model: gives the LE state when the observation has none (or the wrong one).
            obs_state_ok: the observation's ``state`` comes from the LE the policy was trained
                with, so it can be used as is.
        """
        if loaded.scorer.le_state_dim and state_model is None and not obs_state_ok:
            raise ValueError(f"policy {name!r} reads the LE state but has no way to compute it")
        self.name = name
        self.loaded = loaded
        self.catalogue = catalogue
        self.state_model = state_model
        self.obs_state_ok = obs_state_ok

    def _le_state(self, user: int, history: list[int], obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.obs_state_ok and "state" in obs:
            return np.asarray(obs["state"], dtype=np.float32)
        if self.state_model is None:
            raise ValueError(
                f"policy {self.name!r} reads the LE state; the observation has none and no LE "
                "was given"
            )
        return np.asarray(self.state_model.state(user, history), dtype=np.float32)

    def choose(self, user: int, history: list[int], obs: dict[str, np.ndarray]) -> RankedTrace:
        """This step's trace, whose choice is the best unseen item for ``history``."""
        scorer = self.loaded.scorer
        states = None
        if scorer.le_state_dim:
            states = self._le_state(user, history, obs)[None, :]
        scores = scorer.scores([history], states)[0].astype(np.float64)
        allowed = np.ones(len(self.catalogue), dtype=bool)
        allowed[history] = False
        if not allowed.any():
            raise RuntimeError(f"user {user}: no unseen catalogue item is left to recommend")
        candidates = np.flatnonzero(allowed)
        order = np.lexsort((candidates, -scores[candidates]))
        ranked = [int(i) for i in candidates[order[:TRACE_SHORTLIST]]]
        item = ranked[0]
        return RankedTrace(
            choice=ScoredChoice(item_id=item, score=round(float(scores[item]), 6)),
            shortlist=ranked,
        )

    def spawn(self, episode_key: str, seed: int) -> RLEpisode:
        return RLEpisode(self)


def build_rl_policy(
    name: str,
    catalogue: Catalogue,
    world_state_model: StateModel | None,
    load_le: Callable[[], StateModel],
    root: Path | None = None,
) -> RLPolicy:
    """The trained policy ``name`` from ``root`` (default: :func:`checkpoint_root`).

    ``world_state_model`` is the simulator's own LE (None in the matrix simulator);
    ``load_le`` loads the configured LE when the policy needs one and the world has none.

    Raises:
        RLCheckpointError: the policy was not trained yet, or for another catalogue.
    """
    folder = (root or checkpoint_root()) / name
    loaded = load_trained(folder, catalogue)
    manifest = loaded.manifest
    if not manifest.le_state_dim:
        return RLPolicy(name, loaded, catalogue)
    if manifest.le_source == "fake":
        config = validate_recorded(RLConfig, manifest.config, f"{name}'s manifest")
        fake = RandomVectorLE(len(catalogue), config.features.fake_dim, config.features.seed)
        return RLPolicy(name, loaded, catalogue, state_model=fake)
    if world_state_model is not None:
        return RLPolicy(name, loaded, catalogue, state_model=world_state_model, obs_state_ok=True)
    return RLPolicy(name, loaded, catalogue, state_model=load_le())


def build(inputs: PolicyInputs) -> RLPolicy:
    """The trained policy ``config.agent.name`` for ``inputs.world`` (its registered builder).

    Raises:
        RLCheckpointError: the policy was not trained yet, or for another catalogue.
    """
    config, world = inputs.config, inputs.world
    catalogue = world.dataset.catalogue

    def load_le() -> StateModel:
        from billp.le.user_model import load_user_model
        from billp.le.user_ratings import known_ratings

        return load_user_model(config.env.le, catalogue, known_ratings(world.dataset))

    return build_rl_policy(config.agent.name, catalogue, world.state_model, load_le)
