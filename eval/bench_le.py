"""Benchmark of the LE environment (not a test): env steps/s and candidate scoring.

    python eval/bench_le.py                      # shipped ML-100K / SmolLM2-135M checkpoint
    python eval/bench_le.py --checkpoint DIR --steps 200 --candidates 20

1. Environment steps per second and peak memory (RSS), LE env vs matrix env, each measured in
   its own subprocess so the peaks do not mix; random actions, resets on episode end.
2. Scoring ``--candidates`` candidates after one history of ``context_items - 1`` items, three
   ways, in the same process and run: one forward per candidate, one batched forward, and the
   shared prefix (history run once, KV cache expanded over the candidates). Printed as times
   and ratios, with the largest score difference between the methods.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see billp/le/__main__.py

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KIB_PER_MIB = 1024
WARMUP_CALLS = 1
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmark the checkout this script lives in


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB


def _env_config(name: str, checkpoint: str | None, le_fields: Mapping[str, Any] | None) -> Any:
    from billp.config import EnvConfig, LEConfig

    le = LEConfig.model_validate({"checkpoint": checkpoint, **(le_fields or {})})
    return EnvConfig.model_validate({"name": name, "le": le})


def bench_env(
    name: str,
    steps: int,
    checkpoint: str | None,
    seed: int,
    le_fields: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Steps/s of random actions in the ``name`` env and this process's peak RSS.

    ``le_fields`` sets further ``env.le`` fields (``eval/gpu_throughput.py``: the LE device).
    """
    import numpy as np

    from billp.config import DataConfig
    from billp.envs import build_world

    started = time.perf_counter()
    world = build_world(_env_config(name, checkpoint, le_fields), DataConfig.model_validate({}))
    build_s = time.perf_counter() - started
    env = world.make_env(world.dataset.split.test_users)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    done_steps = episodes = 0
    started = time.perf_counter()
    while done_steps < steps:
        action = int(rng.integers(len(world.dataset.catalogue)))
        _, _, terminated, truncated, _ = env.step(action)
        done_steps += 1
        if terminated or truncated:
            episodes += 1
            env.reset()
    elapsed = time.perf_counter() - started
    return {
        "steps_per_s": done_steps / elapsed,
        "steps": done_steps,
        "episodes": episodes,
        "build_s": build_s,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _median_time(call: Any, repeats: int) -> float:
    for _ in range(WARMUP_CALLS):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_scoring(
    checkpoint: str | None, candidates: int, repeats: int, seed: int
) -> dict[str, Any]:
    """Times of the three scoring methods for one history and ``candidates`` items."""
    import numpy as np
    import torch

    from billp.config import DataConfig, LEConfig
    from billp.data import load_dataset
    from billp.le.user_model import load_user_model

    dataset = load_dataset(DataConfig.model_validate({}))
    le = load_user_model(LEConfig.model_validate({"checkpoint": checkpoint}), dataset.catalogue)
    model = le.model
    rng = np.random.default_rng(seed)
    user = int(dataset.split.test_users[0])
    history = [int(i) for i in dataset.user_log(user).items][-(le.context_items - 1) :]
    prefix = [*le.prompt_ids, *(model.vocab_size + i for i in history)]
    items = rng.choice(len(dataset.catalogue), size=candidates, replace=False)
    tokens = [model.vocab_size + int(i) for i in items]
    chunk = max(candidates, 1)
    with le._threads():  # the threads the LE scores with (le.score_threads)
        threads = torch.get_num_threads()
        one = _median_time(lambda: model.score_one_at_a_time(prefix, tokens), repeats)
        batched = _median_time(lambda: model.score_batched(prefix, tokens), repeats)
        shared = _median_time(lambda: model.score_shared_prefix(prefix, tokens, chunk), repeats)
        a = model.score_one_at_a_time(prefix, tokens)
        b = model.score_batched(prefix, tokens)
        c = model.score_shared_prefix(prefix, tokens, chunk)[0]
    return {
        "history_items": len(history),
        "prefix_tokens": len(prefix),
        "candidates": candidates,
        "dtype": str(model.dtype).replace("torch.", ""),
        "threads": threads,
        "one_at_a_time_ms": one * 1000,
        "batched_ms": batched * 1000,
        "shared_prefix_ms": shared * 1000,
        "batched_speedup": one / batched,
        "shared_prefix_speedup": one / shared,
        "max_abs_diff_batched": float((a - b).abs().max()),
        "max_abs_diff_shared": float((b - c).abs().max()),
    }


def _child(part: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--part", part, "--steps", str(args.steps)]
    command += ["--candidates", str(args.candidates), "--repeats", str(args.repeats)]
    command += ["--seed", str(args.seed)]
    if args.checkpoint:
        command += ["--checkpoint", args.checkpoint]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark part {part} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="LE checkpoint (default: shipped).")
    parser.add_argument("--steps", type=int, default=200, help="Env steps per env.")
    parser.add_argument("--candidates", type=int, default=20, help="Candidates to score.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed calls per method.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--part", choices=["env-matrix", "env-le", "scoring"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.part == "env-matrix":
        print(json.dumps(bench_env("matrix", args.steps, args.checkpoint, args.seed)))
        return 0
    if args.part == "env-le":
        print(json.dumps(bench_env("le", args.steps, args.checkpoint, args.seed)))
        return 0
    if args.part == "scoring":
        print(json.dumps(bench_scoring(args.checkpoint, args.candidates, args.repeats, args.seed)))
        return 0
    matrix = _child("env-matrix", args)
    le = _child("env-le", args)
    scoring = _child("scoring", args)
    print(f"CPU cores: {os.cpu_count()}; torch threads while the LE scores: {scoring['threads']}")
    print("\nEnvironment steps (random actions, one process each)")
    widths = (8, 10, 6, 9, 8, 13)
    header = ("env", "steps/s", "steps", "episodes", "build s", "peak RSS MiB")
    print(
        " ".join(
            f"{h:<{w}}" if k == 0 else f"{h:>{w}}"
            for k, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for name, row in (("matrix", matrix), ("le", le)):
        print(
            f"{name:<8} {row['steps_per_s']:>10.1f} {row['steps']:>6d} {row['episodes']:>9d} "
            f"{row['build_s']:>8.1f} {row['peak_rss_mib']:>13.0f}"
        )
    print(f"matrix / LE steps per second: {matrix['steps_per_s'] / le['steps_per_s']:.0f}x")
    print(
        f"\nScoring {scoring['candidates']} candidates after {scoring['history_items']} history "
        f"items ({scoring['prefix_tokens']} prefix tokens, {scoring['dtype']}), median of "
        f"{args.repeats}"
    )
    print(f"{'method':<16} {'ms':>9} {'vs one-at-a-time':>17}")
    print(f"{'one at a time':<16} {scoring['one_at_a_time_ms']:>9.1f} {1.0:>16.1f}x")
    print(f"{'batched':<16} {scoring['batched_ms']:>9.1f} {scoring['batched_speedup']:>16.1f}x")
    print(
        f"{'shared prefix':<16} {scoring['shared_prefix_ms']:>9.1f} "
        f"{scoring['shared_prefix_speedup']:>16.1f}x"
    )
    print(
        f"max |score difference|: batched vs one-at-a-time {scoring['max_abs_diff_batched']:.2e}, "
        f"shared prefix vs batched {scoring['max_abs_diff_shared']:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
