"""A Gymnasium env in which one simulated user receives one recommendation per step.

Observation: the last K items of the user's history (oldest first), left-padded with item 0
and mask 0; with a state model (the LE env), also ``"state"``, the user's state vector after the
whole history. Action: an item id. Reward: the user model's rating in [1, 5]. The episode
terminates on the step on which the quit rule says the user leaves; that step still returns
its reward. The step cap is not part of the env: ``TimeLimit`` adds it (``truncated``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any, cast

import gymnasium
import numpy as np
from gymnasium import spaces

from billp.data.catalogue import Catalogue
from billp.data.errors import UnknownItemError
from billp.envs.quit_rule import QuitRule
from billp.envs.user_model import StateModel, UserModel

Observation = dict[str, np.ndarray]
RENDER_TAIL = 5
"""History items shown by ``render()``."""
RENDER_FPS = 4
"""Declared for Gymnasium's checker; text rendering has no frame rate of its own."""
STATE_BOUND = 1.0
"""State vectors are unit length, so every entry lies in [-STATE_BOUND, STATE_BOUND]."""


class RecommendationEnv(gymnasium.Env[Observation, np.int64]):
    """One episode = one user, starting from their starting history."""

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": RENDER_FPS}  # noqa: RUF012

    def __init__(
        self,
        catalogue: Catalogue,
        user_model: UserModel,
        starts: Mapping[int, Sequence[int]],
        quit_rule: QuitRule,
        observation_length: int,
        render_mode: str | None = None,
        state_model: StateModel | None = None,
    ) -> None:
        """
        Args:
            catalogue: the items; their count is the action space.
            user_model: the reward function.
            starts: the users an episode may simulate, with their starting histories.
            quit_rule: decides when the user leaves.
            observation_length: K, history items in each observation.
            render_mode: None or "ansi".
            state_model: adds ``"state"`` (Box of ``state_model.state_dim`` floats) to the
                observation; None keeps the observation history + mask only.

        Raises:
            TypeError: an argument has the wrong type.
            ValueError: an argument is out of range or inconsistent with the catalogue.
        """
        if not isinstance(catalogue, Catalogue):
            raise TypeError(f"catalogue must be a Catalogue, got {type(catalogue).__name__}")
        if not callable(getattr(user_model, "reward", None)):
            raise TypeError(
                f"user_model must implement UserModel.reward, got {type(user_model).__name__}"
            )
        if not isinstance(quit_rule, QuitRule):
            raise TypeError(f"quit_rule must be a QuitRule, got {type(quit_rule).__name__}")
        if quit_rule.n_items != len(catalogue):
            raise ValueError(
                f"quit_rule knows {quit_rule.n_items} items, the catalogue has {len(catalogue)}"
            )
        if isinstance(observation_length, bool) or not isinstance(observation_length, int):
            raise TypeError(
                f"observation_length must be an int, got {type(observation_length).__name__}"
            )
        if observation_length < 1:
            raise ValueError(f"observation_length must be >= 1, got {observation_length}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        if not isinstance(starts, Mapping) or not starts:
            raise ValueError("starts must be a non-empty mapping user id -> starting history")
        self._starts: dict[int, tuple[int, ...]] = {}
        for user, history in starts.items():
            try:
                key = operator.index(user)
                items = tuple(catalogue.check_id(item) for item in history)
            except (TypeError, UnknownItemError) as exc:
                raise ValueError(f"starts[{user!r}]: {exc}") from None
            self._starts[key] = items
        self._users: list[int] = sorted(self._starts)
        self.catalogue = catalogue
        self.user_model = user_model
        self.quit_rule = quit_rule
        self.observation_length = observation_length
        self.render_mode = render_mode
        if state_model is not None:
            dim = getattr(state_model, "state_dim", None)
            if not callable(getattr(state_model, "state", None)) or not isinstance(dim, int):
                raise TypeError("state_model must have an int state_dim and a state() method")
            if dim < 1:
                raise ValueError(f"state_model.state_dim must be >= 1, got {dim}")
        self.state_model = state_model
        n_items = len(catalogue)
        self.action_space = spaces.Discrete(n_items)
        parts: dict[str, spaces.Space[Any]] = {
            "history": spaces.MultiDiscrete([n_items] * observation_length),
            "mask": spaces.MultiBinary(observation_length),
        }
        if state_model is not None:
            parts["state"] = spaces.Box(
                -STATE_BOUND, STATE_BOUND, shape=(state_model.state_dim,), dtype=np.float32
            )
        observation_space = spaces.Dict(parts)
        self.observation_space = cast(spaces.Space[Observation], observation_space)
        self._user: int | None = None
        self._history: list[int] = []
        self._recommendations: list[int] = []
        self._rewards: list[float] = []
        self._done = False

    @property
    def users(self) -> list[int]:
        """The users this env can simulate (ascending)."""
        return list(self._users)

    @property
    def user_id(self) -> int | None:
        """The current episode's user (None before the first reset)."""
        return self._user

    @property
    def history(self) -> list[int]:
        """Starting history followed by this episode's recommendations."""
        return list(self._history)

    @property
    def recommendations(self) -> list[int]:
        """This episode's recommendations so far."""
        return list(self._recommendations)

    def _observation(self) -> Observation:
        k = self.observation_length
        tail = self._history[-k:]
        history = np.zeros(k, dtype=np.int64)
        mask = np.zeros(k, dtype=np.int8)
        if tail:
            history[k - len(tail) :] = tail
            mask[k - len(tail) :] = 1
        observation: Observation = {"history": history, "mask": mask}
        if self.state_model is not None and self._user is not None:
            state = np.asarray(self.state_model.state(self._user, self._history), dtype=np.float32)
            observation["state"] = np.clip(state, -STATE_BOUND, STATE_BOUND)
        return observation

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Start an episode for ``options["user_id"]`` or for a user drawn with ``np_random``."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"user_id"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; accepted: ['user_id']")
        if options.get("user_id") is not None:
            try:
                user = operator.index(options["user_id"])
            except TypeError:
                raise ValueError(
                    f"reset option user_id must be an int, got {options['user_id']!r}"
                ) from None
            if user not in self._starts:
                raise ValueError(
                    f"user_id {user} is not one of this env's {len(self._users)} users"
                )
        else:
            user = self._users[int(self.np_random.integers(len(self._users)))]
        self._user = user
        self._history = list(self._starts[user])
        self._recommendations = []
        self._rewards = []
        self._done = False
        return self._observation(), {"user_id": user, "history": list(self._history)}

    def step(self, action: np.int64 | int) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Recommend ``action`` to the current user."""
        if self._user is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the user has quit; call reset() to start a new episode")
        try:
            item = self.catalogue.check_id(action)
        except UnknownItemError as exc:
            raise UnknownItemError(f"invalid action {action!r}: {exc}") from None
        reward = float(self.user_model.reward(self._user, list(self._history), item))
        decision = self.quit_rule.decide(item, reward, self._recommendations)
        self._recommendations.append(item)
        self._history.append(item)
        self._rewards.append(reward)
        self._done = decision.quit
        info: dict[str, Any] = {
            "item_id": item,
            "quit_reason": decision.reason,
            "similar_to": decision.similar_to,
            "step": len(self._recommendations),
        }
        return self._observation(), reward, decision.quit, False, info

    def render(self) -> str | None:
        """In "ansi" mode, a text line per recent history item and the episode so far."""
        if self.render_mode != "ansi":
            return None
        if self._user is None:
            return "no episode yet (call reset())\n"
        lines = [f"user {self._user}, step {len(self._recommendations)}"]
        lines += [f"  {self.catalogue[i].label}" for i in self._history[-RENDER_TAIL:]]
        if self._rewards:
            lines.append(f"  last reward {self._rewards[-1]:.2f}, total {sum(self._rewards):.2f}")
        return "\n".join(lines) + "\n"
