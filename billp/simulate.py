"""``python -m billp.simulate``: play episodes of a recommender against a simulated user.

Examples::

    python -m billp.simulate                                   # the default run
    python -m billp.simulate --config eval/configs/tiny.toml --agent.name react
    python -m billp.simulate --llm.backend openai --llm.base-url http://gpu:8000/v1 \\
        --llm.model Qwen/Qwen2.5-7B-Instruct
    python -m billp.simulate --resume runs/matrix__billp__0__20261125-120000

Every ``--section.field`` flag below can also be set in a TOML file (``--config``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from billp.common.exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_IO_FAILURE,
    EXIT_LLM_FAILURE,
)
from billp.common.torch_threads import prefer_passive_openmp
from billp.config import ConfigError, RunConfig, load_config
from billp.config.flags import add_config_arguments, collect_overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m billp.simulate",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML file with config values.")
    parser.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="Finish an interrupted run directory."
    )
    parser.add_argument("--log-level", default="WARNING", help="Python logging level.")
    add_config_arguments(parser, RunConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # LE forward passes share the cores with a vLLM worker: sleeping OpenMP threads.
    prefer_passive_openmp()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Imported late so that --help and config errors answer at once.
    from billp.common.provision import ProvisionError
    from billp.llm import LLMError
    from billp.llm.cache import CacheCorruptError
    from billp.llm.server import ServerStartError
    from billp.memory.folder_format import MemoryStoreError
    from billp.runner import execute, resume

    try:
        if args.resume is not None:
            result = resume(args.resume)
        else:
            config = load_config(args.config, collect_overrides(args, RunConfig))
            result = execute(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "interrupted: finished episodes and memories are on disk; "
            "continue with --resume RUN_DIR",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (FileNotFoundError, ValueError, MemoryStoreError, CacheCorruptError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (LLMError, ServerStartError) as exc:
        print(
            f"error: {exc}\nfinished episodes and memories are on disk; "
            "once the server is back, continue with --resume RUN_DIR",
            file=sys.stderr,
        )
        return EXIT_LLM_FAILURE
    except OSError as exc:
        print(
            f"error: writing {exc.filename or 'a run file'} failed: {exc.strerror or exc}\n"
            "finished episodes and memories are on disk; once the disk is fixed, continue "
            "with --resume RUN_DIR",
            file=sys.stderr,
        )
        return EXIT_IO_FAILURE
    print_summary(result.run_dir, result.summary)
    return 0


def print_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """A short table of the run's metrics on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run: {run_dir}")
    for column in ("phase", "episodes", "Len", "R_each", "R_traj", "coverage", "quit share"):
        table.add_column(column, justify="right")
    for phase in ("train", "test"):
        m = summary.get(phase, {})
        if not m.get("episodes"):
            continue
        table.add_row(
            phase,
            str(m["episodes"]),
            f"{m['len']:.2f}",
            f"{m['r_each']:.3f}",
            f"{m['r_traj']:.2f}",
            f"{m['coverage']:.4f}",
            f"{m['quit_share']:.2f}",
        )
    console = Console()
    console.print(table)
    llm = summary.get("llm") or {}
    if llm:
        calls = sum(r["calls"] for r in llm.values())
        fallbacks = sum(r["fallbacks"] for r in llm.values())
        console.print(f"LLM calls: {calls} (fallbacks: {fallbacks}); details in summary.json")
    tokens = summary.get("tokens_per_step") or {}
    if tokens.get("env_steps"):
        console.print(
            f"prompt tokens per env step: {tokens['prompt_tokens']:.0f} "
            f"({tokens['uncached_prompt_tokens']:.0f} uncached; "
            f"{tokens['cached_share']:.0%} from the prefix cache); "
            f"output tokens: {tokens['output_tokens']:.0f}"
        )
    speed = summary.get("throughput") or {}
    if speed.get("episodes_played"):
        console.print(
            f"throughput: {speed['users_per_hour']:.0f} simulated users/hour "
            f"({speed['episodes_played']} episodes in {speed['wall_s']:.0f} s)"
        )
    phases = summary.get("phases") or {}
    first, idle = phases.get("to_first_request_s"), phases.get("engine_idle_share")
    if first is not None and idle is not None:
        console.print(
            f"start-up: first LLM request {first:.0f} s after start (checks "
            f"{phases.get('prepare_s', 0):.0f} s, server {phases.get('server_start_s', 0):.0f} s, "
            f"world {phases.get('world_load_s', 0):.0f} s beside it); no LLM request in flight "
            f"{idle:.0%} of the time"
        )


if __name__ == "__main__":
    sys.exit(main())
