"""``python -m billp.le``: train an LE checkpoint or write its fidelity report.

Examples::

    python -m billp.le train --out /tmp/le                  # the default ML-100K checkpoint
    python -m billp.le train --config billp/le/checkpoints/ml-100k-smollm2-135m/config.toml \\
        --out /tmp/le                                        # reproduce the shipped one
    python -m billp.le evaluate                             # report of the shipped checkpoint
    python -m billp.le evaluate --env.le.checkpoint /tmp/le

Every ``--data.*`` and ``--env.*`` flag can also be set in a TOML file (``--config``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ConfigDict, Field

from billp.cli import add_config_arguments, collect_overrides
from billp.config import (
    ConfigError,
    DataConfig,
    EnvConfig,
    Section,
    load_model_config,
)

EXIT_BAD_INPUT = 2
DEFAULT_TRAIN_OUT = Path("le-checkpoint")


class LECommandConfig(Section):
    """The parts of the config tree ``python -m billp.le`` reads (other sections are ignored)."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    data: DataConfig = Field(default_factory=lambda: DataConfig.model_validate({}))
    env: EnvConfig = Field(default_factory=lambda: EnvConfig.model_validate({}))


def load_command_config(path: Path | None, overrides: dict[str, object]) -> LECommandConfig:
    """Read ``path`` (TOML, optional) and apply dotted overrides.

    Raises:
        ConfigError: the file is missing or a value is invalid.
    """
    return load_model_config(LECommandConfig, path, overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m billp.le",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="Train an LE checkpoint.")
    train.add_argument(
        "--out", type=Path, default=DEFAULT_TRAIN_OUT, help="Checkpoint folder to write."
    )
    evaluate = commands.add_parser("evaluate", help="Write the fidelity report of a checkpoint.")
    evaluate.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Folder of fidelity.md / fidelity.json (default: the checkpoint folder).",
    )
    for sub in (train, evaluate):
        sub.add_argument("--config", type=Path, help="TOML file with config values.")
        sub.add_argument("--log-level", default="INFO", help="Python logging level.")
        add_config_arguments(sub, LECommandConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from billp.data import DataError, load_dataset
    from billp.le.errors import LEError

    try:
        config = load_command_config(args.config, collect_overrides(args, LECommandConfig))
        dataset = load_dataset(config.data)
        if args.command == "train":
            from billp.le.train import train_le

            train_le(dataset, config.env.le, args.out)
            print(f"LE checkpoint written to {args.out}")
        else:
            from billp.evaluation.fidelity import evaluate_checkpoint

            report = evaluate_checkpoint(dataset, config.env, args.out)
            print(report.markdown)
    except (ConfigError, DataError, LEError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
