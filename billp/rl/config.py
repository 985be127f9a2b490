"""Configuration of ``python -m billp.rl``: the SQN/LEA trainer and the Tianshou baselines.

Kept in this package (not in billp/config/) while the RL code settles; the ``data`` and
``env`` sections are the main tree's :class:`DataConfig` and :class:`EnvConfig` classes (not
copies), so a dataset and both simulators are configured exactly as for
``python -m billp.simulate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from billp.config import (
    OTHER_COMMANDS_LE_SECTIONS,
    DataConfig,
    EnvConfig,
    EnvName,
    Section,
    load_model_config,
)

SQNVariant = Literal["base", "sm", "rm", "lea", "base-all"]
"""base: logged rating; sm: + LE state; rm: LE reward in the TD target; lea: sm + rm + LE-proposed
positive actions; base-all: base on every logged transition of the users the LE was trained on
(the same data the LE variants import through the LE)."""
TianshouAlgo = Literal["bcq", "cql", "crr", "dqn", "a2c"]
OFFLINE_ALGOS: tuple[str, ...] = ("bcq", "cql", "crr")
ONLINE_ALGOS: tuple[str, ...] = ("dqn", "a2c")
SQN_VARIANTS: tuple[str, ...] = ("base", "sm", "rm", "lea", "base-all")


class LEFeatureConfig(Section):
    """Which logged transitions get LE features, and how (computed once, cached on disk)."""

    source: Literal["le", "fake"] = Field(
        "le",
        description="'le': the LE checkpoint of env.le; 'fake': a deterministic stand-in built "
        "from random item vectors (tests, pipeline checks; its numbers mean nothing).",
    )
    users: int | None = Field(
        120,
        ge=1,
        description="Train users whose logs are used (a seeded subset; none: all). Every SQN "
        "variant trains on the same transitions, so the comparison is like for like.",
    )
    max_transitions_per_user: int | None = Field(
        20,
        ge=1,
        description="Latest transitions kept per user (none: all). LE forward passes are the "
        "slow part on CPU, so the default keeps the feature pass within minutes.",
    )
    candidate_pool: int = Field(
        16,
        ge=1,
        description="Items nearest to the LE state that the reward model scores per transition; "
        "the LE's proposed positives are the best-scored of them.",
    )
    n_augmented: int = Field(
        3,
        ge=0,
        description="LE-proposed positives stored per transition (lea.n_augmented may use fewer).",
    )
    seed: int = Field(0, description="Seed of the user subset.")
    fake_dim: int = Field(32, ge=2, description="State size of the fake LE.")
    cache_dir: Path | None = Field(
        None, description="Feature cache (default: <env.cache_dir or ~/.cache/billp>/rl_features)."
    )


class SQNConfig(Section):
    """The SQN-style sequential recommender: GRU4Rec encoder, CE head and Q head."""

    max_len: int = Field(20, ge=1, description="History items the GRU reads (latest first kept).")
    embedding_dim: int = Field(64, ge=1, description="Item embedding size.")
    hidden_dim: int = Field(64, ge=1, description="GRU hidden size (the encoder state).")
    gamma: float = Field(0.5, ge=0, le=1, description="Discount of the Q head's TD target.")
    q_weight: float = Field(1.0, ge=0, description="Weight of the TD loss next to the CE loss.")
    batch_size: int = Field(256, ge=1, description="Transitions per gradient step.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    epochs: int = Field(30, ge=1, description="Passes over the training transitions.")
    target_update_every: int = Field(
        100, ge=1, description="Gradient steps between copies of the online net into the target."
    )
    rank_by: Literal["ce", "q"] = Field(
        "ce", description="Head that ranks items at recommendation time (SQN: the CE head)."
    )
    time_budget_s: float = Field(
        600.0,
        gt=0,
        description="Wall-clock budget in seconds: no epoch starts that would end past it "
        "(judged by the longest epoch so far); the first epoch always runs.",
    )


class LEAConfig(Section):
    """How the LE's proposed positive actions enter the +LEA variant."""

    n_augmented: int = Field(2, ge=0, description="LE-proposed positives used per transition.")
    ce_weight: float = Field(
        0.2, ge=0, description="Weight of each proposed positive's cross-entropy term."
    )
    td_weight: float = Field(
        0.5, ge=0, description="Weight of each proposed positive's extra TD transition."
    )


class OfflineEvalConfig(Section):
    """Next-item ranking on held-out users over the full catalogue."""

    ks: list[int] = Field(default_factory=lambda: [5, 10, 20], description="Cut-offs of HR/NDCG.")
    users: int | None = Field(
        100, ge=1, description="Test users evaluated (a seeded subset; none: all)."
    )
    positions_per_user: int = Field(
        5, ge=1, description="Earliest held-out items per test user that are predicted."
    )
    exclude_seen: bool = Field(
        True, description="Rank only items outside the context (users rate a movie once)."
    )
    seed: int = Field(0, description="Seed of the test-user subset.")


