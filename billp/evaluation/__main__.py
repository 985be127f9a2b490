"""``python -m billp.evaluation``: metrics, comparisons and reports from run directories.

Examples::

    python -m billp.evaluation runs/matrix__billp__0__20261125-120000  # table, JSON, CSV, PNGs
    python -m billp.evaluation runs/matrix__billp__* -o eval_out  # seeds: CI over seeds
    python -m billp.evaluation compare RUN_A RUN_B                # paired diff, prompt diff
    python -m billp.evaluation report RUN_DIR... -o report.html   # self-contained HTML

A folder that holds run directories may be given instead of the runs themselves.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rich.console import Console

from billp.common.exit_codes import EXIT_BAD_INPUT
from billp.evaluation.bootstrap import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from billp.records.read import RunDirError

CONSOLE_WIDTH = 160
"""Table width when stdout is not a terminal (files, pipes, CI logs)."""
SUBCOMMANDS: tuple[str, ...] = ("metrics", "compare", "report")
EVAL_DIR_NAME = "eval"
"""Default output folder: RUN_DIR/eval for one run, <common parent>/eval for several."""


def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--phase",
        choices=("test", "train", "all"),
        default="test",
        help="Episodes to evaluate (BiLLP reports the test phase) [default: test].",
    )
    parser.add_argument(
        "--resamples",
        type=int,
        default=BOOTSTRAP_RESAMPLES,
        help=f"Bootstrap resamples [default: {BOOTSTRAP_RESAMPLES}].",
    )
    parser.add_argument(
        "--bootstrap-seed",
        type=int,
        default=BOOTSTRAP_SEED,
        help=f"Seed of the resampling [default: {BOOTSTRAP_SEED}].",
    )
    parser.add_argument("--log-level", default="WARNING", help="Python logging level.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m billp.evaluation",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Without a subcommand, 'metrics' is assumed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    metrics = sub.add_parser("metrics", help="Tables, metrics.json, CSV and PNG plots.")
    metrics.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    metrics.add_argument(
        "-o",
        "--out-dir",
        type=Path,
        help="Where to write (default: RUN_DIR/eval, or <common parent>/eval for several).",
    )
    metrics.add_argument("--no-plots", action="store_true", help="Skip the PNG plots.")
    _common_args(metrics)
    compare = sub.add_parser("compare", help="Paired comparison of two runs (prompt probing).")
    compare.add_argument("run_a", type=Path, metavar="RUN_A")
    compare.add_argument("run_b", type=Path, metavar="RUN_B")
    compare.add_argument(
        "--allow-seed-mismatch",
        action="store_true",
        help="Pair episodes by user even when their seeds differ.",
    )
    compare.add_argument("--json", type=Path, help="Also write the comparison as JSON here.")
    _common_args(compare)
    report = sub.add_parser("report", help="A self-contained static HTML report.")
    report.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument("-o", "--output", type=Path, required=True, help="The .html file.")
    report.add_argument(
        "--max-episodes",
        type=int,
        default=None,
        help="Episodes per run in the trajectory browser (default: all up to a limit).",
    )
    _common_args(report)
    return parser


def _default_out_dir(runs: list[Path]) -> Path:
    if len(runs) == 1:
        return runs[0] / EVAL_DIR_NAME
    return Path(os.path.commonpath([str(p.resolve()) for p in runs])) / EVAL_DIR_NAME


def _metrics(args: argparse.Namespace, console: Console) -> int:
    from billp.evaluation.output import print_evaluation, write_csv, write_json
    from billp.evaluation.series import evaluate
    from billp.records.read import load_runs

    runs = load_runs(args.runs)
    evaluation = evaluate(runs, args.phase, args.resamples, args.bootstrap_seed)
    out_dir = args.out_dir or _default_out_dir([r.path for r in runs])
    out_dir.mkdir(parents=True, exist_ok=True)
    print_evaluation(evaluation, console)
    written = [write_json(evaluation, out_dir), *write_csv(evaluation, out_dir)]
    if not args.no_plots:
        from billp.evaluation.plots import write_plots

        written += list(write_plots(evaluation.series(), out_dir).values())
    console.print(f"wrote {len(written)} files to {out_dir}: " + ", ".join(p.name for p in written))
    return 0


def _compare(args: argparse.Namespace, console: Console) -> int:
    from billp.evaluation.compare import (
        PairingError,
        compare_runs,
        print_comparison,
        write_comparison,
    )
    from billp.records.read import load_run

    try:
        result = compare_runs(
            load_run(args.run_a),
            load_run(args.run_b),
            phase=args.phase,
            allow_seed_mismatch=args.allow_seed_mismatch,
            resamples=args.resamples,
            seed=args.bootstrap_seed,
        )
    except PairingError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return EXIT_BAD_INPUT
    print_comparison(result, console)
    if args.json is not None:
        write_comparison(result, args.json)
        console.print(f"wrote {args.json}")
    return 0


def _report(args: argparse.Namespace, console: Console) -> int:
    from billp.evaluation.report import write_report
    from billp.records.read import load_runs

    runs = load_runs(args.runs)
    path = write_report(
        runs,
        args.output,
        phase=args.phase,
        resamples=args.resamples,
        seed=args.bootstrap_seed,
        max_episodes=args.max_episodes,
    )
    console.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "metrics")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    console = Console(width=CONSOLE_WIDTH if wide else None)
    handlers = {"metrics": _metrics, "compare": _compare, "report": _report}
    try:
        return handlers[args.command](args, console)
    except (RunDirError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
