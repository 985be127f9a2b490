"""``python -m billp.rl``: train and evaluate the RL recommenders.

Examples::

    python -m billp.rl train --variant lea          # SQN + LE state, reward and actions
    python -m billp.rl train --variant all          # base, sm, rm and lea on the same data
    python -m billp.rl train --algo bcq             # offline, on the logged buffer
    python -m billp.rl train --algo dqn --env le    # online, on billp/MovieLens-LE-v0
    python -m billp.rl evaluate                     # offline HR/NDCG of every trained policy

Trained policies land in ``<output-dir>/<name>/`` (default runs/rl) and play in the simulators
with ``python -m billp.simulate --agent.name NAME`` (``$BILLP_RL_CHECKPOINTS`` names another
root). Every ``--section.field`` flag can also be set in a TOML file (``--config``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from billp.common.exit_codes import EXIT_BAD_INPUT
from billp.config import ConfigError
from billp.config.flags import add_config_arguments, collect_overrides
from billp.rl.config import OFFLINE_ALGOS, ONLINE_ALGOS, SQN_VARIANTS, RLConfig, load_rl_config

METRIC_DIGITS = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m billp.rl",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="Train an SQN variant or a Tianshou baseline.")
    what = train.add_mutually_exclusive_group(required=True)
    what.add_argument("--variant", choices=[*SQN_VARIANTS, "all"], help="SQN variant(s).")
    what.add_argument("--algo", choices=[*OFFLINE_ALGOS, *ONLINE_ALGOS], help="Tianshou baseline.")
    train.add_argument(
        "--env",
        choices=["matrix", "le"],
        default="matrix",
        help="Simulator an online baseline (dqn, a2c) trains in.",
    )
    evaluate = sub.add_parser("evaluate", help="Offline HR/NDCG on held-out users.")
    evaluate.add_argument("--policies", nargs="+", help="Trained policy names (default: all).")
    evaluate.add_argument("--markdown", type=Path, help="Also write the table as markdown here.")
    evaluate.add_argument("--json", type=Path, help="Also write the numbers as JSON here.")
    for command in (train, evaluate):
        command.add_argument("--config", type=Path, help="TOML file with config values.")
        command.add_argument("--log-level", default="INFO", help="Python logging level.")
        add_config_arguments(command, RLConfig)
    return parser


def _table(
    results: dict[str, dict[str, float]], ks: list[int]
) -> tuple[list[str], list[list[str]]]:
    header = [
        "Policy",
        *[f"{m}@{k}" for m in ("HR", "NDCG") for k in ks],
        "cases",
        "train s",
        "users (transitions) it trained on",
        "users the LE saw",
    ]
    rows = []
    for name, metrics in results.items():
        row = [name]
        for m in ("HR", "NDCG"):
            for k in ks:
                value = metrics.get(f"{m}@{k}", math.nan)
                row.append(f"{value:.{METRIC_DIGITS}f}")
        row += [str(int(metrics.get("cases", 0))), f"{metrics.get('train_seconds', 0):.0f}"]
        users, transitions = metrics.get("train_users"), metrics.get("transitions")
        row.append(f"{int(users)} ({int(transitions or 0):,})" if users is not None else "")
        le_users = metrics.get("le_train_users")
        row.append(str(int(le_users)) if le_users is not None else "")
        rows.append(row)
    return header, rows


def _print_and_write(
    results: dict[str, dict[str, float]],
    config: RLConfig,
    args: argparse.Namespace,
    argv: list[str],
) -> None:
    from rich.console import Console
    from rich.table import Table

    header, rows = _table(results, config.evaluate.ks)
    table = Table(title="Offline next-item ranking on held-out users (full catalogue)")
    for column in header:
        table.add_column(column, justify="left" if column == "Policy" else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    command = shlex.join(["python", "-m", "billp.rl", *argv])
    if args.markdown is not None:
        lines = [
            "# Offline HR/NDCG on held-out users",
            "",
            f"Produced {time.strftime('%Y-%m-%d %H:%M %Z')} by:",
            "",
            "```bash",
            command,
            "```",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
            *["| " + " | ".join(row) + " |" for row in rows],
        ]
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any] = {"command": command, "results": results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_rl_config(args.config, collect_overrides(args, RLConfig))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from billp.rl.checkpoint import RLCheckpointError
    from billp.rl.pipeline import DEFAULT_EVAL_POLICIES, Pipeline
    from billp.rl.sqn_train import seed_everything

    seed_everything(config.seed, config.threads)  # before the LE loads: its passes use them too

    pipeline = Pipeline(config)
    try:
        if args.command == "train":
            if args.variant is not None:
                variants = SQN_VARIANTS if args.variant == "all" else (args.variant,)
                for variant in variants:
                    trained = pipeline.train_variant(variant)
                    print(
                        f"{trained.manifest.policy}: {trained.manifest.steps} steps in "
                        f"{trained.manifest.train_seconds:.1f} s -> {trained.folder}"
                    )
            else:
                baseline = pipeline.train_baseline(args.algo, args.env)
                print(
                    f"{baseline.manifest.policy}: {baseline.manifest.steps} steps in "
                    f"{baseline.manifest.train_seconds:.1f} s -> {baseline.folder}"
                )
            return 0
        policies = args.policies or list(DEFAULT_EVAL_POLICIES)
        results = pipeline.evaluate(policies, explicit=bool(args.policies))
        if not results:
            print(
                f"error: no trained policy found under {config.output_dir} "
                f"(looked for {', '.join(policies)})",
                file=sys.stderr,
            )
            return 1
        _print_and_write(results, config, args, argv)
        return 0
    except (RLCheckpointError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