class TianshouConfig(Section):
    """The paper's RL baselines through Tianshou: offline BCQ/CQL/CRR, online DQN/A2C."""

    buffer_env: EnvName = Field(
        "matrix",
        description="Simulator whose rewards label the logged dataset of the offline algorithms.",
    )
    apply_quit_rule: bool = Field(
        True,
        description="Cut each logged sequence into episodes where the simulator's quit rule would "
        "end it (terminated), so offline data carry the simulator's dynamics.",
    )
    embedding_dim: int = Field(32, ge=1, description="Item embedding size of the feature net.")
    hidden_dim: int = Field(128, ge=1, description="Hidden size of the feature net.")
    gamma: float = Field(0.5, ge=0, le=1, description="Discount.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    batch_size: int = Field(128, ge=1, description="Transitions per gradient step.")
    target_update_freq: int = Field(100, ge=1, description="Steps between target-net copies.")
    offline_steps: int = Field(
        6000, ge=1, description="Gradient steps of BCQ/CQL/CRR (the offline budget)."
    )
    online_env_steps: int = Field(
        20000, ge=1, description="Environment steps of DQN/A2C on the matrix simulator."
    )
    online_env_steps_le: int = Field(
        3000, ge=1, description="Environment steps of DQN/A2C on the LE simulator (slow on CPU)."
    )
    epochs: int = Field(
        40,
        ge=1,
        description="Epochs the step budget is split into; the time budget is checked between "
        "epochs, so small epochs keep it tight.",
    )
    training_envs: int = Field(4, ge=1, description="Environments stepped per collection step.")
    collect_steps: int = Field(64, ge=1, description="Env steps per collection step.")
    updates_per_step: float = Field(
        0.25, gt=0, description="DQN gradient steps per collected env step."
    )
    buffer_size: int = Field(20000, ge=1, description="DQN replay buffer size.")
    eps_train: float = Field(0.1, ge=0, le=1, description="DQN exploration epsilon.")
    bcq_threshold: float = Field(
        0.3, ge=0, lt=1, description="BCQ's unlikely-action threshold tau."
    )
    cql_quantiles: int = Field(8, ge=2, description="Quantiles of CQL's QR-DQN head.")
    cql_min_q_weight: float = Field(1.0, ge=0, description="CQL's conservative-loss weight.")
    a2c_ent_coef: float = Field(0.01, ge=0, description="A2C entropy bonus.")
    time_budget_s: float = Field(
        600.0,
        gt=0,
        description="Wall-clock budget in seconds: no epoch starts that would end past it "
        "(judged by the longest epoch so far); the first epoch always runs.",
    )


class RLConfig(Section):
    """Everything ``python -m billp.rl`` needs. Like ``simulate``'s tree, it ignores (with a
    warning) the ``[env.le.train]`` and ``[env.le.evaluate]`` sections of older files."""

    legacy_sections = OTHER_COMMANDS_LE_SECTIONS

    seed: int = Field(0, description="Seed of initialisation, sampling and environment resets.")
    threads: int = Field(
        1, ge=1, description="torch CPU threads (fixed, so runs are reproducible and polite)."
    )
    output_dir: Path = Field(
        Path("runs/rl"),
        description="Home of trained policies: <output_dir>/<policy>/model.safetensors + "
        "manifest.json. python -m billp.simulate finds them through $BILLP_RL_CHECKPOINTS "
        "(default runs/rl).",
    )
    progress: bool = Field(True, description="Print progress lines on stderr.")
    data: DataConfig = Field(default_factory=DataConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    features: LEFeatureConfig = Field(default_factory=LEFeatureConfig)
    sqn: SQNConfig = Field(default_factory=SQNConfig)
    lea: LEAConfig = Field(default_factory=LEAConfig)
    evaluate: OfflineEvalConfig = Field(default_factory=OfflineEvalConfig)
    tianshou: TianshouConfig = Field(default_factory=TianshouConfig)

    @model_validator(mode="after")
    def _check(self) -> RLConfig:
        if self.lea.n_augmented > self.features.n_augmented:
            raise ValueError(
                f"lea.n_augmented={self.lea.n_augmented} exceeds features.n_augmented="
                f"{self.features.n_augmented} (the proposals stored per transition)"
            )
        if any(k < 1 for k in self.evaluate.ks):
            raise ValueError(f"evaluate.ks must be positive, got {self.evaluate.ks}")
        return self


def load_rl_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RLConfig:
    """An :class:`RLConfig` from an optional TOML file and dotted overrides.

    Raises:
        ConfigError: the file is missing or invalid, or a value is out of range.
    """
    return load_model_config(RLConfig, path, overrides)
