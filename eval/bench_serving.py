"""Serving benchmark: how well billp keeps a vLLM server busy (a benchmark, not a test).

One vLLM server, one model, the same test users and seed for every measurement:

1. scheduling: concurrent asyncio episodes vs BiLLP-style lock-step batches of 10 vs one
   episode at a time, as wall-clock ratios (steps per second);
2. billp's achieved output tokens/s vs the engine's own peak on the same model, the same
   requests and the same batch size (offline ``vllm.LLM.chat`` over the prompts billp
   recorded, run after the server is stopped);
3. prefix-cache hit rate per role (cached prompt tokens / prompt tokens, from ``usage``),
   and overall from the server's ``/metrics``.

Decoding is greedy (temperature 0) and memories are frozen during the test phase, so
every mode plays the same workload. Usage::

    python eval/bench_serving.py                      # SmolLM2-135M on this machine
    python eval/bench_serving.py --users 20 --model /models/Qwen2.5-7B-Instruct

Goals: concurrent >= 3x sequential and >= 1.5x lock-step; >= 60 % of the engine peak;
prefix-cache hits >= 70 % of prompt tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from billp.common.provision import resolve_model
from billp.config import RunConfig, ServerConfig
from billp.llm.server import VLLMServer
from billp.runner import execute

LOCKSTEP_BATCH = 10
"""BiLLP's batch size (its scripts use --batch_size 10)."""


def reset_prefix_cache(base_url: str) -> None:
    """Empty the server's prefix cache, so no mode profits from an earlier one's prompts."""
    root = base_url.removesuffix("/").removesuffix("/v1")
    httpx.post(f"{root}/reset_prefix_cache", timeout=60).raise_for_status()


def run_mode(base: dict[str, Any], name: str, **overrides: Any) -> dict[str, Any]:
    """Play the benchmark's episodes once with ``overrides``; wall time and counts."""
    tree = json.loads(json.dumps(base))
    for dotted, value in overrides.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    config = RunConfig.model_validate(tree)
    started = time.perf_counter()
    result = execute(config)
    wall = time.perf_counter() - started
    records = [json.loads(x) for x in (result.run_dir / "episodes.jsonl").read_text().splitlines()]
    steps = sum(r["steps"] for r in records)
    llm = result.summary.get("llm", {})
    return {
        "mode": name,
        "run_dir": str(result.run_dir),
        "wall_s": wall,
        "episodes": len(records),
        "steps": steps,
        "steps_per_s": steps / wall,
        "calls": sum(r["calls"] for r in llm.values()),
        "completion_tokens": sum(r["completion_tokens"] for r in llm.values()),
        "prompt_tokens": sum(r["prompt_tokens"] for r in llm.values()),
        "per_role": llm,
        "server": result.summary.get("server", {}),
    }


ENGINE_SCRIPT = r"""
import json, sys, time
from pathlib import Path

def main():
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams
    model, cache_dir = sys.argv[1], sys.argv[2]
    batch, max_len, block = (int(v) for v in sys.argv[3:6])
    records = [json.loads(p.read_text()) for p in sorted(Path(cache_dir).glob("*/*.json"))]
    llm = LLM(model=model, dtype="bfloat16", max_model_len=max_len, enforce_eager=True,
              block_size=block)
    convs, params = [], []
    for r in records:
        req = r["request"]
        convs.append(req["messages"])
        schema = req["response_schema"]
        so = StructuredOutputsParams(json=schema) if schema else None
        params.append(SamplingParams(temperature=0.0, max_tokens=req["sampling"]["max_tokens"],
                                     structured_outputs=so))
    llm.chat(convs[:batch], params[:batch])  # warm-up
    started = time.perf_counter()
    outputs = []
    for i in range(0, len(convs), batch):
        outputs += llm.chat(convs[i:i + batch], params[i:i + batch], use_tqdm=False)
    wall = time.perf_counter() - started
    gen = sum(len(o.outputs[0].token_ids) for o in outputs)
    prompt = sum(len(o.prompt_token_ids) for o in outputs)
    print(json.dumps({"requests": len(outputs), "wall_s": wall, "completion_tokens": gen,
                      "prompt_tokens": prompt}))

if __name__ == "__main__":
    main()
"""


