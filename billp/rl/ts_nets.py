"""Networks and algorithms of the Tianshou baselines over the recommendation env's Dict obs.

The observation Tianshou sees comes from :class:`TianshouObservation`: the env's ``history``
(last K item ids, oldest first, left-padded), its mask renamed ``history_mask`` (Tianshou's DQN
family reads an observation key called ``mask`` as an action mask), and, in the LE env,
``state``. :class:`ObsEncoder` is the small feature net: mean and latest item embedding
(+ the LE state) through one hidden layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from tianshou.algorithm import A2C, DQN
from tianshou.algorithm.algorithm_base import Algorithm
from tianshou.algorithm.imitation.discrete_bcq import DiscreteBCQ, DiscreteBCQPolicy
from tianshou.algorithm.imitation.discrete_cql import DiscreteCQL
from tianshou.algorithm.imitation.discrete_crr import DiscreteCRR
from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
from tianshou.algorithm.modelfree.qrdqn import QRDQNPolicy
from tianshou.algorithm.modelfree.reinforce import DiscreteActorPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Batch
from tianshou.utils.net.common import ActionReprNetWithVectorOutput, ModuleWithVectorOutput
from tianshou.utils.net.discrete import DiscreteActor, DiscreteCritic
from torch import nn

from billp.rl.config import TianshouConfig

HISTORY_MASK = "history_mask"
BCQ_MASKED_SCORE = -1e9
"""Score BCQ gives actions its imitator finds unlikely (below every allowed action)."""


class TianshouObservation(gymnasium.Wrapper):
    """Renames the env's ``mask`` to ``history_mask`` and keeps Tianshou's buffers numeric:
    info values that may be None become ``""``/``-1``, and the reset info keeps ``user_id``."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        assert isinstance(env.observation_space, spaces.Dict)
        parts = dict(env.observation_space.spaces)
        parts[HISTORY_MASK] = parts.pop("mask")
        self.observation_space = spaces.Dict(parts)

    @staticmethod
    def _observation(observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(observation)
        out[HISTORY_MASK] = out.pop("mask")
        return out

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        return self._observation(observation), {"user_id": int(info["user_id"])}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        clean = {
            "item_id": int(info.get("item_id", -1)),
            "quit_reason": info.get("quit_reason") or "",
            "similar_to": -1 if info.get("similar_to") is None else int(info["similar_to"]),
        }
        return self._observation(observation), float(reward), terminated, truncated, clean


def env_observation(
    history: Sequence[int], length: int, state: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The wrapped env's observation after ``history`` (same layout as RecommendationEnv)."""
    tail = list(history)[-length:]
    items = np.zeros(length, dtype=np.int64)
    mask = np.zeros(length, dtype=np.int8)
    if tail:
        items[length - len(tail) :] = tail
        mask[length - len(tail) :] = 1
    out = {"history": items, HISTORY_MASK: mask}
    if state is not None:
        out["state"] = np.asarray(state, dtype=np.float32)
    return out


def _field(obs: Any, name: str) -> Any:
    return obs[name] if isinstance(obs, dict) else getattr(obs, name)


class ObsEncoder(ModuleWithVectorOutput):
    """Dict observation -> ``[B, hidden]`` (mean and latest item embedding, + LE state)."""

    def __init__(self, n_items: int, embedding_dim: int, hidden_dim: int, state_dim: int) -> None:
        super().__init__(hidden_dim)
        self.state_dim = state_dim
        self.items = nn.Embedding(n_items, embedding_dim)
        self.mlp = nn.Sequential(nn.Linear(2 * embedding_dim + state_dim, hidden_dim), nn.ReLU())

    def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple[torch.Tensor, Any]:
        device = self.items.weight.device
        history = torch.as_tensor(_field(obs, "history"), dtype=torch.long, device=device)
        mask = torch.as_tensor(_field(obs, HISTORY_MASK), dtype=torch.float32, device=device)
        embedded = self.items(history) * mask.unsqueeze(-1)
        mean = embedded.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        parts = [mean, embedded[:, -1]]
        if self.state_dim:
            le = torch.as_tensor(_field(obs, "state"), dtype=torch.float32, device=device)
            parts.append(le)
        return self.mlp(torch.cat(parts, dim=-1)), state


class QuantileNet(ActionReprNetWithVectorOutput[Any]):
    """Encoder + linear head giving ``[B, n_items, quantiles]`` (CQL's QR-DQN)."""

    def __init__(self, encoder: ObsEncoder, n_items: int, quantiles: int) -> None:
        super().__init__(n_items)
        self.encoder = encoder
        self.n_items, self.quantiles = n_items, quantiles
        self.head = nn.Linear(encoder.get_output_dim(), n_items * quantiles)

    def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple[torch.Tensor, Any]:
        features, _ = self.encoder(obs)
        return self.head(features).view(-1, self.n_items, self.quantiles), state


def build_nets(algo: str, n_items: int, cfg: TianshouConfig, state_dim: int) -> nn.ModuleDict:
    """The networks of ``algo`` (shared encoder where the algorithm shares one)."""
    encoder = ObsEncoder(n_items, cfg.embedding_dim, cfg.hidden_dim, state_dim)
    if algo == "bcq":
        return nn.ModuleDict(
            {
                "model": DiscreteActor(
                    preprocess_net=encoder, action_shape=n_items, softmax_output=False
                ),
                "imitator": DiscreteActor(
                    preprocess_net=encoder, action_shape=n_items, softmax_output=False
                ),
            }
        )
    if algo == "cql":
        return nn.ModuleDict({"model": QuantileNet(encoder, n_items, cfg.cql_quantiles)})
    if algo == "crr":
        return nn.ModuleDict(
            {
                "actor": DiscreteActor(
                    preprocess_net=encoder, action_shape=n_items, softmax_output=False
                ),
                "critic": DiscreteCritic(preprocess_net=encoder, last_size=n_items),
            }
        )
    if algo == "dqn":
        return nn.ModuleDict(
            {
                "model": DiscreteActor(
                    preprocess_net=encoder, action_shape=n_items, softmax_output=False
                )
            }
        )
    if algo == "a2c":
        return nn.ModuleDict(
            {
                "actor": DiscreteActor(
                    preprocess_net=encoder, action_shape=n_items, softmax_output=False
                ),
                "critic": DiscreteCritic(preprocess_net=encoder),
            }
        )
    raise ValueError(f"unknown Tianshou algorithm {algo!r}; expected bcq, cql, crr, dqn or a2c")


def build_algorithm(algo: str, nets: nn.ModuleDict, n_items: int, cfg: TianshouConfig) -> Algorithm:
    """The Tianshou algorithm of ``algo`` around ``nets``."""
    action_space = spaces.Discrete(n_items)
    optim = AdamOptimizerFactory(lr=cfg.lr)
    if algo == "bcq":
        policy = DiscreteBCQPolicy(
            model=nets["model"],
            imitator=nets["imitator"],
            action_space=action_space,
            target_update_freq=cfg.target_update_freq,
            unlikely_action_threshold=cfg.bcq_threshold,
        )
        return DiscreteBCQ(
            policy=policy, optim=optim, gamma=cfg.gamma, target_update_freq=cfg.target_update_freq
        )
    if algo == "cql":
        return DiscreteCQL(
            policy=QRDQNPolicy(model=nets["model"], action_space=action_space),
            optim=optim,
            gamma=cfg.gamma,
            num_quantiles=cfg.cql_quantiles,
            target_update_freq=cfg.target_update_freq,
            min_q_weight=cfg.cql_min_q_weight,
        )
    if algo == "crr":
        return DiscreteCRR(
            policy=DiscreteActorPolicy(actor=nets["actor"], action_space=action_space),
            critic=nets["critic"],
            optim=optim,
            gamma=cfg.gamma,
            target_update_freq=cfg.target_update_freq,
        )
    if algo == "dqn":
        policy_q = DiscreteQLearningPolicy(
            model=nets["model"],
            action_space=action_space,
            eps_training=cfg.eps_train,
            eps_inference=0.0,
        )
        return DQN(
            policy=policy_q, optim=optim, gamma=cfg.gamma, target_update_freq=cfg.target_update_freq
        )
    if algo == "a2c":
        return A2C(
            policy=DiscreteActorPolicy(
                actor=nets["actor"], action_space=action_space, deterministic_eval=True
            ),
            critic=nets["critic"],
            optim=optim,
            gamma=cfg.gamma,
            ent_coef=cfg.a2c_ent_coef,
        )
    raise ValueError(f"unknown Tianshou algorithm {algo!r}")


class TianshouScorer:
    """Item scores of a trained Tianshou net for histories (what its greedy action ranks by)."""

    def __init__(
        self,
        algo: str,
        nets: nn.ModuleDict,
        observation_length: int,
        cfg: TianshouConfig,
        state_dim: int,
    ) -> None:
        self.algo = algo
        self.nets = nets.eval()
        self.observation_length = observation_length
        self.le_state_dim = state_dim
        self._log_tau = float(np.log(cfg.bcq_threshold)) if cfg.bcq_threshold > 0 else -np.inf

    def _batch(self, histories: Sequence[Sequence[int]], le_states: np.ndarray | None) -> Batch:
        rows = [
            env_observation(h, self.observation_length, None if le_states is None else le_states[i])
            for i, h in enumerate(histories)
        ]
        stacked = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
        if not self.le_state_dim:
            stacked.pop("state", None)
        return Batch(stacked)

    @torch.inference_mode()
    def scores(
        self, histories: Sequence[Sequence[int]], le_states: np.ndarray | None
    ) -> np.ndarray:
        if self.le_state_dim and le_states is None:
            raise ValueError(f"{self.algo} reads the LE state; none was given")
        obs = self._batch(histories, le_states)
        if self.algo == "bcq":
            q, _ = self.nets["model"](obs)
            imitation, _ = self.nets["imitator"](obs)
            ratio = imitation - imitation.max(dim=-1, keepdim=True).values
            out = torch.where(ratio < self._log_tau, torch.full_like(q, BCQ_MASKED_SCORE), q)
        elif self.algo == "cql":
            quantiles, _ = self.nets["model"](obs)
            out = quantiles.mean(dim=-1)
        elif self.algo in ("crr", "dqn", "a2c"):
            key = "model" if self.algo == "dqn" else "actor"
            out, _ = self.nets[key](obs)
        else:
            raise ValueError(f"unknown Tianshou algorithm {self.algo!r}")
        return out.float().numpy()
