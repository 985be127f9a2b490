"""One validated configuration tree behind every billp command.

The tree is plain Pydantic: a TOML file fills it, CLI overrides (``--env.max-steps 20``)
patch it, and validation errors name the dotted field that is wrong. Every field carries
a description, which is what ``--help`` prints.

Each section lives in its own module (:mod:`~billp.config.data`, :mod:`~billp.config.env`,
:mod:`~billp.config.le`, :mod:`~billp.config.llm`, :mod:`~billp.config.memory`,
:mod:`~billp.config.agent`), the commands' root trees in :mod:`~billp.config.commands`, and
reading them in :mod:`~billp.config.loading`; every public name is importable from here.
"""

from __future__ import annotations

from billp.config.agent import LLM_AGENTS, AgentConfig
from billp.config.commands import (
    OTHER_COMMANDS_LE_SECTIONS,
    LEEvalCommandConfig,
    LETrainCommandConfig,
    RunConfig,
)
from billp.config.data import DataConfig
from billp.config.env import EnvConfig, EnvName, RatingModelConfig
from billp.config.errors import ConfigError
from billp.config.le import LEConfig, LEEvalConfig, LETrainConfig
from billp.config.llm import LLMConfig, ServerConfig
from billp.config.loading import load_config, load_model_config, validate_recorded
from billp.config.memory import MemoryConfig
from billp.config.section import Section
from billp.config.toml_tree import UNSET_KEY, config_to_toml_dict

__all__ = [
    "LLM_AGENTS",
    "OTHER_COMMANDS_LE_SECTIONS",
    "UNSET_KEY",
    "AgentConfig",
    "ConfigError",
    "DataConfig",
    "EnvConfig",
    "EnvName",
    "LEConfig",
    "LEEvalCommandConfig",
    "LEEvalConfig",
    "LETrainCommandConfig",
    "LETrainConfig",
    "LLMConfig",
    "MemoryConfig",
    "RatingModelConfig",
    "RunConfig",
    "Section",
    "ServerConfig",
    "config_to_toml_dict",
    "load_config",
    "load_model_config",
    "validate_recorded",
]
