"""Training the Tianshou baselines: BCQ/CQL/CRR on a logged buffer, DQN/A2C on the envs.

The logged buffer is built from the training users' training logs (:func:`build_logged_buffer`):
one transition per logged item after the first, observed exactly as the env would observe it,
rewarded by the chosen simulator (the matrix model's rating, or the cached LE reward). With
``apply_quit_rule`` the simulator's quit rule cuts a log into episodes: the step on which the
simulated user would have left is ``terminated``; the end of a log is ``truncated``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tianshou.data import Batch, Collector, CollectStats, ReplayBuffer, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OfflineTrainerParams, OffPolicyTrainerParams, OnPolicyTrainerParams

from billp.data import Dataset
from billp.envs import QuitRule, UserModel, World
from billp.rl.budget import EpochBudget
from billp.rl.checkpoint import RLManifest, save_policy
from billp.rl.config import RLConfig
from billp.rl.sqn_train import seed_everything
from billp.rl.transitions import LoggedTransitions
from billp.rl.ts_nets import TianshouObservation, build_algorithm, build_nets, env_observation
from billp.world_registry import world_spec

logger = logging.getLogger(__name__)


def policy_name(algo: str, env: str) -> str:
    """Agent name of a trained baseline: offline ones by algorithm, online ones per simulator."""
    return algo if algo in ("bcq", "cql", "crr") else f"{algo}-{env}"


@dataclass(frozen=True)
class LoggedEpisodes:
    """The logged buffer's columns before they become a Tianshou buffer."""

    obs: dict[str, np.ndarray]
    act: np.ndarray
    rew: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    obs_next: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.act)


