"""The steps ``python -m billp.rl`` chains: data, LE features, training and evaluation."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from billp.data import Dataset, load_dataset
from billp.envs import World, build_world, default_cache_dir
from billp.rl.checkpoint import RLCheckpointError
from billp.rl.config import RLConfig
from billp.rl.features import LEFeatures, load_or_compute_context_states, load_or_compute_features
from billp.rl.le_models import LEAdapter, LEFeatureModel, RandomVectorLE
from billp.rl.policy import load_trained
from billp.rl.scoring import PopularityScorer, evaluate_offline
from billp.rl.sqn_train import POLICY_NAMES, VARIANTS, TrainedSQN, train_sqn
from billp.rl.transitions import (
    EvalCases,
    LoggedTransitions,
    build_transitions,
    heldout_cases,
    seeded_subset,
)
from billp.rl.ts_train import (
    TrainedBaseline,
    logged_episodes,
    matrix_rewards,
    train_offline,
    train_online,
)
from billp.world_registry import world_spec

logger = logging.getLogger(__name__)


class Pipeline:
    """Lazily built shared pieces (dataset, LE, features) of one ``python -m billp.rl`` call."""

    def __init__(self, config: RLConfig) -> None:
        self.config = config
        self._dataset: Dataset | None = None
        self._le: LEFeatureModel | None = None
        self._le_raw: Any = None
        self._transitions: LoggedTransitions | None = None
        self._features: LEFeatures | None = None

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = load_dataset(self.config.data)
        return self._dataset

    @property
    def cache_dir(self) -> Path:
        if self.config.features.cache_dir is not None:
            return Path(self.config.features.cache_dir)
        root = self.config.env.cache_dir
        return (Path(root) if root is not None else default_cache_dir()) / "rl_features"

    @property
    def le(self) -> LEFeatureModel:
        """The LE that labels transitions (real or fake, per ``features.source``)."""
        if self._le is None:
            catalogue = self.dataset.catalogue
            if self.config.features.source == "fake":
                self._le = RandomVectorLE(
                    len(catalogue), self.config.features.fake_dim, self.config.features.seed
                )
                self._le_raw = self._le
            else:
                from billp.le.user_model import load_user_model
                from billp.le.user_ratings import known_ratings

                started = time.perf_counter()
                self._le_raw = load_user_model(
                    self.config.env.le, catalogue, known_ratings(self.dataset)
                )
                self._le = LEAdapter(self._le_raw)
                logger.info("loaded the LE in %.1f s", time.perf_counter() - started)
        return self._le

    @property
    def transitions(self) -> LoggedTransitions:
        """The featurised subset every SQN variant trains on."""
        if self._transitions is None:
            cfg = self.config.features
            users = seeded_subset(self.dataset.split.train_users, cfg.users, cfg.seed)
            self._transitions = build_transitions(self.dataset, users, cfg.max_transitions_per_user)
            logger.info(
                "%d transitions of %d train users (features.users=%s, "
                "features.max_transitions_per_user=%s)",
                len(self._transitions),
                len(users),
                cfg.users,
                cfg.max_transitions_per_user,
            )
        return self._transitions

    @property
    def features(self) -> LEFeatures:
        if self._features is None:
            self._features = load_or_compute_features(
                self.transitions,
                self.le,
                self.config.features.n_augmented,
                self.config.features.candidate_pool,
                self.cache_dir,
                self.dataset.fingerprint,
                self.config.progress,
            )
        return self._features

    def world(self, name: str) -> World:
        """The simulator ``name``; the LLM environment reuses the pipeline's LE (the fake LE
        as user model with the fake feature source)."""
        env = self.config.env.model_copy(update={"name": name})
        if world_spec(name).llm_environment:
            if self.config.features.source == "fake":
                fake = self.le
                return World(self.dataset, fake, env, state_model=fake)  # type: ignore[arg-type]
            _ = self.le  # load once; the world reuses it
            return World(self.dataset, self._le_raw, env, state_model=self._le_raw)
        return build_world(env, self.config.data)

    # -- training ---------------------------------------------------------------------------

    def le_training_users(self) -> list[int]:
        """The train users whose logs taught the LE (every train user for the fake LE)."""
        if self.config.features.source == "fake":
            return sorted(int(u) for u in self.dataset.split.train_users)
        from billp.le.checkpoint import default_checkpoint_dir, read_manifest
        from billp.le.recorded_config import recorded_train_config
        from billp.le.train_data import training_users

        configured = self.config.env.le.checkpoint
        manifest = read_manifest(Path(configured) if configured else default_checkpoint_dir())
        return training_users(self.dataset, recorded_train_config(manifest))

    def train_variant(self, variant: str) -> TrainedSQN:
        spec = VARIANTS[variant]
        features = self.features if spec.needs_le else None
        model = self.le if spec.needs_le else None
        transitions = self.transitions
        if spec.all_le_users:
            transitions = build_transitions(self.dataset, self.le_training_users(), None)
            logger.info(
                "%s: %d transitions of the LE's %d training users",
                variant,
                len(transitions),
                len(set(transitions.users.tolist())),
            )
        return train_sqn(
            self.config,
            variant,
            self.dataset,
            transitions,
            features,
            model,
            Path(self.config.output_dir),
            le_train_users=len(self.le_training_users()) if spec.needs_le else None,
        )

    def train_baseline(self, algo: str, env_name: str) -> TrainedBaseline:
        cfg = self.config.tianshou
        output = Path(self.config.output_dir)
        if algo in ("dqn", "a2c"):
            world = self.world(env_name)
            identity = self.le.identity if world_spec(env_name).llm_environment else None
            return train_online(
                self.config,
                algo,
                world,
                self.dataset.split.train_users,
                env_name,
                identity,
                output,
            )
        world = self.world(cfg.buffer_env)
        quit_rule = world.quit_rule if cfg.apply_quit_rule else None
        if not world_spec(cfg.buffer_env).llm_environment:
            transitions = build_transitions(self.dataset, self.dataset.split.train_users, None)
            rewards = matrix_rewards(world.user_model, transitions)
            episodes = logged_episodes(
                transitions, rewards, self.config.env.observation_length, quit_rule
            )
            users = len(set(transitions.users.tolist()))
            return train_offline(
                self.config, algo, self.dataset, episodes, 0, None, output, train_users=users
            )
        features = self.features
        episodes = logged_episodes(
            self.transitions,
            features.reward,
            self.config.env.observation_length,
            quit_rule,
            features.state,
            features.next_state,
        )
        state_dim = int(features.state.shape[1])
        return train_offline(
            self.config,
            algo,
            self.dataset,
            episodes,
            state_dim,
            self.le.identity,
            output,
            train_users=len(set(self.transitions.users.tolist())),
        )

    # -- offline evaluation -----------------------------------------------------------------

    def eval_cases(self) -> EvalCases:
        cfg = self.config.evaluate
        users = seeded_subset(self.dataset.split.test_users, cfg.users, cfg.seed)
        return heldout_cases(self.dataset, users, cfg.positions_per_user)

    def evaluate(
        self, policies: Sequence[str], explicit: bool = True
    ) -> dict[str, dict[str, float]]:
        """Offline HR/NDCG of each trained policy found; missing ones are skipped (with a
        warning when they were asked for by name)."""
        cases = self.eval_cases()
        logger.info("offline evaluation: %d held-out cases", len(cases.targets))
        states: np.ndarray | None = None
        results: dict[str, dict[str, float]] = {}
        if POPULARITY_ROW in policies:
            train = self.dataset.train_interactions
            results[POPULARITY_ROW] = {
                **evaluate_offline(
                    PopularityScorer(self.dataset.item_popularity),
                    cases,
                    None,
                    self.config.evaluate.ks,
                    self.config.evaluate.exclude_seen,
                ),
                "train_seconds": 0.0,
                "train_users": float(len(set(train.users.tolist()))),
                "transitions": float(len(train.users)),
            }
        for name in policies:
            if name == POPULARITY_ROW:
                continue
            folder = Path(self.config.output_dir) / name
            try:
                loaded = load_trained(folder, self.dataset.catalogue)
            except RLCheckpointError as exc:
                logger.log(
                    logging.WARNING if explicit else logging.INFO, "skipping %s: %s", name, exc
                )
                continue
            le_states = None
            if loaded.manifest.le_state_dim:
                if loaded.manifest.le_source != self.config.features.source:
                    logger.warning(
                        "skipping %s: trained with LE source %s, features.source is %s",
                        name,
                        loaded.manifest.le_source,
                        self.config.features.source,
                    )
                    continue
                if states is None:
                    states = load_or_compute_context_states(
                        self.le,
                        cases.users,
                        cases.contexts,
                        self.cache_dir,
                        self.dataset.fingerprint,
                        self.config.progress,
                    )
                le_states = states
            metrics = evaluate_offline(
                loaded.scorer,
                cases,
                le_states,
                self.config.evaluate.ks,
                self.config.evaluate.exclude_seen,
            )
            manifest = loaded.manifest
            metrics["train_seconds"] = manifest.train_seconds
            for key in ("train_users", "le_train_users"):
                value = getattr(manifest, key)
                if value is not None:
                    metrics[key] = float(value)
            metrics["transitions"] = float(manifest.transitions)
            results[name] = metrics
        return results


POPULARITY_ROW = "popularity"
"""Not a trained policy: the train-log popularity ranking every row must beat."""
DEFAULT_EVAL_POLICIES: tuple[str, ...] = (
    POPULARITY_ROW,
    *POLICY_NAMES.values(),
    "bcq",
    "cql",
    "crr",
    "dqn-matrix",
    "dqn-le",
    "a2c-matrix",
    "a2c-le",
)
