"""``python -m billp.le``: train an LE checkpoint or write its fidelity report.

Examples::

    python -m billp.le train --out /tmp/le                  # the default ML-100K checkpoint
    python -m billp.le train --config billp/le/checkpoints/ml-100k-smollm2-135m/config.toml \\
        --out /tmp/le                                        # reproduce the shipped one
    python -m billp.le evaluate                             # report of the shipped checkpoint
    python -m billp.le evaluate --env.le.checkpoint /tmp/le

``train`` reads ``data``, ``env.le`` (the LE's runtime settings) and ``train``; ``evaluate``
reads ``data``, ``env`` and ``evaluate``. Every flag can also be set in a TOML file
(``--config``); other sections of the file are ignored, so one file may serve both commands.
Files of the older layout, with ``[env.le.train]`` and ``[env.le.evaluate]``, are read with a
deprecation warning.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from billp.common.exit_codes import EXIT_BAD_INPUT
from billp.config import (
    ConfigError,
    LEEvalCommandConfig,
    LETrainCommandConfig,
    load_model_config,
)
from billp.config.flags import add_config_arguments, collect_overrides

DEFAULT_TRAIN_OUT = Path("le-checkpoint")


COMMAND_CONFIGS: dict[str, type[BaseModel]] = {
    "train": LETrainCommandConfig,
    "evaluate": LEEvalCommandConfig,
}
"""The config tree of each subcommand."""

CommandConfigT = TypeVar("CommandConfigT", LETrainCommandConfig, LEEvalCommandConfig)


def load_command_config(
    model: type[CommandConfigT], path: Path | None, overrides: dict[str, object]
) -> CommandConfigT:
    """Read ``path`` (TOML, optional) into a subcommand's tree and apply dotted overrides.

    Raises:
        ConfigError: the file is missing or a value is invalid.
    """
    return load_model_config(model, path, overrides)


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
    for name, sub in (("train", train), ("evaluate", evaluate)):
        sub.add_argument("--config", type=Path, help="TOML file with config values.")
        sub.add_argument("--log-level", default="INFO", help="Python logging level.")
        add_config_arguments(sub, COMMAND_CONFIGS[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from billp.data import DataError, load_dataset
    from billp.le.errors import LEError

    try:
        overrides = collect_overrides(args, COMMAND_CONFIGS[args.command])
        if args.command == "train":
            from billp.le.train import train_le

            train = load_command_config(LETrainCommandConfig, args.config, overrides)
            train_le(load_dataset(train.data), train.env.le, train.train, args.out)
            print(f"LE checkpoint written to {args.out}")
        else:
            from billp.fidelity.checkpoint import evaluate_checkpoint
            from billp.fidelity.report import render_markdown

            evaluate = load_command_config(LEEvalCommandConfig, args.config, overrides)
            dataset = load_dataset(evaluate.data)
            report = evaluate_checkpoint(dataset, evaluate.env, evaluate.evaluate, args.out)
            print(render_markdown(report))
    except (ConfigError, DataError, LEError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
