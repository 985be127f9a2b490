"""Flags generated from the config tree."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from billp.config import ConfigError, RunConfig, load_config
from billp.config.flags import add_config_arguments, collect_overrides


def parse(*argv: str) -> RunConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, RunConfig)
    return load_config(None, collect_overrides(parser.parse_args(list(argv)), RunConfig))


def test_dotted_flags_with_dashes_or_underscores() -> None:
    config = parse("--env.max-steps", "7", "--agent.shortlist_size", "5", "--seed", "3")
    assert config.env.max_steps == 7 and config.agent.shortlist_size == 5 and config.seed == 3


def test_lists_mappings_none_and_aliases() -> None:
    config = parse(
        "--llm.base-url", "http://a/v1", "http://b/v1",
        "--llm.lora", "planner=/adapters/p", "actor=/adapters/a",
        "--memory.init", "none",
    )  # fmt: skip
    assert config.llm.base_url == ["http://a/v1", "http://b/v1"]
    assert config.llm.server.lora == {"planner": Path("/adapters/p"), "actor": Path("/adapters/a")}
    assert config.memory.init is None


def test_bad_mapping_value_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        parse("--llm.lora", "planner")


def test_invalid_value_names_the_dotted_field() -> None:
    with pytest.raises(ConfigError, match=r"agent\.gamma"):
        parse("--agent.gamma", "2")


def test_toml_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('seed = 4\n[env]\nmax_steps = 9\n[agent]\nname = "react"\n')
    config = load_config(path, {"env.max_steps": "11"})
    assert (config.seed, config.env.max_steps, config.agent.name) == (4, 11, "react")
    assert config.agent.planner and not config.agent.macro and not config.agent.micro
    with pytest.raises(ConfigError, match="not valid TOML"):
        path.write_text("seed = ")
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    path.write_text("[env]\nunknown_key = 1\n")
    with pytest.raises(ConfigError, match=r"env\.unknown_key"):
        load_config(path)


def test_test_user_offset_is_a_flag_and_defaults_to_the_first_users() -> None:
    assert parse().test_user_offset == 0
    assert parse("--test-user-offset", "16").test_user_offset == 16
    with pytest.raises(ConfigError, match="test_user_offset"):
        parse("--test-user-offset", "-1")
