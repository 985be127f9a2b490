"""Benchmark of the LE environment (not a test): env steps/s and candidate scoring.

    python eval/bench_le.py                      # shipped ML-100K / SmolLM2-135M checkpoint
    python eval/bench_le.py --checkpoint DIR --steps 200 --candidates 20
    python eval/bench_le.py --parts batched --concurrency 1 8 32 --thread-steps 8

1. Environment steps per second and peak memory (RSS), LE env vs matrix env, each measured in
   its own subprocess so the peaks do not mix; random actions, resets on episode end.
2. Scoring ``--candidates`` candidates after one history of ``context_items - 1`` items, three
   ways, in the same process and run: one forward per candidate, one batched forward, and the
   shared prefix (history run once, KV cache expanded over the candidates). Printed as times
   and ratios, with the largest score difference between the methods.
3. Batched LE stepping: ``--concurrency`` threads, each stepping its own user's env with its
   own random actions for ``--thread-steps`` steps (resets on episode end included), through
   today's path (one forward pass at a time) and through the dynamic batcher, in the same
   process and run, in ``--dtype`` (float32 by default, where the rewards must agree within
   1e-4). Printed as steps/s, the batched / one-at-a-time ratio, the batches' mean size and
   the largest reward difference between the two paths.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see billp/le/__main__.py

import argparse
import functools
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KIB_PER_MIB = 1024
WARMUP_CALLS = 1
PARTS = ("env", "scoring", "batched")
DEFAULT_CONCURRENCY = (1, 8, 32)
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

    from billp.common.torch_threads import torch_threads
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
    with torch_threads(le.threads):  # the threads the LE scores with (le.score_threads)
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


def _step_threads(
    world: Any, users: list[int], thread_steps: int, seed: int, on_start: Any
) -> tuple[float, list[list[float]]]:
    """Wall seconds for ``len(users)`` threads to take ``thread_steps`` random steps each (from
    a reset env; ``on_start()`` is called once all have reset), and each thread's rewards."""
    import numpy as np

    n_items = len(world.dataset.catalogue)
    envs = [world.make_env([user]) for user in users]
    rewards: list[list[float]] = [[] for _ in users]
    errors: list[BaseException] = []
    ready = threading.Barrier(len(users) + 1)
    start = threading.Barrier(len(users) + 1)

    def play(k: int) -> None:
        rng = np.random.default_rng([seed, k])
        envs[k].reset(seed=seed + k)  # before the clock: the first state of each episode
        ready.wait()
        start.wait()
        try:
            for _ in range(thread_steps):
                _, reward, terminated, truncated, _ = envs[k].step(int(rng.integers(n_items)))
                rewards[k].append(float(reward))
                if terminated or truncated:
                    envs[k].reset()
        except Exception as exc:  # reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=play, args=(k,)) for k in range(len(users))]
    for thread in threads:
        thread.start()
    ready.wait()
    on_start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} stepping thread(s) failed: {errors[0]!r}")
    return elapsed, rewards


def _batch_stats(le: Any) -> Any:
    return le.batcher.stats if le.batcher is not None else None


def _stats_into(le: Any, out: list[Any]) -> None:
    out.append(_batch_stats(le))


