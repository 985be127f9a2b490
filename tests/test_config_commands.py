"""Each command's tree holds what that command uses; files of the older layout still load."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from billp.config import (
    ConfigError,
    LEEvalCommandConfig,
    LEEvalConfig,
    LETrainCommandConfig,
    LETrainConfig,
    RunConfig,
    load_config,
    load_model_config,
    validate_recorded,
)
from billp.config.flags import iter_leaf_fields
from billp.le.cli import build_parser as le_parser
from billp.rl.config import RLConfig, load_rl_config
from billp.simulate import build_parser as simulate_parser

OLD_LAYOUT = """
[env.le]
base_model = "some-model"
[env.le.train]
steps = 7
lora_rank = 4
[env.le.evaluate]
negatives = 9
"""


def flags(parser_help: str) -> set[str]:
    return {word for word in parser_help.split() if word.startswith("--")}


def test_simulate_and_rl_trees_hold_no_le_training_or_evaluation() -> None:
    for model in (RunConfig, RLConfig):
        dotted = {name for name, _field, _ann in iter_leaf_fields(model)}
        assert not any(name.startswith(("env.le.train.", "env.le.evaluate.")) for name in dotted)
    assert not any(f.startswith("--env.le.train") for f in flags(simulate_parser().format_help()))


def test_every_le_setting_is_a_flag_of_its_command() -> None:
    commands = le_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    train, evaluate = (
        flags(commands["train"].format_help()),
        flags(commands["evaluate"].format_help()),
    )
    assert {f"--train.{n.replace('_', '-')}" for n in LETrainConfig.model_fields} <= train
    assert {f"--evaluate.{n.replace('_', '-')}" for n in LEEvalConfig.model_fields} <= evaluate
    assert "--env.le.base-model" in train and "--env.max-steps" not in train
    assert "--env.le.checkpoint" in evaluate and "--env.max-steps" in evaluate
    assert not any(f.startswith("--evaluate.") for f in train)


def test_le_commands_read_the_old_layout_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "old.toml"
    path.write_text(OLD_LAYOUT, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="billp.config"):
        train = load_model_config(LETrainCommandConfig, path)
        evaluate = load_model_config(LEEvalCommandConfig, path)
    assert (train.train.steps, train.train.lora_rank, train.env.le.base_model) == (
        7,
        4,
        "some-model",
    )
    assert evaluate.evaluate.negatives == 9 and evaluate.env.le.base_model == "some-model"
    assert "[env.le.train] is deprecated: read as [train]" in caplog.text
    assert "[env.le.evaluate] is deprecated: read as [evaluate]" in caplog.text
    # Flags at the new place override an old-layout file; dotted overrides at the old place move.
    assert load_model_config(LETrainCommandConfig, path, {"train.steps": "2"}).train.steps == 2
    moved = load_model_config(LETrainCommandConfig, None, {"env.le.train.steps": "5"})
    assert moved.train.steps == 5


def test_old_and_new_place_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "both.toml"
    path.write_text(OLD_LAYOUT + "[train]\nsteps = 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"both \[env\.le\.train\].*and \[train\]"):
        load_model_config(LETrainCommandConfig, path)


def test_simulate_and_rl_ignore_the_old_le_sections_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.toml"
    path.write_text(OLD_LAYOUT, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="billp.config"):
        run = load_config(path)
        rl = load_rl_config(path)
    assert run.env.le.base_model == rl.env.le.base_model == "some-model"
    assert "[env.le.train] is ignored: `python -m billp.le train` reads" in caplog.text
    assert "[env.le.evaluate] is ignored: `python -m billp.le evaluate` reads" in caplog.text


def test_a_run_directory_written_before_the_split_still_loads(tmp_path: Path) -> None:
    """Run directories' config.toml listed env.le.evaluate.users under _unset (for --resume)."""
    path = tmp_path / "config.toml"
    path.write_text(
        '_unset = [["env", "le", "evaluate", "users"], ["data", "path"]]\nseed = 3\n'
        "[env.le.train]\nsteps = 600\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.seed == 3 and config.data.path is None


def test_an_rl_manifest_recorded_before_the_split_still_validates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RL checkpoints trained before the split record ``env.le.train``/``evaluate`` in their
    manifest's config: loading them drops those sections with a warning, as for a TOML file."""
    recorded = RLConfig().model_dump(mode="json")
    recorded["env"]["le"]["train"] = {"steps": 600}
    recorded["env"]["le"]["evaluate"] = {"users": None}
    with pytest.raises(ValueError, match="train"):
        RLConfig.model_validate(recorded)
    with caplog.at_level(logging.WARNING):
        config = validate_recorded(RLConfig, recorded, "sqn/manifest.json")
    assert config == RLConfig()
    assert "sqn/manifest.json: [env.le.train] is ignored" in caplog.text
    assert recorded["env"]["le"]["train"] == {"steps": 600}, "the recorded tree is not changed"