def logged_episodes(
    transitions: LoggedTransitions,
    rewards: np.ndarray,
    observation_length: int,
    quit_rule: QuitRule | None,
    states: np.ndarray | None = None,
    next_states: np.ndarray | None = None,
) -> LoggedEpisodes:
    """Columns of the logged buffer (rows in transition order, grouped by user).

    ``rewards[i]`` is the simulator's reward of transition ``i``; ``states``/``next_states``
    (LE simulator) become the observations' ``state``.
    """
    obs_rows: list[dict[str, np.ndarray]] = []
    next_rows: list[dict[str, np.ndarray]] = []
    terminated = np.zeros(len(transitions), dtype=bool)
    truncated = np.zeros(len(transitions), dtype=bool)
    recent: list[int] = []
    previous_user = -1
    for row in range(len(transitions)):
        user = int(transitions.users[row])
        if user != previous_user:
            recent, previous_user = [], user
        prefix = transitions.prefix(row)
        action = int(transitions.actions[row])
        state = None if states is None else states[row]
        next_state = None if next_states is None else next_states[row]
        obs_rows.append(env_observation(prefix, observation_length, state))
        next_rows.append(env_observation([*prefix, action], observation_length, next_state))
        if quit_rule is not None:
            decision = quit_rule.decide(action, float(rewards[row]), recent)
            recent.append(action)
            if decision.quit:
                terminated[row] = True
                recent = []
        if transitions.terminal[row] and not terminated[row]:
            truncated[row] = True

    def stack(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {key: np.stack([r[key] for r in rows]) for key in rows[0]}

    return LoggedEpisodes(
        obs=stack(obs_rows),
        act=transitions.actions.astype(np.int64),
        rew=np.asarray(rewards, dtype=np.float32),
        terminated=terminated,
        truncated=truncated,
        obs_next=stack(next_rows),
    )


def to_buffer(episodes: LoggedEpisodes) -> ReplayBuffer:
    """A Tianshou :class:`ReplayBuffer` holding ``episodes``."""
    done = episodes.terminated | episodes.truncated
    return ReplayBuffer.from_data(
        obs=Batch(episodes.obs),
        act=episodes.act,
        rew=episodes.rew,
        terminated=episodes.terminated,
        truncated=episodes.truncated,
        done=done,
        obs_next=Batch(episodes.obs_next),
    )


def matrix_rewards(user_model: UserModel, transitions: LoggedTransitions) -> np.ndarray:
    """The matrix simulator's reward of every logged action (history-independent)."""
    out = np.zeros(len(transitions), dtype=np.float32)
    for user in np.unique(transitions.users):
        rows = np.flatnonzero(transitions.users == user)
        out[rows] = user_model.rewards(int(user), [], transitions.actions[rows].tolist())
    return out


@dataclass
class TrainedBaseline:
    manifest: RLManifest
    folder: Path


def _run_epochs(
    trainer: object, epochs: int, budget_s: float, started: float, what: str, progress: bool
) -> int:
    trainer.reset()  # type: ignore[attr-defined]
    budget = EpochBudget(budget_s, started)
    done = 0
    for epoch in range(epochs):
        if not budget.allows_epoch():
            logger.warning(
                "%s: another epoch would pass the %.0f s budget; stopped after %d epochs",
                what,
                budget_s,
                epoch,
            )
            break
        budget.start_epoch()
        trainer.execute_epoch()  # type: ignore[attr-defined]
        budget.end_epoch()
        done += 1
        if progress:
            logger.info(
                "%s epoch %d/%d (%.0f s)", what, epoch + 1, epochs, time.perf_counter() - started
            )
    return done


def _manifest(
    config: RLConfig,
    dataset: Dataset,
    name: str,
    algo: str,
    trained_on: str,
    state_dim: int,
    le_identity: str | None,
    seconds: float,
    steps: int,
    transitions: int,
    train_users: int | None = None,
) -> RLManifest:
    return RLManifest(
        policy=name,
        family="tianshou",
        algo=algo,
        trained_on=trained_on,
        n_items=len(dataset.catalogue),
        catalogue_fingerprint=dataset.catalogue.fingerprint,
        dataset_fingerprint=dataset.fingerprint,
        le_state_dim=state_dim,
        le_source=config.features.source if state_dim else None,
        le_identity=le_identity if state_dim else None,
        observation_length=config.env.observation_length,
        config=config.model_dump(mode="json"),
        train_seconds=round(seconds, 2),
        steps=steps,
        transitions=transitions,
        train_users=train_users,
    )


def train_offline(
    config: RLConfig,
    algo: str,
    dataset: Dataset,
    episodes: LoggedEpisodes,
    state_dim: int,
    le_identity: str | None,
    output_root: Path,
    train_users: int | None = None,
) -> TrainedBaseline:
    """Train BCQ, CQL or CRR on the logged buffer; save under ``output_root/<algo>``
    (``train_users``: how many users' logs the buffer holds, recorded in the manifest)."""
    cfg = config.tianshou
    seed_everything(config.seed, config.threads)
    n_items = len(dataset.catalogue)
    nets = build_nets(algo, n_items, cfg, state_dim)
    algorithm = build_algorithm(algo, nets, n_items, cfg)
    per_epoch = max(1, cfg.offline_steps // cfg.epochs)
    params = OfflineTrainerParams(
        buffer=to_buffer(episodes),
        max_epochs=cfg.epochs,
        epoch_num_steps=per_epoch,
        batch_size=cfg.batch_size,
        verbose=False,
        show_progress=False,
    )
    started = time.perf_counter()
    epochs = _run_epochs(
        algorithm.create_trainer(params),
        cfg.epochs,
        cfg.time_budget_s,
        started,
        algo,
        config.progress,
    )
    elapsed = time.perf_counter() - started
    name = policy_name(algo, cfg.buffer_env)
    manifest = _manifest(
        config,
        dataset,
        name,
        algo,
        cfg.buffer_env,
        state_dim,
        le_identity,
        elapsed,
        epochs * per_epoch,
        len(episodes),
        train_users,
    )
    return TrainedBaseline(manifest, save_policy(output_root / name, nets, manifest))


def train_online(
    config: RLConfig,
    algo: str,
    world: World,
    users: Sequence[int],
    env_name: str,
    le_identity: str | None,
    output_root: Path,
) -> TrainedBaseline:
    """Train DQN or A2C on ``world``'s env (its ``users``); save under ``output_root``."""
    cfg = config.tianshou
    seed_everything(config.seed, config.threads)
    dataset = world.dataset
    n_items = len(dataset.catalogue)
    state_dim = int(world.state_model.state_dim) if world.state_model is not None else 0
    nets = build_nets(algo, n_items, cfg, state_dim)
    algorithm = build_algorithm(algo, nets, n_items, cfg)
    envs = DummyVectorEnv(
        [lambda: TianshouObservation(world.make_env(users)) for _ in range(cfg.training_envs)]
    )
    envs.seed(config.seed)
    total = (
        cfg.online_env_steps_le if world_spec(env_name).llm_environment else cfg.online_env_steps
    )
    per_epoch = max(cfg.collect_steps, total // cfg.epochs)
    started = time.perf_counter()
    if algo == "dqn":
        collector = Collector[CollectStats](
            algorithm, envs, VectorReplayBuffer(cfg.buffer_size, len(envs)), exploration_noise=True
        )
        collector.reset()
        params_off = OffPolicyTrainerParams(
            training_collector=collector,
            max_epochs=cfg.epochs,
            epoch_num_steps=per_epoch,
            collection_step_num_env_steps=cfg.collect_steps,
            batch_size=cfg.batch_size,
            update_step_num_gradient_steps_per_sample=cfg.updates_per_step,
            verbose=False,
            show_progress=False,
        )
        trainer = algorithm.create_trainer(params_off)
    elif algo == "a2c":
        collector = Collector[CollectStats](
            algorithm, envs, VectorReplayBuffer(cfg.collect_steps + len(envs), len(envs))
        )
        collector.reset()
        params_on = OnPolicyTrainerParams(
            training_collector=collector,
            max_epochs=cfg.epochs,
            epoch_num_steps=per_epoch,
            collection_step_num_env_steps=cfg.collect_steps,
            batch_size=None,
            verbose=False,
            show_progress=False,
        )
        trainer = algorithm.create_trainer(params_on)
    else:
        raise ValueError(f"{algo!r} is not an online algorithm (dqn, a2c)")
    name = policy_name(algo, env_name)
    epochs = _run_epochs(trainer, cfg.epochs, cfg.time_budget_s, started, name, config.progress)
    elapsed = time.perf_counter() - started
    envs.close()
    manifest = _manifest(
        config,
        dataset,
        name,
        algo,
        env_name,
        state_dim,
        le_identity,
        elapsed,
        epochs * per_epoch,
        epochs * per_epoch,
    )
    return TrainedBaseline(manifest, save_policy(output_root / name, nets, manifest))
