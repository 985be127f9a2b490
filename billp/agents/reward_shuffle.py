"""The falsification control of learning (``memory.shuffle_rewards``): an episode's memories
are made from its rewards permuted across its steps.

If memories help because they learn from rewards, memories whose rewards no longer belong
to their items must not help. The permutation keeps each episode's accepted rewards (their
mean and spread) and how the episode ended; it breaks which item, genre and state earned which
reward. The episode is played with the real rewards (the Planner's scratchpad and V(s)
during play see them); only what is written for later episodes is shuffled:

- the accepted steps' rewards are permuted among them; the step the user left at keeps its
  own (no TD update books it, and it is how the episode ended);
- the Reflector's session, the lesson's facts and its genre lifts read the permuted rewards;
- the actor and critic memory writes are recomputed: each non-final step's TD target
  ``(1 - gamma) * r + gamma * V(s')`` and advantage ``target - V(s)`` use its permuted
  reward, and values that came from the session's mean reward (``agent.value_source =
  "session"``) are recomputed from the permuted rewards. Values the Critic LLM or the critic
  memory gave are kept as they were: they read the real session, so with
  ``value_source = "critic"`` the micro writes still leak some of the real rewards.
"""

from __future__ import annotations

import hashlib

import numpy as np

from billp.agents.billp_critic import session_value
from billp.agents.billp_state import EpisodeState
from billp.policy.writes import ActorWrite, CriticWrite


def permutation(ep: EpisodeState, size: int, salt: str = "shuffle-rewards") -> np.ndarray:
    """The episode's seeded permutation of ``size`` steps for the control named ``salt``
    (the same in every run)."""
    digest = hashlib.sha256(f"{ep.seed}|{salt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big")).permutation(size)


def shuffle_learning_signal(ep: EpisodeState, left: bool) -> None:
    """Permute the rewards of ``ep``'s accepted steps across them (the step the user
    ``left`` at keeps its own: no TD update books it) and rebuild the episode's actor and
    critic writes from them (see the module docstring); call before the reflection."""
    accepted = len(ep.steps) - 1 if left else len(ep.steps)
    if accepted < 2:
        return
    order = permutation(ep, accepted)
    shown = [s.reward for s in ep.steps]
    shown[:accepted] = [shown[i] for i in order]
    ep.steps = [s.model_copy(update={"reward": r}) for s, r in zip(ep.steps, shown, strict=True)]
    if ep.td_log:
        booked = [record.reward for record in ep.td_log[:accepted]]
        rebuild_micro_writes(ep, [booked[i] for i in order], shown)


def rebuild_micro_writes(ep: EpisodeState, booked: list[float], shown: list[float]) -> None:
    """The actor and critic writes of ``ep.td_log`` again: the accepted steps book the
    rewards ``booked``; session values come from ``shown`` (the step rewards as the session
    showed them)."""
    gamma = ep.cfg.gamma
    actor: list[ActorWrite] = []
    critic: list[CriticWrite] = []
    for t, record in enumerate(ep.td_log):
        v = session_value(ep, shown[:t]) if record.v_source == "session" else record.v
        if record.terminal:
            reward, v_next = record.reward, 0.0
        else:
            reward = booked[t]
            v_next = (
                session_value(ep, shown[: t + 1])
                if record.v_next_source == "session"
                else record.v_next
            )
        target = (1.0 - gamma) * reward + gamma * v_next
        actor.append(
            ActorWrite(state=record.state, item_id=record.item, sign=1 if target >= v else -1)
        )
        critic.append(CriticWrite(state=record.state, value=round(target, 6)))
    ep.writes.actor, ep.writes.critic = actor, critic
