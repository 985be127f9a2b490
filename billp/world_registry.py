"""Every world ``--env.name`` accepts, as data: the one list names and builders come from.

A :class:`WorldSpec` per simulated world holds its name, its builder as an import string
(``"package.module:function"``, a function of the env config and the dataset that returns a
:class:`billp.envs.World`), a description, and whether its user model is the LLM environment
(the LE): its steps run a model forward pass, which the runner steps in worker threads and the
LE batches, its state vector joins the observation, and it needs an LE checkpoint. Like
:mod:`billp.policy_registry` it is pure data in a shared module, because the config validates
the names when it is imported and may import no layer; :func:`billp.envs.world.build_world`
imports a builder only when its world is built (torch loads only for the LE).

Adding a world: write its builder in ``billp/envs/`` (or a package below), add one
:class:`WorldSpec` to :data:`WORLDS` and, for RL recommenders that read its features, teach
:mod:`billp.rl` its features. ``--env.name``'s choices and ``--help`` follow from the specs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorldSpec:
    """One simulated world: how it is named, built and described."""

    name: str
    builder: str
    """``"module:function"``; the function takes ``(EnvConfig, Dataset)`` and returns a World."""
    description: str
    llm_environment: bool = False
    """Its user model is the LE (slow steps, a state vector, an LE checkpoint)."""
    checker: str | None = None
    """``"module:function"`` taking ``(EnvConfig, Dataset)``: checks in seconds what the builder
    would load (a missing or mismatched checkpoint), so that the run can start its LLM server
    while the world loads. None: the builder itself is quick to fail."""


WORLDS: tuple[WorldSpec, ...] = (
    WorldSpec(
        "matrix",
        "billp.envs.world:build_matrix_world",
        "the classic simulator: a matrix-factorisation rating model fitted on the train part",
    ),
    WorldSpec(
        "le",
        "billp.envs.world:build_le_world",
        "the LLM-fine-tuned environment (billp.le), whose model also gives the observation's "
        "state vector",
        llm_environment=True,
        checker="billp.envs.world:check_le_world",
    ),
)
WORLD_NAMES: tuple[str, ...] = tuple(spec.name for spec in WORLDS)


def world_spec(name: str) -> WorldSpec:
    """The spec of world ``name``.

    Raises:
        KeyError: no world has that name.
    """
    for spec in WORLDS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown world {name!r}; known: {', '.join(WORLD_NAMES)}")