def engine_peak(
    model_path: str, cache_dir: Path, batch: int, server: ServerConfig
) -> dict[str, Any]:
    """Offline vLLM over the recorded requests, in batches of ``batch`` (separate process)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(ENGINE_SCRIPT)
        script = handle.name
    env_cmd = [
        sys.executable, script, model_path, str(cache_dir), str(batch),
        str(server.max_model_len), str(server.block_size or 128),
    ]  # fmt: skip
    from billp.llm.server import on_cpu, server_env

    env = server_env(server, cpu=on_cpu(), offline=True)
    out = subprocess.run(env_cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"engine peak run failed:\n{out.stderr[-3000:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith('{"requests"')]
    if not lines:
        raise RuntimeError(f"engine peak run printed no result:\n{out.stdout[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--users", type=int, default=30, help="Test users per mode (several lock-step batches)."
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=LOCKSTEP_BATCH,
        help="Episodes in flight: the async limit and the lock-step batch size alike, so the "
        "two modes differ only in scheduling.",
    )
    parser.add_argument("--max-steps", type=int, default=20, help="Step cap per episode.")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="llm.model spec.")
    parser.add_argument("--agent", default="billp", help="agent.name")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_serving"))
    parser.add_argument("--skip-engine", action="store_true", help="Skip the engine peak.")
    args = parser.parse_args()

    model = resolve_model(args.model)
    server_config = ServerConfig()
    # Enables the server's /reset_prefix_cache, used between modes.
    os.environ["VLLM_SERVER_DEV_MODE"] = "1"
    args.out.mkdir(parents=True, exist_ok=True)
    cache_dir = args.out / f"requests-{int(time.time())}"
    results: list[dict[str, Any]] = []
    with VLLMServer(model, server_config, args.out / "vllm_server.log") as server:
        print(f"server ready in {server.startup_s:.1f} s at {server.base_url}", flush=True)
        base = {
            "seed": 0,
            "train_users": 0,
            "test_users": args.users,
            "progress": False,
            "output_dir": str(args.out),
            # One wave per phase: the modes differ only in scheduling, as before waves.
            "wave_size": args.users,
            "memory": {"dir": str(args.out / "memory"), "learn_during_test": False},
            "env": {"max_steps": args.max_steps},
            "agent": {"name": args.agent},
            "llm": {
                "backend": "openai",
                "base_url": [server.base_url],
                "model": model.served_name,
                "temperature": 0.0,
                "timeout_s": 600,
            },
        }
        plan = [
            ("concurrent", {"concurrency": args.concurrency, "llm.cache": "record",
                            "llm.cache_dir": str(cache_dir)}),
            ("lock-step", {"concurrency": args.concurrency, "scheduling": "lockstep"}),
            ("sequential", {"concurrency": 1}),
        ]  # fmt: skip
        for name, overrides in plan:
            print(f"running {name} ...", flush=True)
            reset_prefix_cache(server.base_url)
            results.append(run_mode(base, name, **overrides))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "per_role"}), flush=True)
    by_mode = {r["mode"]: r for r in results}
    engine = None
    if not args.skip_engine:
        print("running the offline engine over the recorded requests ...", flush=True)
        engine = engine_peak(str(model.model_arg), cache_dir, args.concurrency, server_config)

    print("\n== 1. scheduling (same users, seed, greedy decoding) ==")
    print(f"{'mode':<12}{'episodes':>9}{'steps':>7}{'wall s':>9}{'steps/s':>9}")
    for r in results:
        print(
            f"{r['mode']:<12}{r['episodes']:>9}{r['steps']:>7}{r['wall_s']:>9.1f}{r['steps_per_s']:>9.3f}"
        )
    conc = by_mode["concurrent"]["steps_per_s"]
    print(
        f"concurrent / sequential = {conc / by_mode['sequential']['steps_per_s']:.2f}x (goal >= 3)"
    )
    print(
        f"concurrent / lock-step  = {conc / by_mode['lock-step']['steps_per_s']:.2f}x (goal >= 1.5)"
    )

    print("\n== 2. output tokens/s vs the engine's peak ==")
    achieved = by_mode["concurrent"]["completion_tokens"] / by_mode["concurrent"]["wall_s"]
    print(f"billp concurrent: {achieved:.1f} output tok/s")
    if engine is not None:
        peak = engine["completion_tokens"] / engine["wall_s"]
        print(
            f"engine (offline LLM.chat, same {engine['requests']} requests, "
            f"batch {args.concurrency}): {peak:.1f} output tok/s"
        )
        print(f"billp / engine = {achieved / peak:.2f} (goal >= 0.60)")

    print("\n== 3. prefix-cache hits (cached prompt tokens / prompt tokens) ==")
    for role, stats in sorted(by_mode["concurrent"]["per_role"].items()):
        rate = stats["cached_tokens"] / stats["prompt_tokens"] if stats["prompt_tokens"] else 0.0
        print(f"{role:<10}{rate:>8.1%}  ({stats['cached_tokens']}/{stats['prompt_tokens']})")
    server_stats = by_mode["concurrent"]["server"]
    if server_stats:
        print(
            f"{'server':<10}{server_stats['prefix_cache_hit_rate']:>8.1%}"
            "  (vLLM /metrics, goal >= 70 %)"
        )
    (args.out / "bench_serving.json").write_text(
        json.dumps({"modes": results, "engine": engine}, indent=2)
    )


if __name__ == "__main__":
    main()