def bench_batched(
    checkpoint: str | None, dtype: str, concurrency: list[int], thread_steps: int, seed: int
) -> dict[str, Any]:
    """LE env steps/s at each concurrency, one forward pass at a time vs batched."""
    import torch

    from billp.config import DataConfig, EnvConfig, LEConfig
    from billp.data import load_dataset
    from billp.envs.world import World
    from billp.le.user_model import LEUserModel, load_user_model
    from billp.le.user_ratings import known_ratings

    dataset = load_dataset(DataConfig.model_validate({}))
    config = LEConfig.model_validate({"checkpoint": checkpoint, "dtype": dtype})
    table = known_ratings(dataset)
    batched = load_user_model(config, dataset.catalogue, table)
    single = LEUserModel(
        batched.loaded,
        score_batch_size=config.score_batch_size,
        threads=config.score_threads,
        known_ratings=table,
        device=config.device,
        batching=False,
    )
    env_config = EnvConfig.model_validate({"name": "le", "le": config})
    users = [int(u) for u in dataset.split.test_users]
    rows = []
    for le in (single, batched):  # warm both paths up (first forward passes allocate)
        le.score(users[0], dataset.starting_history(users[0]), [0])
    for count in concurrency:
        chosen = [users[k % len(users)] for k in range(count)]
        result: dict[str, Any] = {"concurrency": count}
        rewards = {}
        for name, le in (("single", single), ("batched", batched)):
            world = World(dataset, le, env_config, state_model=le, slow_steps=True)
            before: list[Any] = []
            elapsed, rewards[name] = _step_threads(
                world, chosen, thread_steps, seed, functools.partial(_stats_into, le, before)
            )
            result[f"{name}_steps_per_s"] = count * thread_steps / elapsed
            after = _batch_stats(le)
            if before[0] is not None and after is not None:
                result["mean_batch"] = (after.requests - before[0].requests) / max(
                    after.batches - before[0].batches, 1
                )
        result["speedup"] = result["batched_steps_per_s"] / result["single_steps_per_s"]
        result["max_abs_reward_diff"] = max(
            abs(a - b)
            for one, other in zip(rewards["single"], rewards["batched"], strict=True)
            for a, b in zip(one, other, strict=True)
        )
        rows.append(result)
    batched.close()
    return {
        "dtype": dtype,
        "device": config.device,
        "threads": config.score_threads,
        "torch_threads": torch.get_num_threads(),
        "thread_steps": thread_steps,
        "batch_max_size": config.batch_max_size,
        "batch_max_wait_ms": config.batch_max_wait_ms,
        "rows": rows,
    }


def _child(part: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--part", part, "--steps", str(args.steps)]
    command += ["--candidates", str(args.candidates), "--repeats", str(args.repeats)]
    command += ["--seed", str(args.seed), "--dtype", args.dtype]
    command += ["--thread-steps", str(args.thread_steps), "--concurrency"]
    command += [str(c) for c in args.concurrency]
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
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="Sections to run."
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=list(DEFAULT_CONCURRENCY),
        help="Batched stepping: threads stepping at once, one measurement each.",
    )
    parser.add_argument(
        "--thread-steps", type=int, default=8, help="Batched stepping: env steps per thread."
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="Batched stepping: the LE's dtype (float32: rewards must agree within 1e-4).",
    )
    parser.add_argument(
        "--part",
        choices=["env-matrix", "env-le", "scoring", "batched"],
        help=argparse.SUPPRESS,
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
    if args.part == "batched":
        result = bench_batched(
            args.checkpoint, args.dtype, args.concurrency, args.thread_steps, args.seed
        )
        print(json.dumps(result))
        return 0
    print(f"CPU cores: {os.cpu_count()}")
    if "env" in args.parts:
        _print_env(_child("env-matrix", args), _child("env-le", args))
    if "scoring" in args.parts:
        _print_scoring(_child("scoring", args), args.repeats)
    if "batched" in args.parts:
        _print_batched(_child("batched", args))
    return 0


def _print_env(matrix: dict[str, Any], le: dict[str, Any]) -> None:
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


def _print_scoring(scoring: dict[str, Any], repeats: int) -> None:
    print(
        f"\nScoring {scoring['candidates']} candidates after {scoring['history_items']} history "
        f"items ({scoring['prefix_tokens']} prefix tokens, {scoring['dtype']}, torch threads "
        f"{scoring['threads']}), median of {repeats}"
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


def _print_batched(result: dict[str, Any]) -> None:
    print(
        f"\nBatched LE stepping ({result['dtype']}, {result['device']}, score threads "
        f"{result['threads']}, {result['thread_steps']} steps per thread, batches of at most "
        f"{result['batch_max_size']}, wait {result['batch_max_wait_ms']} ms)"
    )
    header = ("threads", "one-at-a-time/s", "batched/s", "speedup", "mean batch", "max |dr|")
    print(
        f"{header[0]:>7} {header[1]:>15} {header[2]:>10} {header[3]:>8} {header[4]:>10} "
        f"{header[5]:>9}"
    )
    for row in result["rows"]:
        print(
            f"{row['concurrency']:>7d} {row['single_steps_per_s']:>15.2f} "
            f"{row['batched_steps_per_s']:>10.2f} {row['speedup']:>7.2f}x "
            f"{row.get('mean_batch', 0.0):>10.1f} {row['max_abs_reward_diff']:>9.1e}"
        )


if __name__ == "__main__":
    sys.exit(main())
