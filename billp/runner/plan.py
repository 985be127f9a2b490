"""Which episodes a run plays: users, keys, seeds, and the waves they play in."""

from __future__ import annotations

import hashlib
import time

from pydantic import BaseModel

from billp.config import RunConfig
from billp.records import Phase

_SEED_MODULUS = 2**31 - 1


class EpisodeSpec(BaseModel):
    """Which user an episode plays, in which phase, with which seed."""

    key: str
    phase: Phase
    index: int
    user_id: int
    seed: int


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_MODULUS


def plan_episodes(
    config: RunConfig, train_users: list[int], test_users: list[int]
) -> list[EpisodeSpec]:
    """The episodes of a run: the first N train users, then M test users.

    The test users are the split's ``test_user_offset``-th to ``test_user_offset + M - 1``-th
    (the first M by default). ``index`` counts from 0 within each phase either way.
    """
    if config.train_users > len(train_users):
        raise ValueError(
            f"train_users={config.train_users} but the split has only "
            f"{len(train_users)} train users"
        )
    offset = config.test_user_offset
    if offset + config.test_users > len(test_users):
        raise ValueError(
            f"test_users={config.test_users}"
            + (f" from test_user_offset={offset}" if offset else "")
            + f" but the split has only {len(test_users)} test users"
        )
    specs = []
    for phase, users, count in (
        ("train", train_users, config.train_users),
        ("test", test_users[offset:], config.test_users),
    ):
        for index, user in enumerate(users[:count]):
            specs.append(
                EpisodeSpec(
                    key=f"{phase}-{index:04d}",
                    phase=phase,  # type: ignore[arg-type]
                    index=index,
                    user_id=int(user),
                    seed=derive_seed(config.seed, phase, index, user),
                )
            )
    return specs


def plan_waves(specs: list[EpisodeSpec], size: int) -> list[list[EpisodeSpec]]:
    """A phase's episodes in waves of ``size``, by their index in the phase.

    Waves follow the plan, not what is left to play, so a resumed run has the same waves.
    """
    waves: dict[tuple[str, int], list[EpisodeSpec]] = {}
    for spec in specs:
        waves.setdefault((spec.phase, spec.index // size), []).append(spec)
    return list(waves.values())


def run_name(config: RunConfig) -> str:
    """``env__agent__seed__YYYYmmdd-HHMMSS`` (local time)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    return f"{config.env.name}__{config.agent.name}__{config.seed}__{stamp}"
